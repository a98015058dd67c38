/**
 * X.509-SVID chains an attacker or a mis-issuing CA can present, through both verifiers
 * (verifyX509Svid and the PKI.js reference it defers to): each is refused with its code, and a
 * legitimate chain of the same shape is still accepted. Real certificates, generated here.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey, sign, webcrypto } from 'node:crypto'
import * as asn1js from 'asn1js'
import { mergeBundle, parsePemAuthorities, type TrustBundle } from '../../src/identity/bundle.js'
import { verifyX509Svid, verifyX509SvidReference } from '../../src/identity/x509-svid.js'
import { DAY, KU, makeCa, makeLeaf, T0, x509, type Issued } from './support/pki.js'

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

function bundleOf (...roots: Issued[]): (td: string) => TrustBundle | undefined {
  const b = mergeBundle('example.org', [parsePemAuthorities(roots.map((r) => r.pem).join(''), 'roots.pem')])
  return (td) => td === 'example.org' ? b : undefined
}

/** DER TLV with a short or two-byte length. */
function tlv (tag: number, ...content: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = Buffer.concat(content)
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return new Uint8Array(Buffer.concat([Buffer.from([tag, ...len]), body]))
}

/** A nameConstraints extension (critical) with subtrees of one GeneralName type: URI [6] or dNSName [2]. */
function nameConstraints (o: { permitted?: string[], excluded?: string[], type?: 'uri' | 'dns' }): x509.Extension {
  const tag = o.type === 'dns' ? 0x82 : 0x86
  const subtrees = (xs: string[]): Uint8Array[] => xs.map((x) => tlv(0x30, tlv(tag, Buffer.from(x, 'latin1'))))
  const parts: Uint8Array[] = []
  if ((o.permitted ?? []).length > 0) parts.push(tlv(0xa0, ...subtrees(o.permitted ?? [])))
  if ((o.excluded ?? []).length > 0) parts.push(tlv(0xa1, ...subtrees(o.excluded ?? [])))
  return new x509.Extension('2.5.29.30', true, tlv(0x30, ...parts))
}

/** A CA certificate with the given subject, issued (in name and signature) by `issuer`'s name and key, with extra extensions. */
async function caCert (o: { subject: string, keys: CryptoKeyPair, issuerName: string, issuerKeys: CryptoKeyPair, extra?: x509.Extension[] }): Promise<Issued> {
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Math.floor(Math.random() * 1e9).toString(16),
    subject: o.subject,
    issuer: o.issuerName,
    notBefore: new Date(T0.getTime() - DAY),
    notAfter: new Date(T0.getTime() + DAY),
    publicKey: o.keys.publicKey,
    signingKey: o.issuerKeys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(KU.keyCertSign | KU.cRLSign | KU.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(o.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(o.issuerKeys.publicKey),
      ...(o.extra ?? []),
    ],
  })
  return { cert, keys: o.keys, der: Buffer.from(cert.rawData), pem: cert.toString('pem') + '\n' }
}

async function keys (): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair
}

/** Both verifiers' answers: the SPIFFE ID accepted, or the error code. */
async function both (chain: Buffer[], lookup: (td: string) => TrustBundle | undefined): Promise<[string, string]> {
  const outcome = async (f: typeof verifyX509Svid): Promise<string> => {
    try { return (await f(chain, lookup, T0, 'mtls')).identity.spiffe_id as string } catch (err) { return (err as { code?: string }).code ?? `threw ${(err as Error).message}` }
  }
  return [await outcome(verifyX509Svid), await outcome(verifyX509SvidReference)]
}

test('presented CA certificates that issue each other (a loop anyone can make) are refused, not searched forever', async () => {
  const root = await makeCa({ name: 'example.org root' })
  const kx = await keys()
  const ky = await keys()
  const X = await caCert({ subject: 'CN=X', keys: kx, issuerName: 'CN=Y', issuerKeys: ky })
  const Y = await caCert({ subject: 'CN=Y', keys: ky, issuerName: 'CN=X', issuerKeys: kx })
  const leaf = await makeLeaf({ issuer: X, uris: ['spiffe://example.org/attacker'] })
  assert.deepEqual(await both([leaf.der, X.der, Y.der], bundleOf(root)), ['PORTCULLIS_IDENTITY_UNTRUSTED', 'PORTCULLIS_IDENTITY_UNTRUSTED'])
  // the same loop beside a genuine path: the genuine path is still found
  const kz = await keys()
  const Z = await caCert({ subject: 'CN=X', keys: kz, issuerName: root.cert.subject, issuerKeys: root.keys })
  const good = await makeLeaf({ issuer: Z, uris: ['spiffe://example.org/good'] })
  assert.deepEqual(await both([good.der, Z.der, X.der, Y.der], bundleOf(root)), ['spiffe://example.org/good', 'spiffe://example.org/good'])
})

test('name constraints hold on every CA of the path: a sub-CA cannot re-permit what its issuer left out, and the anchor\'s apply', async () => {
  const root = await makeCa({ name: 'example.org root' })
  const rootKeys = root.keys
  const lookup = bundleOf(root)
  const constrained = await caCert({ subject: 'CN=only other.org', keys: await keys(), issuerName: root.cert.subject, issuerKeys: rootKeys, extra: [nameConstraints({ permitted: ['other.org'] })] })
  const widening = await caCert({ subject: 'CN=re-permits example.org', keys: await keys(), issuerName: constrained.cert.subject, issuerKeys: constrained.keys, extra: [nameConstraints({ permitted: ['example.org'] })] })
  const l1 = await makeLeaf({ issuer: widening, uris: ['spiffe://example.org/workload'] })
  assert.deepEqual(await both([l1.der, widening.der, constrained.der], lookup), ['PORTCULLIS_IDENTITY_UNTRUSTED', 'PORTCULLIS_IDENTITY_UNTRUSTED'])

  // permitted for the trust domain (exactly, or as a domain below .org): accepted
  const permits = await caCert({ subject: 'CN=example.org only', keys: await keys(), issuerName: root.cert.subject, issuerKeys: rootKeys, extra: [nameConstraints({ permitted: ['example.org'] })] })
  const l2 = await makeLeaf({ issuer: permits, uris: ['spiffe://example.org/workload'] })
  assert.deepEqual(await both([l2.der, permits.der], lookup), ['spiffe://example.org/workload', 'spiffe://example.org/workload'])
  const below = await caCert({ subject: 'CN=below .org', keys: await keys(), issuerName: root.cert.subject, issuerKeys: rootKeys, extra: [nameConstraints({ permitted: ['.org'] })] })
  const l3 = await makeLeaf({ issuer: below, uris: ['spiffe://example.org/workload'] })
  assert.deepEqual(await both([l3.der, below.der], lookup), ['spiffe://example.org/workload', 'spiffe://example.org/workload'])

  // the anchor's own constraints
  const anchorKeys = await keys()
  const excludingRoot = await caCert({ subject: 'CN=anchor excluding example.org', keys: anchorKeys, issuerName: 'CN=anchor excluding example.org', issuerKeys: anchorKeys, extra: [nameConstraints({ excluded: ['example.org'] })] })
  const l4 = await makeLeaf({ issuer: excludingRoot, uris: ['spiffe://example.org/workload'] })
  assert.deepEqual(await both([l4.der], bundleOf(excludingRoot)), ['PORTCULLIS_IDENTITY_UNTRUSTED', 'PORTCULLIS_IDENTITY_UNTRUSTED'])

  // DNS SANs against dNSName constraints
  const dnsOnly = await caCert({ subject: 'CN=dns example.org', keys: await keys(), issuerName: root.cert.subject, issuerKeys: rootKeys, extra: [nameConstraints({ permitted: ['example.org'], type: 'dns' })] })
  const inside = await makeLeaf({ issuer: dnsOnly, uris: ['spiffe://example.org/web'], dns: ['api.example.org'] })
  assert.deepEqual(await both([inside.der, dnsOnly.der], lookup), ['spiffe://example.org/web', 'spiffe://example.org/web'])
  const outside = await makeLeaf({ issuer: dnsOnly, uris: ['spiffe://example.org/web'], dns: ['api.example.org', 'evil.com'] })
  assert.deepEqual(await both([outside.der, dnsOnly.der], lookup), ['PORTCULLIS_IDENTITY_UNTRUSTED', 'PORTCULLIS_IDENTITY_UNTRUSTED'])
})

/** The leaf with its tbsCertificate edited (`edit` gets its parts), signed again by the issuer's key (ECDSA, SHA-256). */
async function reissued (leafDer: Buffer, issuer: Issued, edit: (tbsParts: asn1js.AsnType[]) => void): Promise<Buffer> {
  const cert = asn1js.fromBER(new Uint8Array(leafDer)).result as asn1js.Sequence
  const [tbs, alg] = cert.valueBlock.value as [asn1js.Sequence, asn1js.Sequence]
  const parts = tbs.valueBlock.value
  edit(parts)
  const tbsDer = Buffer.from(new asn1js.Sequence({ value: parts }).toBER())
  const key = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', issuer.keys.privateKey)), format: 'der', type: 'pkcs8' })
  const out = new asn1js.Sequence({ value: [asn1js.fromBER(new Uint8Array(tbsDer)).result, new asn1js.Sequence({ value: alg.valueBlock.value }), new asn1js.BitString({ valueHex: new Uint8Array(sign('sha256', tbsDer, key)) })] })
  return Buffer.from(out.toBER())
}

/** A DER time element with the given text (UTCTime 0x17, GeneralizedTime 0x18). */
function time (tag: number, text: string): asn1js.AsnType {
  return asn1js.fromBER(new Uint8Array(Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')]))).result
}

test('what a CA may sign but RFC 5280 forbids: another inner signature algorithm, a validity time not in Zulu, a broken hash, a critical AIA or CRL distribution point', async () => {
  const root = await makeCa({ name: 'example.org root' })
  const int = await makeCa({ name: 'example.org intermediate', issuer: root })
  const lookup = bundleOf(root)
  const leaf = await makeLeaf({ issuer: int, uris: ['spiffe://example.org/w'] })
  assert.deepEqual(await both([leaf.der, int.der], lookup), ['spiffe://example.org/w', 'spiffe://example.org/w'], 'the leaf as issued')
  // tbsCertificate.signature says SHA-1 with RSA, the certificate ECDSA with SHA-256
  const mismatch = await reissued(leaf.der, int, (p) => { (p[2] as asn1js.Sequence).valueBlock.value = [new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.1.5' })] })
  assert.deepEqual(await both([mismatch, int.der], lookup), ['PORTCULLIS_IDENTITY_MALFORMED', 'PORTCULLIS_IDENTITY_MALFORMED'])
  // notAfter 11:00Z written with an offset, and as local time: read wrongly, an expired leaf looked valid until days later
  for (const notAfter of ['20260301130000+0200', '20260301110000']) {
    const der = await reissued(leaf.der, int, (p) => { (p[4] as asn1js.Sequence).valueBlock.value = [time(0x17, '260228120000Z'), time(0x18, notAfter)] })
    assert.deepEqual(await both([der, int.der], lookup), ['PORTCULLIS_IDENTITY_MALFORMED', 'PORTCULLIS_IDENTITY_MALFORMED'], notAfter)
  }
  // the canonical GeneralizedTime is fine (RFC 5280 asks for it from 2050; a reader must take it)
  const general = await reissued(leaf.der, int, (p) => { (p[4] as asn1js.Sequence).valueBlock.value = [time(0x17, '260228120000Z'), time(0x18, '20260301130000Z')] })
  assert.deepEqual(await both([general, int.der], lookup), ['spiffe://example.org/w', 'spiffe://example.org/w'])
  // SHA-1: a leaf, an intermediate
  const sha1Key = createPrivateKey({ key: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', int.keys.privateKey)), format: 'der', type: 'pkcs8' })
  const cert = asn1js.fromBER(new Uint8Array(leaf.der)).result as asn1js.Sequence
  const [tbs] = cert.valueBlock.value as [asn1js.Sequence]
  const sha1Alg = new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.2.840.10045.4.1' })] })
  tbs.valueBlock.value[2] = sha1Alg
  const sha1Tbs = Buffer.from(new asn1js.Sequence({ value: tbs.valueBlock.value }).toBER())
  const sha1Leaf = Buffer.from(new asn1js.Sequence({ value: [asn1js.fromBER(new Uint8Array(sha1Tbs)).result, new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: '1.2.840.10045.4.1' })] }), new asn1js.BitString({ valueHex: new Uint8Array(sign('sha1', sha1Tbs, sha1Key)) })] }).toBER())
  assert.deepEqual(await both([sha1Leaf, int.der], lookup), ['PORTCULLIS_IDENTITY_UNTRUSTED', 'PORTCULLIS_IDENTITY_UNTRUSTED'])
  // critical AIA / CRL distribution points: nothing here processes them
  for (const oid of ['1.3.6.1.5.5.7.1.1', '2.5.29.31']) {
    const crit = await makeLeaf({ issuer: int, uris: ['spiffe://example.org/w'], extra: [new x509.Extension(oid, true, new Uint8Array([0x30, 0x00]))] })
    assert.deepEqual(await both([crit.der, int.der], lookup), ['PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION', 'PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION'], oid)
    const plain = await makeLeaf({ issuer: int, uris: ['spiffe://example.org/w'], extra: [new x509.Extension(oid, false, new Uint8Array([0x30, 0x00]))] })
    assert.deepEqual(await both([plain.der, int.der], lookup), ['spiffe://example.org/w', 'spiffe://example.org/w'], `${oid} non-critical`)
  }
})
