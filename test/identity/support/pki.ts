/**
 * Test PKI, generated in setup with @peculiar/x509 over Node's WebCrypto (no key is committed).
 * Certificates are ECDSA P-256 / SHA-256 unless a test asks otherwise. Every validity window
 * is placed around T0, and tests pass `now` explicitly instead of reading the wall clock.
 */
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as x509 from '@peculiar/x509'
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

/** The tests' "now". */
export const T0 = new Date('2026-03-01T12:00:00Z')
export const HOUR = 3600_000
export const DAY = 24 * HOUR

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const

/** The signature algorithm a key signs certificates with (ECDSA P-256 or RSA PKCS#1 v1.5, SHA-256). */
function signingAlgorithmOf (key: CryptoKey): typeof EC | typeof RSA {
  return key.algorithm.name === RSA.name ? RSA : EC
}

export interface Issued {
  cert: x509.X509Certificate
  keys: CryptoKeyPair
  der: Buffer
  pem: string
}

export const KU = x509.KeyUsageFlags

let serial = 1
function nextSerial (): string {
  serial++
  return serial.toString(16).padStart(4, '0')
}

function wrap (cert: x509.X509Certificate, keys: CryptoKeyPair): Issued {
  return { cert, keys, der: Buffer.from(cert.rawData), pem: cert.toString('pem') + '\n' }
}

export interface CaOptions {
  name?: string
  /** URI SAN of the CA, e.g. the trust domain ID. */
  uri?: string
  issuer?: Issued
  notBefore?: Date
  notAfter?: Date
  /** basicConstraints cA (default true). */
  ca?: boolean
  /** keyUsage flags (default keyCertSign | cRLSign | digitalSignature); null = no keyUsage extension. */
  keyUsage?: number | null
  pathLength?: number
  /** An RSA-2048 key (signing with RSA PKCS#1 v1.5, SHA-256) instead of ECDSA P-256. */
  rsa?: boolean
}

/** A CA: self-signed root without `issuer`, an intermediate with it. */
export async function makeCa (opts: CaOptions = {}): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey(opts.rsa === true ? RSA : EC, true, ['sign', 'verify']) as CryptoKeyPair
  const name = `CN=${opts.name ?? 'Test CA'}, O=Portcullis Tests`
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.ca ?? true, opts.pathLength, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ]
  if (opts.keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(opts.keyUsage ?? (KU.keyCertSign | KU.cRLSign | KU.digitalSignature), true))
  if (opts.uri !== undefined) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: opts.uri }]))
  const notBefore = opts.notBefore ?? new Date(T0.getTime() - 30 * DAY)
  const notAfter = opts.notAfter ?? new Date(T0.getTime() + 365 * DAY)
  if (opts.issuer === undefined) {
    const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: nextSerial(), name, notBefore, notAfter, keys, signingAlgorithm: signingAlgorithmOf(keys.privateKey), extensions })
    return wrap(cert, keys)
  }
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(opts.issuer.keys.publicKey))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: name,
    issuer: opts.issuer.cert.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: opts.issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithmOf(opts.issuer.keys.privateKey),
    extensions,
  })
  return wrap(cert, keys)
}

export interface LeafOptions {
  issuer: Issued
  uris?: string[]
  dns?: string[]
  ips?: string[]
  notBefore?: Date
  notAfter?: Date
  ca?: boolean
  /** keyUsage flags (default digitalSignature); null = no keyUsage extension. */
  keyUsage?: number | null
  subject?: string
  /** Extra extensions (e.g. an unknown critical one). */
  extra?: x509.Extension[]
  /** The leaf's key pair (default: a new one); sharing one makes many leaves quick to issue. */
  keys?: CryptoKeyPair
}

/** An X509-SVID (or a deliberately broken one). */
export async function makeLeaf (opts: LeafOptions): Promise<Issued> {
  const keys = opts.keys ?? await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true),
    await x509.AuthorityKeyIdentifierExtension.create(opts.issuer.keys.publicKey),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
  ]
  if (opts.keyUsage !== null) extensions.push(new x509.KeyUsagesExtension(opts.keyUsage ?? (KU.digitalSignature), true))
  const names = [...(opts.uris ?? ['spiffe://example.org/ns/prod/sa/api']).map((value) => ({ type: 'url' as const, value })), ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value }))]
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false))
  extensions.push(...(opts.extra ?? []))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: opts.subject ?? 'O=SPIRE, C=US',
    issuer: opts.issuer.cert.subject,
    notBefore: opts.notBefore ?? new Date(T0.getTime() - HOUR),
    notAfter: opts.notAfter ?? new Date(T0.getTime() + HOUR),
    publicKey: keys.publicKey,
    signingKey: opts.issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithmOf(opts.issuer.keys.privateKey),
    extensions,
  })
  return wrap(cert, keys)
}

/** A typical SPIRE layout: root CA → intermediate → leaf. */
export async function makeTrustDomain (td: string, opts: { leafPath?: string } = {}): Promise<{ root: Issued, intermediate: Issued, leaf: Issued, chain: Buffer[] }> {
  const root = await makeCa({ name: `${td} root`, uri: `spiffe://${td}` })
  const intermediate = await makeCa({ name: `${td} intermediate`, uri: `spiffe://${td}`, issuer: root })
  const leaf = await makeLeaf({ issuer: intermediate, uris: [`spiffe://${td}${opts.leafPath ?? '/ns/prod/sa/api'}`] })
  return { root, intermediate, leaf, chain: [leaf.der, intermediate.der] }
}

/** PKCS#8 PEM of a leaf's private key (for a TLS test server). */
export async function privateKeyPem (issued: Issued): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', issued.keys.privateKey))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`
}

/** A TLS server certificate for 127.0.0.1 issued by `issuer`, valid around the real clock (Node's TLS checks it). */
export async function makeServerCert (issuer: Issued): Promise<{ cert: string, key: string }> {
  const now = Date.now()
  const leaf = await makeLeaf({ issuer, uris: [], ips: ['127.0.0.1'], dns: ['localhost'], keyUsage: KU.digitalSignature | KU.keyEncipherment, notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY), subject: 'CN=127.0.0.1' })
  return { cert: leaf.pem, key: await privateKeyPem(leaf) }
}

/** PEM of several certificates. */
export function pemOf (...certs: Issued[]): string {
  return certs.map((c) => c.pem).join('')
}

/** Envoy's URL encoding of a PEM (it escapes everything outside unreserved characters). */
export function urlEncodePem (pem: string): string {
  return encodeURIComponent(pem)
}

export interface JwtKey {
  alg: 'ES256' | 'RS256' | 'ES384' | 'PS256' | 'RS384' | 'EdDSA'
  kid: string
  privateKey: CryptoKey
  publicJwk: JWK
}

export async function makeJwtKey (alg: JwtKey['alg'], kid: string): Promise<JwtKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid }
  return { alg, kid, privateKey, publicJwk }
}

/** Signs a JWT with the given header overrides; `kid: null` omits the kid. */
export async function signJwt (key: JwtKey, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const h: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'JWT', ...header }
  if (h.kid === null) delete h.kid
  if (h.typ === null) delete h.typ
  return await new SignJWT(payload).setProtectedHeader(h as { alg: string }).sign(key.privateKey)
}

/** A SPIFFE bundle document (Trust Domain and Bundle §4). */
export async function spiffeBundle (opts: { x509?: Issued[], jwt?: JwtKey[], sequence?: number, refreshHint?: number, extra?: unknown[] }): Promise<string> {
  const keys: unknown[] = []
  for (const ca of opts.x509 ?? []) {
    const jwk = await exportJWK(await ca.cert.publicKey.export(webcrypto as unknown as Crypto))
    keys.push({ ...jwk, use: 'x509-svid', x5c: [ca.der.toString('base64')] })
  }
  for (const k of opts.jwt ?? []) keys.push({ ...k.publicJwk, use: 'jwt-svid' })
  keys.push(...(opts.extra ?? []))
  const doc: Record<string, unknown> = { keys }
  if (opts.sequence !== undefined) doc.spiffe_sequence = opts.sequence
  if (opts.refreshHint !== undefined) doc.spiffe_refresh_hint = opts.refreshHint
  return JSON.stringify(doc, null, 2)
}

/** A temporary directory removed after the test (or suite). */
export function tempDir (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-identity-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function write (dir: string, name: string, content: string): string {
  const p = join(dir, name)
  writeFileSync(p, content)
  return p
}

/** Seconds since the epoch at T0 + offset ms. */
export function epoch (offsetMs = 0): number {
  return Math.floor((T0.getTime() + offsetMs) / 1000)
}
export { x509 }
