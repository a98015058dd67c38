/**
 * Issuing SVIDs from a trust domain's own keys: what `portcullis identity issue` and the demo
 * trust domain (examples/demo-trust-domain/, scripts/demo-trust-domain.ts) are made with.
 * A test and demo tool, not a SPIFFE server: no attestation, no rotation, no revocation.
 *
 * Certificates are built with PKI.js and signed with WebCrypto; tokens with jose.
 *
 * @example
 *   const ca = await loadSigningCa(caCertPem, caKeyPem)
 *   const { certPem, keyPem } = await issueX509Svid(ca, 'spiffe://example.org/ns/shop/sa/frontend', { ttlSeconds: 3600 })
 *   const token = await issueJwtSvid(await loadJwtSigningKey(jwtKeyPem), 'spiffe://example.org/ns/shop/sa/frontend', { audience: ['portcullis'], ttlSeconds: 300 })
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto'
import { isIPv4 } from 'node:net'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK } from 'jose'
import { IdentityError } from '../errors.js'
import { derToPem, parseCertificateDer, pemCertificates } from './pem.js'
import { parseSpiffeId, parseWorkloadSpiffeId } from './spiffe-id.js'
import { certificateFacts } from './x509-rules.js'

const OID = {
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

/** Backdating, as SPIRE does, so a verifier whose clock is slightly behind accepts a fresh SVID. */
const BACKDATE_SECONDS = 10

/** A private key with the WebCrypto and JOSE algorithms it signs with. */
export interface SigningKey {
  privateKey: webcrypto.CryptoKey
  publicKey: webcrypto.CryptoKey
  /** JWS algorithm (ES256, ES384, RS256). */
  alg: 'ES256' | 'ES384' | 'RS256'
  /** WebCrypto algorithm for importKey / generateKey. */
  webAlg: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams
}

export interface SigningCa {
  cert: pkijs.Certificate
  der: Buffer
  key: SigningKey
  /** The trust domain named by the CA's `spiffe://<td>` URI SAN, when it has one. */
  trustDomain?: string
}

function invalid (message: string, details: Record<string, unknown> = {}): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_BUNDLE_INVALID', message, details)
}

/** Imports a PEM private key (PKCS#8, SEC1 or PKCS#1): EC P-256 / P-384 or RSA ≥ 2048 bits. */
export async function importSigningKey (pem: string, what: string): Promise<SigningKey> {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch (err) {
    throw invalid(`${what}: not a PEM private key (${(err as Error).message})`, { what })
  }
  const details = key.asymmetricKeyDetails ?? {}
  let alg: SigningKey['alg']
  let webAlg: SigningKey['webAlg']
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') {
    alg = 'ES256'
    webAlg = { name: 'ECDSA', namedCurve: 'P-256' }
  } else if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') {
    alg = 'ES384'
    webAlg = { name: 'ECDSA', namedCurve: 'P-384' }
  } else if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) {
    alg = 'RS256'
    webAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  } else {
    throw invalid(`${what}: unsupported key (EC P-256, EC P-384 or RSA of at least 2048 bits)`, { what, type: key.asymmetricKeyType })
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' })
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, webAlg, true, ['sign'])
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  const publicKey = await webcrypto.subtle.importKey('spki', spki, webAlg, true, ['verify'])
  return { privateKey, publicKey, alg, webAlg }
}

/** Generates a fresh signing key (EC P-256). */
export async function generateSigningKey (): Promise<SigningKey> {
  const webAlg = { name: 'ECDSA', namedCurve: 'P-256' }
  const pair = await webcrypto.subtle.generateKey(webAlg, true, ['sign', 'verify'])
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, alg: 'ES256', webAlg }
}

/** PKCS#8 PEM of a signing key's private half. */
export async function privateKeyPem (key: SigningKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key.privateKey))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`
}

function hashOf (key: SigningKey): 'SHA-256' | 'SHA-384' {
  return key.alg === 'ES384' ? 'SHA-384' : 'SHA-256'
}

/** Loads a CA certificate (first PEM block) and its private key, and checks they belong together and may sign. */
export async function loadSigningCa (certPem: string, keyPem: string): Promise<SigningCa> {
  const der = pemCertificates(certPem, 'CA certificate', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')[0] as Buffer
  const cert = parseCertificateDer(der, 'CA certificate', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  const facts = certificateFacts(cert, 'CA certificate')
  // X509-SVID §4.1: a signing certificate is a CA with keyCertSign.
  if (!facts.ca || facts.keyUsage === undefined || (facts.keyUsage & 0x04) === 0) throw invalid('CA certificate is not a CA with keyUsage keyCertSign')
  const key = await importSigningKey(keyPem, 'CA key')
  const certSpki = Buffer.from(cert.subjectPublicKeyInfo.toSchema().toBER(false))
  const keySpki = Buffer.from(await webcrypto.subtle.exportKey('spki', key.publicKey))
  if (!certSpki.equals(keySpki)) throw invalid('CA key does not belong to the CA certificate')
  const out: SigningCa = { cert, der, key }
  const uri = facts.uris[0]
  if (facts.uris.length === 1 && uri !== undefined) {
    try { out.trustDomain = parseSpiffeId(uri).trustDomain } catch { /* a CA without a SPIFFE ID names no trust domain */ }
  }
  return out
}

function extension (extnID: string, critical: boolean, value: { toSchema: () => asn1js.AsnType } | asn1js.AsnType): pkijs.Extension {
  const schema = 'toSchema' in value && typeof value.toSchema === 'function' ? value.toSchema() : value as asn1js.AsnType
  return new pkijs.Extension({ extnID, critical, extnValue: schema.toBER(false) })
}

/** keyUsage BIT STRING (RFC 5280 §4.2.1.3) from the first byte of flags; DER drops trailing zero bits. */
function keyUsage (bits: number): asn1js.BitString {
  let unused = 0
  while (unused < 7 && ((bits >> unused) & 1) === 0) unused++
  return new asn1js.BitString({ valueHex: new Uint8Array([bits]).buffer, unusedBits: unused })
}

async function keyIdentifier (publicKey: webcrypto.CryptoKey): Promise<ArrayBuffer> {
  // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value.
  const spki = new pkijs.PublicKeyInfo()
  spki.fromSchema(asn1js.fromBER(await webcrypto.subtle.exportKey('spki', publicKey)).result)
  const digest = createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest()
  return digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer
}

/** A one-attribute distinguished name (PKI.js would put several attributes in one multi-valued RDN). */
function name (type: string, value: string): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({ typesAndValues: [new pkijs.AttributeTypeAndValue({ type, value: new asn1js.Utf8String({ value }) })] })
}

interface CertificateSpec {
  subject: pkijs.RelativeDistinguishedNames
  issuer: pkijs.RelativeDistinguishedNames
  publicKey: webcrypto.CryptoKey
  signer: SigningKey
  issuerKeyId: ArrayBuffer
  notBefore: Date
  notAfter: Date
  ca: boolean
  keyUsageBits: number
  uri: string
  extKeyUsage?: string[]
  dnsNames?: string[]
  ips?: string[]
}

async function buildCertificate (spec: CertificateSpec): Promise<Buffer> {
  const cert = new pkijs.Certificate()
  cert.version = 2
  const serial = randomBytes(16)
  // A positive INTEGER (RFC 5280 §4.1.2.2) in minimal DER: the top bit clear (not negative) and
  // the first byte never 0 (a leading 0x00 before a byte below 0x80 is padding DER forbids;
  // OpenSSL refuses such a certificate, about one serial in 256 before this).
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01
  cert.serialNumber = new asn1js.Integer({ valueHex: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.byteLength) as ArrayBuffer })
  cert.issuer = spec.issuer
  cert.subject = spec.subject
  cert.notBefore.value = spec.notBefore
  cert.notAfter.value = spec.notAfter
  await cert.subjectPublicKeyInfo.importKey(spec.publicKey)
  const altNames = [
    new pkijs.GeneralName({ type: 6, value: spec.uri }),
    ...(spec.dnsNames ?? []).map((value) => new pkijs.GeneralName({ type: 2, value })),
    ...(spec.ips ?? []).map((ip) => {
      if (!isIPv4(ip)) throw invalid(`IP SAN ${JSON.stringify(ip)}: only IPv4 addresses are supported`)
      return new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: new Uint8Array(ip.split('.').map(Number)).buffer }) })
    }),
  ]
  cert.extensions = [
    // X509-SVID §4.1: cA=false on leaves; CAs set cA=true.
    extension(OID.basicConstraints, true, new pkijs.BasicConstraints({ cA: spec.ca })),
    // X509-SVID §4.3: leaves digitalSignature only (no keyCertSign / cRLSign); CAs keyCertSign (+ cRLSign).
    extension(OID.keyUsage, true, keyUsage(spec.keyUsageBits)),
    extension(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: await keyIdentifier(spec.publicKey) })),
    extension(OID.authorityKeyIdentifier, false, new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: spec.issuerKeyId }) })),
    // X509-SVID §2: exactly one URI SAN, the SPIFFE ID.
    extension(OID.subjectAltName, false, new pkijs.AltName({ altNames })),
  ]
  if (spec.extKeyUsage !== undefined) cert.extensions.push(extension(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: spec.extKeyUsage })))
  await cert.sign(spec.signer.privateKey, hashOf(spec.signer))
  return Buffer.from(cert.toSchema(true).toBER(false))
}

/** A self-signed root CA for a trust domain (URI SAN `spiffe://<td>`, cA=true, keyCertSign | cRLSign). */
export async function createRootCa (trustDomain: string, opts: { key: SigningKey, notBefore: Date, notAfter: Date, commonName: string }): Promise<SigningCa> {
  const td = parseSpiffeId(`spiffe://${trustDomain}`).trustDomain
  const subject = name(OID.commonName, opts.commonName)
  const der = await buildCertificate({
    subject,
    issuer: subject,
    publicKey: opts.key.publicKey,
    signer: opts.key,
    issuerKeyId: await keyIdentifier(opts.key.publicKey),
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    ca: true,
    keyUsageBits: 0x04 | 0x02,
    uri: `spiffe://${td}`,
  })
  return { cert: parseCertificateDer(der, 'CA certificate'), der, key: opts.key, trustDomain: td }
}

export interface IssuedX509Svid {
  /** The leaf, PEM (the CA is a trust anchor in the bundle and is not repeated). */
  certPem: string
  /** The leaf's private key, PKCS#8 PEM. */
  keyPem: string
  notAfter: Date
}

function clampToCa (ca: SigningCa, notAfter: Date): Date {
  // RFC 5280 §6.1.3 (a)(2): a certificate outliving its issuer cannot be validated past the issuer's notAfter.
  const caEnd = ca.cert.notAfter.value
  return notAfter.getTime() > caEnd.getTime() ? caEnd : notAfter
}

/**
 * Issues an X509-SVID for `spiffeId`, signed by `ca`: a fresh EC P-256 key, cA=false, keyUsage
 * digitalSignature (critical), EKU serverAuth + clientAuth, exactly one URI SAN.
 */
export async function issueX509Svid (ca: SigningCa, spiffeId: string, opts: { ttlSeconds: number, now?: Date, dnsNames?: string[], ips?: string[] }): Promise<IssuedX509Svid> {
  const id = parseWorkloadSpiffeId(spiffeId)
  if (ca.trustDomain !== undefined && ca.trustDomain !== id.trustDomain) {
    throw new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED', `the CA belongs to trust domain ${ca.trustDomain}; it cannot issue ${id.id}`, { trust_domain: ca.trustDomain, spiffe_id: id.id })
  }
  const now = opts.now ?? new Date()
  const leafKey = await generateSigningKey()
  const notAfter = clampToCa(ca, new Date(now.getTime() + opts.ttlSeconds * 1000))
  const der = await buildCertificate({
    subject: name(OID.organization, 'Portcullis issued SVID'),
    issuer: ca.cert.subject,
    publicKey: leafKey.publicKey,
    signer: ca.key,
    issuerKeyId: await keyIdentifier(ca.key.publicKey),
    notBefore: new Date(now.getTime() - BACKDATE_SECONDS * 1000),
    notAfter,
    ca: false,
    keyUsageBits: 0x80,
    uri: id.id,
    extKeyUsage: [OID.serverAuth, OID.clientAuth],
    ...(opts.dnsNames !== undefined ? { dnsNames: opts.dnsNames } : {}),
    ...(opts.ips !== undefined ? { ips: opts.ips } : {}),
  })
  return { certPem: derToPem(der), keyPem: await privateKeyPem(leafKey), notAfter }
}

/** A JWT-SVID signing key and its key id (RFC 7638 thumbprint unless given). */
export interface JwtSigningKey {
  key: SigningKey
  kid: string
}

export async function loadJwtSigningKey (pem: string, kid?: string): Promise<JwtSigningKey> {
  const key = await importSigningKey(pem, 'JWT signing key')
  return { key, kid: kid ?? await calculateJwkThumbprint(await exportJWK(key.publicKey)) }
}

/** The public JWK of a JWT signing key as a SPIFFE bundle entry (Trust Domain and Bundle §4.2.2: `use` jwt-svid, `kid`). */
export async function jwtBundleEntry (k: JwtSigningKey): Promise<JWK> {
  return { ...(await exportJWK(k.key.publicKey)), use: 'jwt-svid', kid: k.kid }
}

/** The CA as a SPIFFE bundle entry (§4.2.1: `use` x509-svid, `x5c` with the one certificate). */
export async function x509BundleEntry (ca: SigningCa): Promise<JWK> {
  return { ...(await exportJWK(ca.key.publicKey)), use: 'x509-svid', x5c: [ca.der.toString('base64')] }
}

/**
 * Issues a JWT-SVID (JWT-SVID §2, §3): header `alg`, `kid`, `typ: JWT`; claims `sub` (the
 * SPIFFE ID), `aud`, `exp`, `iat`.
 */
export async function issueJwtSvid (k: JwtSigningKey, spiffeId: string, opts: { audience: string[], ttlSeconds: number, now?: Date }): Promise<{ token: string, expiresAt: Date }> {
  const id = parseWorkloadSpiffeId(spiffeId)
  if (opts.audience.length === 0) throw new IdentityError('PORTCULLIS_IDENTITY_AUDIENCE', 'a JWT-SVID needs at least one audience (JWT-SVID §3)', {})
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000)
  const exp = now + opts.ttlSeconds
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: k.key.alg, kid: k.kid, typ: 'JWT' })
    .setSubject(id.id)
    .setAudience(opts.audience.length === 1 ? opts.audience[0] as string : opts.audience)
    .setIssuedAt(now)
    .setExpirationTime(exp)
    .sign(k.key.privateKey)
  return { token, expiresAt: new Date(exp * 1000) }
}
