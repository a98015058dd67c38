/**
 * Key material for the jwt and x509 tables, generated in test setup (never committed):
 * node:crypto key pairs, @peculiar/x509 certificates, and tokens signed with node:crypto.
 */
import { constants, createHmac, generateKeyPairSync, sign, webcrypto, type KeyObject } from 'node:crypto'
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

export interface KeyPair { privateKey: KeyObject, publicKey: KeyObject, spkiPem: string, jwk: Record<string, unknown>, privateJwk: Record<string, unknown> }

function pair (type: 'rsa' | 'ec' | 'ed25519', opts: Record<string, unknown> = {}): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number })
  return {
    privateKey, publicKey,
    spkiPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    jwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown>,
    privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, unknown>,
  }
}

export interface Keys {
  rsa: KeyPair, rsa2: KeyPair, p256: KeyPair, p384: KeyPair, p521: KeyPair, ed: KeyPair
  rsaCertPem: string, ecCertPem: string, chain: { root: string, inter: string, leaf: string, rootKey: CryptoKeyPair }
  csrPem: string
  /** A CA certificate carrying the extensions Go parses into dedicated fields. */
  richPem: string
  /** Ed25519 and RSA-PSS signed certificates. */
  edCertPem: string
  pssCertPem: string
}

let cached: Promise<Keys> | undefined

async function webPair (alg: RsaHashedKeyGenParams | EcKeyGenParams): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as CryptoKeyPair
}

const RSA_ALG = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' }

export async function keys (): Promise<Keys> {
  cached ??= (async () => {
    const rsa = pair('rsa', { modulusLength: 2048 })
    const rsa2 = pair('rsa', { modulusLength: 2048 })
    const p256 = pair('ec', { namedCurve: 'prime256v1' })
    const p384 = pair('ec', { namedCurve: 'secp384r1' })
    const p521 = pair('ec', { namedCurve: 'secp521r1' })
    const ed = pair('ed25519')
    const notBefore = new Date('2024-01-01T00:00:00Z')
    const notAfter = new Date('2034-01-01T00:00:00Z')
    // A certificate over the node:crypto RSA key: import it into webcrypto.
    const rsaWeb: CryptoKeyPair = {
      privateKey: await webcrypto.subtle.importKey('jwk', rsa.privateJwk as JsonWebKey, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']),
      publicKey: await webcrypto.subtle.importKey('jwk', rsa.jwk as JsonWebKey, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']),
    }
    const rsaCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=jwt-signer, O=Portcullis Test', notBefore, notAfter, keys: rsaWeb, signingAlgorithm: RSA_ALG,
    })
    const ecKeys = await webPair(EC_ALG)
    const ecCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '0a1b2c', name: 'CN=ec.example.com, C=DE, L=Berlin', notBefore, notAfter, keys: ecKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'ec.example.com' }, { type: 'url', value: 'spiffe://example.org/ns/default/sa/web' }, { type: 'ip', value: '10.0.0.1' }, { type: 'email', value: 'ops@example.com' }]),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']),
        new x509.BasicConstraintsExtension(false, undefined, true),
      ],
    })
    const rootKey = await webPair(EC_ALG)
    const interKey = await webPair(EC_ALG)
    const leafKey = await webPair(EC_ALG)
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '1000', name: 'CN=Test Root CA', notBefore, notAfter, keys: rootKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(rootKey.publicKey)],
    })
    const inter = await x509.X509CertificateGenerator.create({
      serialNumber: '2000', subject: 'CN=Test Intermediate CA', issuer: root.subject, notBefore, notAfter, signingKey: rootKey.privateKey, publicKey: interKey.publicKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(interKey.publicKey), await x509.AuthorityKeyIdentifierExtension.create(rootKey.publicKey)],
    })
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '3000', subject: 'CN=leaf.example.org', issuer: inter.subject, notBefore, notAfter, signingKey: interKey.privateKey, publicKey: leafKey.publicKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1']), new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'leaf.example.org' }]),
        await x509.AuthorityKeyIdentifierExtension.create(interKey.publicKey)],
    })
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=csr.example.com, O=Portcullis', keys: ecKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'csr.example.com' }])],
    })
    // DER by hand for what the library has no class for: name constraints and an unknown critical extension.
    const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), body.length < 128 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length]), body])
    const subtree = (tag: number, v: Buffer): Buffer => tlv(0x30, tlv(tag, v))
    const nameConstraints = tlv(0x30, Buffer.concat([
      tlv(0xa0, Buffer.concat([subtree(0x82, Buffer.from('.example.com')), subtree(0x87, Buffer.from([10, 0, 0, 0, 255, 0, 0, 0])), subtree(0x81, Buffer.from('example.com')), subtree(0x86, Buffer.from('.example.com'))])),
      tlv(0xa1, Buffer.concat([subtree(0x82, Buffer.from('bad.example.com')), subtree(0x87, Buffer.from([10, 1, 0, 0, 255, 255, 0, 0]))])),
    ]))
    const richKey = await webPair(EC_ALG)
    const rich = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '7fffffffffffffffffff', name: 'CN=Rich CA, O=Portcullis, O=Second Org, OU=Unit, C=US, ST=CA, L=SF, 2.5.4.5=SN-1, 2.5.4.17=94107, 2.5.4.9=1 Main St',
      notBefore, notAfter: new Date('2060-06-01T12:00:00Z'), keys: richKey, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.decipherOnly, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.9', '1.2.3.4.5']),
        new x509.CRLDistributionPointsExtension(['http://crl.example.com/ca.crl', 'http://crl2.example.com/ca.crl']),
        new x509.AuthorityInfoAccessExtension({ ocsp: ['http://ocsp.example.com'], caIssuers: ['http://ca.example.com/ca.crt'] } as never),
        new x509.CertificatePolicyExtension(['2.23.140.1.2.1', '1.3.6.1.4.1.99999.1']),
        new x509.Extension('2.5.29.30', true, new Uint8Array(nameConstraints)),
        new x509.Extension('1.2.3.4', true, new Uint8Array(tlv(0x05, Buffer.alloc(0)))),
        new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '2001:db8::1' }, { type: 'url', value: 'https://u:p@example.com:8443/a%2Fb?q=1#f' }, { type: 'url', value: 'urn:example:x' }]),
        await x509.SubjectKeyIdentifierExtension.create(richKey.publicKey),
      ],
    })
    const edKeys = await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair
    const edCert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '02', name: 'CN=ed25519', notBefore, notAfter, keys: edKeys, signingAlgorithm: { name: 'Ed25519' } })
    const pssKeys = await webcrypto.subtle.generateKey({ name: 'RSA-PSS', hash: 'SHA-384', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }, true, ['sign', 'verify']) as CryptoKeyPair
    const pssCert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '03', name: 'CN=pss', notBefore, notAfter, keys: pssKeys, signingAlgorithm: { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 } as Algorithm })
    return {
      edCertPem: edCert.toString('pem') + '\n', pssCertPem: pssCert.toString('pem') + '\n',
      richPem: rich.toString('pem') + '\n',
      rsa, rsa2, p256, p384, p521, ed,
      rsaCertPem: rsaCert.toString('pem') + '\n', ecCertPem: ecCert.toString('pem') + '\n',
      chain: { root: root.toString('pem') + '\n', inter: inter.toString('pem') + '\n', leaf: leaf.toString('pem') + '\n', rootKey },
      csrPem: csr.toString('pem') + '\n',
    }
  })()
  return await cached
}

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url')

/** A JWS compact token signed with node:crypto. */
export function token (alg: string, header: Record<string, unknown> | string, payload: Record<string, unknown> | string, key: KeyObject | string): string {
  const h = typeof header === 'string' ? header : JSON.stringify({ alg, ...header })
  const p = typeof payload === 'string' ? payload : JSON.stringify(payload)
  const input = b64u(h) + '.' + b64u(p)
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[alg.slice(2)] ?? 'sha256'
  let sig: Buffer
  if (typeof key === 'string') sig = createHmac(hash, key).update(input).digest()
  else if (alg.startsWith('RS')) sig = sign(hash, Buffer.from(input), key)
  else if (alg.startsWith('PS')) sig = sign(hash, Buffer.from(input), { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
  else if (alg.startsWith('ES')) sig = sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  else sig = sign(null, Buffer.from(input), key)
  return input + '.' + b64u(sig)
}
