/**
 * X.509-SVID verification. Certificates are generated in setup with @peculiar/x509 (WebCrypto).
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { x509 } from './support/pki.js'
import { mergeBundle, parsePemAuthorities, type TrustBundle } from '../../src/identity/bundle.js'
import { verifyX509Svid } from '../../src/identity/x509-svid.js'
import { DAY, HOUR, KU, makeCa, makeLeaf, makeTrustDomain, pemOf, T0, type Issued } from './support/pki.js'

type Chain = Awaited<ReturnType<typeof makeTrustDomain>>

let td: Chain
let bundles: Map<string, TrustBundle>
const lookup = (name: string): TrustBundle | undefined => bundles.get(name)

async function expectCode (chain: Uint8Array[], code: string, now: Date = T0, of: (n: string) => TrustBundle | undefined = lookup): Promise<void> {
  await assert.rejects(verifyX509Svid(chain, of, now, 'mtls'), (err: { code?: string }) => {
    assert.equal(err.code, code)
    return true
  })
}

before(async () => {
  td = await makeTrustDomain('example.org')
  const other = await makeTrustDomain('other.test')
  bundles = new Map([
    ['example.org', mergeBundle('example.org', [parsePemAuthorities(td.root.pem, 'example.org.pem')])],
    ['other.test', mergeBundle('other.test', [parsePemAuthorities(other.root.pem, 'other.pem')])],
  ])
})

describe('X.509-SVID: accepted', () => {
  test('leaf + intermediate chaining to the trust domain root', async () => {
    const { identity, expiresAt } = await verifyX509Svid(td.chain, lookup, T0, 'mtls')
    assert.equal(identity.type, 'x509-svid')
    assert.equal(identity.source, 'mtls')
    assert.equal(identity.spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
    assert.equal(identity.trust_domain, 'example.org')
    assert.equal(identity.path, '/ns/prod/sa/api')
    assert.equal(identity.subject, identity.spiffe_id)
    assert.equal(identity.x509?.fingerprint_sha256.length, 64)
    assert.equal(identity.x509?.chain_sha256.length, 3)
    assert.equal(expiresAt.getTime(), td.leaf.cert.notAfter.getTime())
    assert.equal(identity.expires_at, expiresAt.toISOString())
  })

  test('leaf signed directly by the root, chain sent with the root included, DNS SANs reported', async () => {
    const leaf = await makeLeaf({ issuer: td.root, uris: ['spiffe://example.org/direct'], dns: ['api.example.org'] })
    const r = await verifyX509Svid([leaf.der], lookup, T0, 'mtls')
    assert.equal(r.identity.spiffe_id, 'spiffe://example.org/direct')
    assert.deepEqual(r.identity.x509?.dns_sans, ['api.example.org'])
    const r2 = await verifyX509Svid([...td.chain, td.root.der], lookup, T0, 'mtls')
    assert.equal(r2.identity.spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
  })

  test('an intermediate that is itself in the bundle is a trust anchor', async () => {
    const b = mergeBundle('example.org', [parsePemAuthorities(td.intermediate.pem, 'int.pem')])
    const r = await verifyX509Svid([td.leaf.der], () => b, T0, 'mtls')
    assert.equal(r.identity.spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
  })
})

describe('X.509-SVID negative suite: each case has its own code', () => {
  test('untrusted root carrying the same trust-domain name → UNTRUSTED', async () => {
    const evil = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org' })
    const evilInt = await makeCa({ name: 'example.org intermediate', uri: 'spiffe://example.org', issuer: evil })
    const leaf = await makeLeaf({ issuer: evilInt, uris: ['spiffe://example.org/ns/prod/sa/api'] })
    await expectCode([leaf.der, evilInt.der], 'PORTCULLIS_IDENTITY_UNTRUSTED')
    await expectCode([leaf.der, evilInt.der, evil.der], 'PORTCULLIS_IDENTITY_UNTRUSTED')
  })

  test('expired leaf → EXPIRED', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, notBefore: new Date(T0.getTime() - 2 * HOUR), notAfter: new Date(T0.getTime() - 1000) })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_EXPIRED')
  })

  test('valid leaf checked after its expiry → EXPIRED', async () => {
    await expectCode(td.chain, 'PORTCULLIS_IDENTITY_EXPIRED', new Date(T0.getTime() + 2 * HOUR))
  })

  test('not-yet-valid leaf → NOT_YET_VALID', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, notBefore: new Date(T0.getTime() + 60_000), notAfter: new Date(T0.getTime() + HOUR) })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_NOT_YET_VALID')
  })

  test('expired intermediate → EXPIRED', async () => {
    const int = await makeCa({ issuer: td.root, name: 'old intermediate', notBefore: new Date(T0.getTime() - 10 * DAY), notAfter: new Date(T0.getTime() - DAY) })
    const leaf = await makeLeaf({ issuer: int })
    await expectCode([leaf.der, int.der], 'PORTCULLIS_IDENTITY_EXPIRED')
  })

  test('expired trust anchor → EXPIRED', async () => {
    const root = await makeCa({ name: 'expired root', notBefore: new Date(T0.getTime() - 10 * DAY), notAfter: new Date(T0.getTime() - DAY) })
    const leaf = await makeLeaf({ issuer: root, notBefore: new Date(T0.getTime() - HOUR) })
    const b = mergeBundle('example.org', [parsePemAuthorities(root.pem, 'r.pem')])
    await expectCode([leaf.der], 'PORTCULLIS_IDENTITY_EXPIRED', T0, () => b)
  })

  test('intermediate that is not a CA → INTERMEDIATE_NOT_CA', async () => {
    const int = await makeCa({ issuer: td.root, name: 'not a ca', ca: false, keyUsage: KU.digitalSignature | KU.keyCertSign })
    const leaf = await makeLeaf({ issuer: int })
    await expectCode([leaf.der, int.der], 'PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA')
  })

  test('intermediate CA without keyCertSign → INTERMEDIATE_NOT_CA', async () => {
    const int = await makeCa({ issuer: td.root, name: 'no keyCertSign', keyUsage: KU.digitalSignature | KU.cRLSign })
    const leaf = await makeLeaf({ issuer: int })
    await expectCode([leaf.der, int.der], 'PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA')
  })

  test('intermediate CA without any keyUsage → INTERMEDIATE_NOT_CA', async () => {
    const int = await makeCa({ issuer: td.root, name: 'no keyUsage', keyUsage: null })
    const leaf = await makeLeaf({ issuer: int })
    await expectCode([leaf.der, int.der], 'PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA')
  })

  test('path longer than the root pathLenConstraint → INTERMEDIATE_NOT_CA', async () => {
    const root = await makeCa({ name: 'pathlen0 root', pathLength: 0 })
    const int = await makeCa({ issuer: root, name: 'int under pathlen0' })
    const leaf = await makeLeaf({ issuer: int })
    const b = mergeBundle('example.org', [parsePemAuthorities(root.pem, 'r.pem')])
    await expectCode([leaf.der, int.der], 'PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', T0, () => b)
  })

  test('leaf with cA=true → LEAF_CA', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, ca: true })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_CA')
  })

  test('leaf with keyCertSign → LEAF_KEY_USAGE', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, keyUsage: KU.digitalSignature | KU.keyCertSign })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_KEY_USAGE')
  })

  test('leaf with cRLSign → LEAF_KEY_USAGE', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, keyUsage: KU.digitalSignature | KU.cRLSign })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_KEY_USAGE')
  })

  test('leaf without digitalSignature → LEAF_KEY_USAGE', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, keyUsage: KU.keyEncipherment })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_KEY_USAGE')
  })

  test('leaf without a keyUsage extension → LEAF_KEY_USAGE', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, keyUsage: null })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_KEY_USAGE')
  })

  test('two URI SANs → LEAF_SAN', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_SAN')
  })

  test('no URI SAN → LEAF_SAN', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: [], dns: ['api.example.org'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_SAN')
    const bare = await makeLeaf({ issuer: td.intermediate, uris: [] })
    await expectCode([bare.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_LEAF_SAN')
  })

  test('a non-spiffe URI SAN → BAD_SPIFFE_ID', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['https://example.org/ns/prod'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
  })

  test('an invalid SPIFFE ID (uppercase trust domain) → BAD_SPIFFE_ID', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://Example.org/x'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
  })

  test('a root-path SPIFFE ID → BAD_SPIFFE_ID', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://example.org'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
  })

  test('foreign trust domain signed by the local CA → UNTRUSTED (its own bundle does not sign it)', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://other.test/ns/prod/sa/api'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_UNTRUSTED')
  })

  test('unconfigured trust domain signed by the local CA → TRUST_DOMAIN_UNKNOWN', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://nowhere.test/ns/prod/sa/api'] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN')
  })

  test('missing intermediate → UNTRUSTED', async () => {
    await expectCode([td.leaf.der], 'PORTCULLIS_IDENTITY_UNTRUSTED')
  })

  test('an empty bundle trusts nothing → UNTRUSTED', async () => {
    const empty = mergeBundle('example.org', [{ x509Authorities: [], jwtAuthorities: [] }])
    await expectCode(td.chain, 'PORTCULLIS_IDENTITY_UNTRUSTED', T0, () => empty)
  })

  test('malformed DER → MALFORMED', async () => {
    await expectCode([Buffer.from('not a certificate')], 'PORTCULLIS_IDENTITY_MALFORMED')
    await expectCode([td.leaf.der.subarray(0, td.leaf.der.length - 10), td.intermediate.der], 'PORTCULLIS_IDENTITY_MALFORMED')
    await expectCode([Buffer.concat([td.leaf.der, Buffer.from([0])]), td.intermediate.der], 'PORTCULLIS_IDENTITY_MALFORMED')
    await expectCode([td.leaf.der, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])], 'PORTCULLIS_IDENTITY_MALFORMED')
    await expectCode([], 'PORTCULLIS_IDENTITY_MALFORMED')
  })

  test('unknown critical extension on the leaf → UNKNOWN_CRITICAL_EXTENSION', async () => {
    const leaf = await makeLeaf({ issuer: td.intermediate, extra: [new x509.Extension('1.3.6.1.4.1.99999.1', true, new Uint8Array([0x05, 0x00]))] })
    await expectCode([leaf.der, td.intermediate.der], 'PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION')
  })

  test('leaf first, not last: an intermediate presented as the leaf is refused', async () => {
    // PKI.js validates the last cert of `certs`; presenting the intermediate first must not validate it.
    // The intermediate's URI SAN is the trust domain ID (root path), so the leaf rules refuse it.
    await expectCode([td.intermediate.der, td.leaf.der], 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
    const int = await makeCa({ issuer: td.root, name: 'int without SAN' })
    const leaf = await makeLeaf({ issuer: int })
    await expectCode([int.der, leaf.der], 'PORTCULLIS_IDENTITY_LEAF_SAN')
  })
})

test('concurrent verifications sharing parsed intermediates and anchors stay independent', async () => {
  const leaves = await Promise.all(Array.from({ length: 8 }, async (_, i) => await makeLeaf({ issuer: td.intermediate, uris: [`spiffe://example.org/w/${i}`] })))
  const evil = await makeLeaf({ issuer: await makeCa({ name: 'example.org intermediate' }), uris: ['spiffe://example.org/w/evil'] })
  const results = await Promise.allSettled([...leaves.map((l) => verifyX509Svid([l.der, td.intermediate.der], lookup, T0, 'mtls')), verifyX509Svid([evil.der, td.intermediate.der], lookup, T0, 'mtls')])
  for (const [i, r] of results.slice(0, 8).entries()) {
    assert.equal(r.status, 'fulfilled')
    assert.equal(r.status === 'fulfilled' && r.value.identity.spiffe_id, `spiffe://example.org/w/${i}`)
  }
  const last = results[8]
  assert.equal(last?.status === 'rejected' && (last.reason as { code: string }).code, 'PORTCULLIS_IDENTITY_UNTRUSTED')
})

test('pemOf concatenates certificates', () => {
  assert.equal(pemOf(td.root, td.intermediate).match(/BEGIN CERTIFICATE/g)?.length, 2)
})

export type { Issued }
