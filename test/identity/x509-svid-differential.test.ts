/**
 * Differential property test: verifyX509Svid (node:crypto path, x509-svid.ts) and the PKI.js
 * reference (verifyX509SvidReference) must agree on every chain — accept with the same
 * identity document and expiry, or reject with the same code. fast-check combines generated
 * leaves (every SPIFFE leaf-rule violation, odd SANs and extensions, self-issued names, leaves
 * of untrusted, non-CA, expired and path-length-limited CAs), chains in any order with missing,
 * extra and repeated certificates, several bundles, several clocks, and byte-level mutations of
 * the DER (flips, truncations, insertions) in the leaf and the intermediate, and leaves whose
 * tbsCertificate is mutated and then signed again by the issuing CA (a valid signature over an
 * odd structure: the fast path must refuse, as MALFORMED, every leaf the reference cannot
 * parse). Certificates are generated in setup with @peculiar/x509.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, sign } from 'node:crypto'
import * as asn1js from 'asn1js'
import fc from 'fast-check'
import { mergeBundle, parsePemAuthorities, type TrustBundle } from '../../src/identity/bundle.js'
import { verifyX509Svid, verifyX509SvidReference, x509PathStats } from '../../src/identity/x509-svid.js'
import { DAY, HOUR, KU, makeCa, makeLeaf, makeTrustDomain, T0, x509, type Issued } from './support/pki.js'

const cas: Issued[] = []
const leaves: Array<{ name: string, leaf: Issued }> = []
const bundles: TrustBundle[] = []

before(async () => {
  const td = await makeTrustDomain('example.org')
  const evil = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org' })
  const evilInt = await makeCa({ name: 'example.org intermediate', uri: 'spiffe://example.org', issuer: evil })
  const notCa = await makeCa({ issuer: td.root, name: 'not a ca', ca: false, keyUsage: KU.digitalSignature | KU.keyCertSign })
  const noCertSign = await makeCa({ issuer: td.root, name: 'no keyCertSign', keyUsage: KU.digitalSignature | KU.cRLSign })
  const expiredInt = await makeCa({ issuer: td.root, name: 'old intermediate', notBefore: new Date(T0.getTime() - 10 * DAY), notAfter: new Date(T0.getTime() - DAY) })
  const pathLen0 = await makeCa({ name: 'pathlen0 root', pathLength: 0 })
  const underPathLen0 = await makeCa({ issuer: pathLen0, name: 'int under pathlen0' })
  const second = await makeCa({ issuer: td.intermediate, name: 'second-level intermediate' })
  const expiredRoot = await makeCa({ name: 'expired root', notBefore: new Date(T0.getTime() - 10 * DAY), notAfter: new Date(T0.getTime() - DAY) })
  const policies = await makeCa({ issuer: td.root, name: 'with policies' })
  const rsaRoot = await makeCa({ name: 'rsa root', rsa: true })
  const rsaInt = await makeCa({ issuer: rsaRoot, name: 'rsa intermediate', rsa: true })
  cas.push(td.root, td.intermediate, evil, evilInt, notCa, noCertSign, expiredInt, pathLen0, underPathLen0, second, expiredRoot, policies, rsaRoot, rsaInt)

  const leaf = async (name: string, opts: Partial<Parameters<typeof makeLeaf>[0]> = {}): Promise<void> => {
    leaves.push({ name, leaf: await makeLeaf({ issuer: td.intermediate, ...opts }) })
  }
  await leaf('valid')
  await leaf('valid with DNS and IP SANs', { dns: ['api.example.org'], ips: ['10.0.0.1'], uris: ['spiffe://example.org/w/1'] })
  await leaf('cA=true', { ca: true })
  await leaf('keyCertSign', { keyUsage: KU.digitalSignature | KU.keyCertSign })
  await leaf('cRLSign', { keyUsage: KU.digitalSignature | KU.cRLSign })
  await leaf('no digitalSignature', { keyUsage: KU.keyEncipherment })
  await leaf('no keyUsage', { keyUsage: null })
  await leaf('two URIs', { uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] })
  await leaf('no URI', { uris: [], dns: ['x.example.org'] })
  await leaf('no SAN', { uris: [] })
  await leaf('https URI', { uris: ['https://example.org/x'] })
  await leaf('uppercase trust domain', { uris: ['spiffe://Example.org/x'] })
  await leaf('root path', { uris: ['spiffe://example.org'] })
  await leaf('foreign trust domain', { uris: ['spiffe://other.test/x'] })
  await leaf('unknown trust domain', { uris: ['spiffe://nowhere.test/x'] })
  await leaf('unknown critical extension', { extra: [new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))] })
  await leaf('unknown non-critical extension', { extra: [new x509.Extension('1.3.6.1.4.1.99999.1', false, new Uint8Array([0x05, 0x00]))] })
  await leaf('certificatePolicies', { extra: [new x509.CertificatePolicyExtension(['1.2.3.4'])] })
  await leaf('second SAN extension', { extra: [new x509.SubjectAlternativeNameExtension([{ type: 'email', value: 'a@example.org' }])] })
  await leaf('expired', { notBefore: new Date(T0.getTime() - 2 * HOUR), notAfter: new Date(T0.getTime() - 1000) })
  await leaf('not yet valid', { notBefore: new Date(T0.getTime() + 60_000), notAfter: new Date(T0.getTime() + HOUR) })
  await leaf('self-issued name', { subject: td.intermediate.cert.subject })
  await leaf('subject with odd spacing', { subject: 'CN=  Api   Server , O=SPIRE' })
  // Subjects printed by Node (X509Certificate) on one path and by printName on the other.
  for (const subject of ['CN=a\\,b, O=x', 'CN=w1+OU=multi, O=SPIRE', 'DC=org, DC=example, CN=u1', 'CN=Ünïcode, O=SPIRE', 'CN=\\#hash', 'CN=a\\;b, L=Paris, ST=IDF, C=FR', 'CN=x, 2.5.4.45=abc', 'CN=tab\tin, O=x', 'E=a@example.org, CN=x', 'O=SPIRE, C=US']) {
    await leaf(`subject ${subject}`, { subject })
  }
  await leaf('issuer-like subject differing only in case', { subject: 'CN=EXAMPLE.ORG INTERMEDIATE, O=Portcullis Tests' })
  for (const [name, issuer] of [['by root', td.root], ['by evil intermediate', evilInt], ['by non-CA', notCa], ['by no-keyCertSign', noCertSign], ['by expired intermediate', expiredInt], ['under pathlen0', underPathLen0], ['by second level', second], ['by expired root', expiredRoot], ['by intermediate with policies', policies], ['by RSA root', rsaRoot], ['by RSA intermediate', rsaInt]] as const) {
    leaves.push({ name, leaf: await makeLeaf({ issuer }) })
  }

  const pem = (...cs: Issued[]): TrustBundle => mergeBundle('example.org', [parsePemAuthorities(cs.map((c) => c.pem).join(''), 'b.pem')])
  bundles.push(pem(td.root), pem(td.intermediate), pem(evil), pem(td.root, evil), pem(pathLen0), pem(expiredRoot), pem(td.root, pathLen0, expiredRoot, rsaRoot), mergeBundle('example.org', [{ x509Authorities: [], jwtAuthorities: [] }]))
})

/** Mostly the first, sometimes any. */
function mostly<T> (good: fc.Arbitrary<T>, other: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: good, weight: 3 }, { arbitrary: other, weight: 1 })
}

const chainArb = fc.record({
  leaf: fc.nat(),
  // indexes into `cas`; mostly the usual intermediate
  presented: mostly<number[]>(fc.constant([1]), fc.array(fc.nat({ max: 13 }), { maxLength: 4 })),
  bundle: mostly(fc.constant(0), fc.nat({ max: 7 })),
  now: mostly(fc.constant(0), fc.constantFrom(-40 * DAY, 2 * HOUR, -2 * HOUR, 400 * DAY)),
  mutation: mostly(fc.constant<{ kind: string, at: number, byte: number }>({ kind: 'none', at: 0, byte: 0 }), fc.record({ kind: fc.constantFrom('flip', 'truncate', 'insert', 'flip-intermediate'), at: fc.nat(), byte: fc.nat({ max: 255 }) })),
})

function mutate (der: Buffer, m: { kind: string, at: number, byte: number }): Buffer {
  const b = Buffer.from(der)
  const at = m.at % b.length
  if (m.kind === 'flip' || m.kind === 'flip-intermediate') { b[at] = (b[at] as number) ^ (m.byte === 0 ? 1 : m.byte); return b }
  if (m.kind === 'truncate') return b.subarray(0, at)
  if (m.kind === 'insert') return Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)])
  return b
}

type Outcome = { ok: true, identity: unknown, expiresAt: number } | { ok: false, code: string }

async function outcome (p: Promise<{ identity: unknown, expiresAt: Date }>): Promise<Outcome> {
  try {
    const r = await p
    return { ok: true, identity: r.identity, expiresAt: r.expiresAt.getTime() }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? `not an IdentityError: ${String(err)}` }
  }
}

test('X.509-SVID: node:crypto path and PKI.js reference agree on generated and mutated chains', async () => {
  const before = { ...x509PathStats }
  let accepted = 0
  await fc.assert(fc.asyncProperty(chainArb, async (c) => {
    const { leaf } = leaves[c.leaf % leaves.length] as { leaf: Issued }
    let chain = [leaf.der, ...c.presented.map((i) => (cas[i] as Issued).der)]
    if (c.mutation.kind === 'flip-intermediate' && chain.length > 1) chain[1] = mutate(chain[1] as Buffer, c.mutation)
    else chain = [mutate(leaf.der, c.mutation), ...chain.slice(1)]
    const bundle = bundles[c.bundle] as TrustBundle
    const now = new Date(T0.getTime() + c.now)
    const fast = await outcome(verifyX509Svid(chain, () => bundle, now, 'mtls'))
    const reference = await outcome(verifyX509SvidReference(chain, () => bundle, now, 'mtls'))
    assert.deepEqual(fast, reference, JSON.stringify({ leaf: (leaves[c.leaf % leaves.length] as { name: string }).name, fast, reference, c }))
    if (fast.ok) accepted++
  }), { numRuns: 600, seed: Number(process.env.FC_SEED ?? 20261130) })
  const decided = x509PathStats.fast - before.fast
  assert.ok(decided > 300, `fast path decided ${decided} chains`)
  assert.ok(accepted > 50, `${accepted} chains accepted`)
})

test('X.509-SVID: each generated leaf, presented with its usual chain, gets the same answer from both paths', async () => {
  for (const { name, leaf } of leaves) {
    for (const bundle of bundles) {
      const chain = [leaf.der, (cas[1] as Issued).der]
      const fast = await outcome(verifyX509Svid(chain, () => bundle, T0, 'mtls'))
      assert.deepEqual(fast, await outcome(verifyX509SvidReference(chain, () => bundle, T0, 'mtls')), name)
    }
  }
})

test('X.509-SVID: a valid SPIRE-shaped chain is decided by the node:crypto path, not deferred', async () => {
  const before = { ...x509PathStats }
  const chain = [(leaves[0] as { leaf: Issued }).leaf.der, (cas[1] as Issued).der]
  const r = await verifyX509Svid(chain, () => bundles[0], T0, 'mtls')
  assert.equal(r.identity.spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
  assert.deepEqual({ fast: x509PathStats.fast - before.fast, deferred: x509PathStats.deferred - before.deferred }, { fast: 1, deferred: 0 })
})

test('X.509-SVID: a broken intermediate is MALFORMED before any leaf rule, on both paths (found by seed 4)', async () => {
  const bad = Buffer.from((cas[1] as Issued).der)
  bad[0] = (bad[0] as number) ^ 1
  for (const { name, leaf } of leaves) {
    const fast = await outcome(verifyX509Svid([leaf.der, bad], () => bundles[0], T0, 'mtls'))
    assert.deepEqual(fast, { ok: false, code: 'PORTCULLIS_IDENTITY_MALFORMED' }, name)
    assert.deepEqual(fast, await outcome(verifyX509SvidReference([leaf.der, bad], () => bundles[0], T0, 'mtls')), name)
  }
})

test('X.509-SVID: an RSA PKCS#1 v1.5 root and intermediate are verified by the node:crypto path, as by the reference', async () => {
  const { leaf } = leaves.find((l) => l.name === 'by RSA intermediate') as { leaf: Issued }
  const chain = [leaf.der, (cas[13] as Issued).der]
  const before = { ...x509PathStats }
  const fast = await outcome(verifyX509Svid(chain, () => bundles[6], T0, 'mtls'))
  assert.deepEqual({ fast: x509PathStats.fast - before.fast, deferred: x509PathStats.deferred - before.deferred }, { fast: 1, deferred: 0 })
  assert.equal(fast.ok, true)
  assert.deepEqual(fast, await outcome(verifyX509SvidReference(chain, () => bundles[6], T0, 'mtls')))
})

/** DER length octets (X.690 §8.1.3), for re-wrapping a mutated tbsCertificate. */
function tlv (tag: number, content: Uint8Array): Buffer {
  const n = content.byteLength
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...len]), content])
}

/**
 * `leaf` with its tbsCertificate content mutated, re-wrapped, and signed by `issuer` (ECDSA
 * P-256, SHA-256): a certificate a trusted CA really signed, whatever its structure.
 */
function resigned (leaf: Issued, issuer: Issued, m: { kind: string, at: number, byte: number }): Buffer {
  const cert = asn1js.fromBER(new Uint8Array(leaf.der)).result as asn1js.Sequence
  const [tbs, algorithm] = cert.valueBlock.value as [asn1js.Sequence, asn1js.Sequence]
  const head = tbs.idBlock.blockLength + tbs.lenBlock.blockLength
  const content = mutate(Buffer.from(tbs.valueBeforeDecodeView.subarray(head)), m)
  const newTbs = m.kind === 'raw' ? mutate(Buffer.from(tbs.valueBeforeDecodeView), { ...m, kind: 'flip' }) : tlv(0x30, content)
  const signature = sign('sha256', newTbs, { key: KeyObject.from(issuer.keys.privateKey), dsaEncoding: 'der' })
  return tlv(0x30, Buffer.concat([newTbs, Buffer.from(algorithm.valueBeforeDecodeView), tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]))
}

test('X.509-SVID: leaves with a mutated tbsCertificate re-signed by the CA get the reference\'s answer; never accepted where it refuses', async () => {
  const intermediate = cas[1] as Issued
  const usual = leaves.filter((l) => l.name === 'valid' || l.name === 'valid with DNS and IP SANs' || l.name.startsWith('subject '))
  let refusedByReference = 0
  let acceptedByBoth = 0
  await fc.assert(fc.asyncProperty(
    fc.nat(), fc.record({ kind: fc.constantFrom('flip', 'insert', 'truncate', 'raw'), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
    async (i, m) => {
      const { name, leaf } = usual[i % usual.length] as { name: string, leaf: Issued }
      const chain = [resigned(leaf, intermediate, m), intermediate.der]
      const fast = await outcome(verifyX509Svid(chain, () => bundles[0], T0, 'mtls'))
      const reference = await outcome(verifyX509SvidReference(chain, () => bundles[0], T0, 'mtls'))
      assert.ok(!fast.ok || reference.ok, `fast path accepted what the reference refuses: ${JSON.stringify({ name, m, reference })}`)
      assert.deepEqual(fast, reference, JSON.stringify({ name, m, fast, reference }))
      if (!reference.ok) refusedByReference++
      else acceptedByBoth++
    },
  ), { numRuns: 400, seed: Number(process.env.FC_SEED ?? 20261130) })
  // The property must meet both kinds of leaf: refused ones (most mutations) and accepted ones.
  assert.ok(refusedByReference > 100, `${refusedByReference} refused`)
  assert.ok(acceptedByBoth > 5, `${acceptedByBoth} accepted`)
})

test('X.509-SVID: a CA-signed leaf PKI.js parses but OpenSSL refuses (bytes after the extensions) is MALFORMED on both paths', async () => {
  const intermediate = cas[1] as Issued
  const { leaf } = leaves[0] as { leaf: Issued }
  const tbs = (asn1js.fromBER(new Uint8Array(leaf.der)).result as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence
  const contentLength = tbs.valueBeforeDecodeView.byteLength - tbs.idBlock.blockLength - tbs.lenBlock.blockLength
  const chain = [resigned(leaf, intermediate, { kind: 'insert', at: contentLength, byte: 0xf3 }), intermediate.der]
  const fast = await outcome(verifyX509Svid(chain, () => bundles[0], T0, 'mtls'))
  assert.deepEqual(fast, { ok: false, code: 'PORTCULLIS_IDENTITY_MALFORMED' })
  assert.deepEqual(fast, await outcome(verifyX509SvidReference(chain, () => bundles[0], T0, 'mtls')))
})
