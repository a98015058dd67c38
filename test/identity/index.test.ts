/**
 * The identity verifier end to end: every source, precedence, "none" versus "rejected", the
 * verified-credential cache and trust changes. Certificates come from @peculiar/x509 and tokens
 * from jose, generated in setup; trust files live in a temp directory.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createHash } from 'node:crypto'
import { createIdentityVerifier, validateIdentityConfig, type IdentityResult, type IdentityVerifier, type TrustChangeEvent } from '../../src/identity/index.js'
import { epoch, HOUR, makeCa, makeJwtKey, makeLeaf, makeTrustDomain, pemOf, signJwt, spiffeBundle, T0, tempDir, urlEncodePem, write, type JwtKey } from './support/pki.js'

type Td = Awaited<ReturnType<typeof makeTrustDomain>>
let td: Td
let svidKey: JwtKey
let k8sKey: JwtKey
let dir: string
let rootFile: string
const SUB = 'spiffe://example.org/ns/prod/sa/api'
const K8S_ISS = 'https://kubernetes.default.svc.cluster.local'

function makeVerifier (t: { after: (fn: () => Promise<void>) => void }, clock: { now: Date } = { now: T0 }, extra: Record<string, unknown> = {}): IdentityVerifier {
  const config = validateIdentityConfig({
    trust_domains: { 'example.org': { x509_authorities: [rootFile], spiffe_bundles: [`${dir}/jwt-bundle.json`] } },
    x509_svid: { xfcc: { trusted_proxies: ['127.0.0.1', '10.0.0.0/8'] } },
    jwt_svid: { audiences: ['portcullis'] },
    oidc: { issuers: [{ issuer: K8S_ISS, audiences: ['portcullis'], jwks_file: `${dir}/k8s-jwks.json` }] },
    watch: { enabled: false },
    ...extra,
  })
  const v = createIdentityVerifier(config, { now: () => clock.now })
  t.after(async () => await v.close())
  return v
}

function verified (r: IdentityResult): NonNullable<Extract<IdentityResult, { kind: 'verified' }>['identity']> {
  if (r.kind !== 'verified') assert.fail(`expected verified, got ${r.kind}${r.kind === 'rejected' ? ` ${r.error.code}` : ''}`)
  return r.identity
}

function rejectedCode (r: IdentityResult): string {
  if (r.kind !== 'rejected') assert.fail(`expected rejected, got ${r.kind}`)
  return r.error.code
}

const xfccFor = (chain: string, leafPem: string, leafDer: Buffer): string =>
  `By=spiffe://example.org/envoy;Hash=${createHash('sha256').update(leafDer).digest('hex')};Cert="${urlEncodePem(leafPem)}";Chain="${urlEncodePem(chain)}";Subject="O=SPIRE,C=US";URI=${SUB}`

before(async () => {
  td = await makeTrustDomain('example.org')
  svidKey = await makeJwtKey('ES256', 'svid-1')
  k8sKey = await makeJwtKey('RS256', 'k8s-1')
})

describe('verifier: positive case for every source', () => {
  before(async () => {
    dir = mkdtempSync(`${tmpdir()}/portcullis-identity-index-`)
    rootFile = write(dir, 'root.pem', td.root.pem)
    write(dir, 'jwt-bundle.json', await spiffeBundle({ jwt: [svidKey], sequence: 4 }))
    write(dir, 'k8s-jwks.json', JSON.stringify({ keys: [{ ...k8sKey.publicJwk, use: 'sig' }] }))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('mTLS peer chain', async (t) => {
    const v = makeVerifier(t)
    const id = verified(await v.verify({ peerCertificates: td.chain }))
    assert.equal(id.type, 'x509-svid')
    assert.equal(id.source, 'mtls')
    assert.equal(id.spiffe_id, SUB)
    assert.ok(Object.isFrozen(id) && Object.isFrozen(id.x509))
  })

  test('XFCC from a trusted proxy: the last element is the caller', async (t) => {
    const v = makeVerifier(t)
    const other = await makeLeaf({ issuer: td.intermediate, uris: ['spiffe://example.org/ns/edge/sa/gateway'] })
    const first = `By=spiffe://example.org/edge;Cert="${urlEncodePem(other.pem)}";URI=spiffe://example.org/ns/edge/sa/gateway`
    const header = `${first},${xfccFor(pemOf(td.leaf, td.intermediate), td.leaf.pem, td.leaf.der)}`
    const id = verified(await v.verify({ headers: { 'x-forwarded-client-cert': header }, remoteAddress: '::ffff:10.1.2.3' }))
    assert.equal(id.source, 'xfcc')
    assert.equal(id.spiffe_id, SUB)
  })

  test('JWT-SVID in Authorization: Bearer', async (t) => {
    const v = makeVerifier(t)
    const token = await signJwt(svidKey, { sub: SUB, aud: 'portcullis', exp: epoch(HOUR) })
    const id = verified(await v.verify({ headers: { authorization: `Bearer ${token}` } }))
    assert.equal(id.type, 'jwt-svid')
    assert.equal(id.spiffe_id, SUB)
  })

  test('JWT-SVID in a configured header', async (t) => {
    const v = makeVerifier(t, { now: T0 }, { jwt_svid: { audiences: ['portcullis'], header: 'x-spiffe-jwt' } })
    const token = await signJwt(svidKey, { sub: SUB, aud: 'portcullis', exp: epoch(HOUR) })
    assert.equal(verified(await v.verify({ headers: { 'x-spiffe-jwt': token } })).spiffe_id, SUB)
  })

  test('Kubernetes service-account token via OIDC (JWKS file)', async (t) => {
    const v = makeVerifier(t)
    const token = await signJwt(k8sKey, {
      iss: K8S_ISS, sub: 'system:serviceaccount:payments:api', aud: ['portcullis'], exp: epoch(HOUR),
      'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'api', uid: 'u1' }, pod: { name: 'api-1', uid: 'p1' } },
    }, { typ: null })
    const id = verified(await v.verify({ headers: { authorization: `Bearer ${token}` } }))
    assert.equal(id.type, 'oidc')
    assert.equal(id.kubernetes?.namespace, 'payments')
    assert.equal(id.kubernetes?.service_account.name, 'api')
    assert.equal(id.kubernetes?.pod?.name, 'api-1')
  })

  test('no credential → none; deny is the default for both settings', async (t) => {
    const v = makeVerifier(t)
    assert.deepEqual(await v.verify({}), { kind: 'none' })
    assert.deepEqual(await v.verify({ headers: { authorization: 'Basic dXNlcjpwdw==' } }), { kind: 'none' })
    assert.equal(v.config.on_missing, 'deny')
    assert.equal(v.config.on_rejected, 'deny')
  })

  describe('rejections are never anonymous', () => {
    test('XFCC from an untrusted proxy → UNTRUSTED_PROXY', async (t) => {
      const v = makeVerifier(t)
      const header = xfccFor(pemOf(td.leaf, td.intermediate), td.leaf.pem, td.leaf.der)
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': header }, remoteAddress: '192.0.2.1' })), 'PORTCULLIS_IDENTITY_UNTRUSTED_PROXY')
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': header } })), 'PORTCULLIS_IDENTITY_UNTRUSTED_PROXY')
    })

    test('XFCC with injected quotes and commas → MALFORMED, and never a forged element', async (t) => {
      const v = makeVerifier(t)
      const evil = await makeLeaf({ issuer: await makeCa({ name: 'evil' }), uris: ['spiffe://example.org/ns/prod/sa/admin'] })
      // A client-controlled Subject trying to close the quote and append its own element.
      const injected = `Subject="CN=x\\",Cert=${urlEncodePem(evil.pem)}";URI=${SUB}`
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': injected }, remoteAddress: '127.0.0.1' })), 'PORTCULLIS_IDENTITY_MALFORMED')
      const unbalanced = `Cert="${urlEncodePem(td.leaf.pem)}";Subject="CN=x,URI=spiffe://example.org/admin`
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': unbalanced }, remoteAddress: '127.0.0.1' })), 'PORTCULLIS_IDENTITY_MALFORMED')
      const hashMismatch = xfccFor(pemOf(td.leaf, td.intermediate), td.leaf.pem, evil.der)
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': hashMismatch }, remoteAddress: '127.0.0.1' })), 'PORTCULLIS_IDENTITY_MALFORMED')
      // URI without Cert is an unverifiable claim.
      assert.equal(rejectedCode(await v.verify({ headers: { 'x-forwarded-client-cert': `URI=${SUB}` }, remoteAddress: '127.0.0.1' })), 'PORTCULLIS_IDENTITY_MALFORMED')
    })

    test('a token of no configured issuer → ISSUER; garbage bearer → MALFORMED; repeated header → MALFORMED', async (t) => {
      const v = makeVerifier(t, { now: T0 }, { jwt_svid: { enabled: false, audiences: ['portcullis'] } })
      const foreign = await signJwt(k8sKey, { iss: 'https://accounts.example', sub: 'u', aud: 'portcullis', exp: epoch(HOUR) })
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: `Bearer ${foreign}` } })), 'PORTCULLIS_IDENTITY_ISSUER')
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: 'Bearer garbage' } })), 'PORTCULLIS_IDENTITY_MALFORMED')
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: 'Bearer' } })), 'PORTCULLIS_IDENTITY_MALFORMED')
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: ['Bearer a', 'Bearer b'] } })), 'PORTCULLIS_IDENTITY_MALFORMED')
    })

    test('with JWT-SVID enabled, a garbage or non-SPIFFE bearer token is judged as a JWT-SVID', async (t) => {
      const v = makeVerifier(t)
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: 'Bearer garbage' } })), 'PORTCULLIS_IDENTITY_MALFORMED')
      const foreign = await signJwt(svidKey, { iss: 'https://accounts.example', sub: 'user-1', aud: 'portcullis', exp: epoch(HOUR) })
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: `Bearer ${foreign}` } })), 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
    })
  })

  describe('precedence: mtls > xfcc > jwt-svid > oidc', () => {
    test('a valid mTLS chain wins over a bearer token; an invalid one is a rejection even with a valid token', async (t) => {
      const v = makeVerifier(t)
      const token = await signJwt(svidKey, { sub: 'spiffe://example.org/other', aud: 'portcullis', exp: epoch(HOUR) })
      const r = await v.verify({ peerCertificates: td.chain, headers: { authorization: `Bearer ${token}` } })
      assert.equal(verified(r).source, 'mtls')
      assert.equal(rejectedCode(await v.verify({ peerCertificates: [td.leaf.der], headers: { authorization: `Bearer ${token}` } })), 'PORTCULLIS_IDENTITY_UNTRUSTED')
    })

    test('an mTLS chain beats XFCC; XFCC beats JWT-SVID', async (t) => {
      const v = makeVerifier(t)
      const token = await signJwt(svidKey, { sub: SUB, aud: 'portcullis', exp: epoch(HOUR) })
      const xfcc = xfccFor(pemOf(td.leaf, td.intermediate), td.leaf.pem, td.leaf.der)
      const both = await v.verify({ peerCertificates: td.chain, headers: { 'x-forwarded-client-cert': xfcc, authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1' })
      assert.equal(verified(both).source, 'mtls')
      const r = await v.verify({ headers: { 'x-forwarded-client-cert': xfcc, authorization: `Bearer ${token}` }, remoteAddress: '127.0.0.1' })
      assert.equal(verified(r).source, 'xfcc')
    })

    test('a SPIFFE-subject token from an OIDC issuer is a JWT-SVID', async (t) => {
      const v = makeVerifier(t)
      const token = await signJwt(svidKey, { iss: K8S_ISS, sub: SUB, aud: 'portcullis', exp: epoch(HOUR) })
      assert.equal(verified(await v.verify({ headers: { authorization: `Bearer ${token}` } })).type, 'jwt-svid')
    })
  })

  describe('verified-credential cache', () => {
    test('a repeated credential is served from the cache until it expires', async (t) => {
      const clock = { now: T0 }
      const v = makeVerifier(t, clock)
      const first = await v.verify({ peerCertificates: td.chain })
      assert.equal(first.kind === 'verified' && first.cached, undefined)
      const second = await v.verify({ peerCertificates: td.chain })
      assert.equal(second.kind === 'verified' && second.cached, true)
      assert.equal(v.status().cache.hits, 1)
      // A different chain (same leaf, no intermediate) is a different key and is judged on its own.
      assert.equal(rejectedCode(await v.verify({ peerCertificates: [td.leaf.der] })), 'PORTCULLIS_IDENTITY_UNTRUSTED')
      // Past the leaf's notAfter the entry is gone and verification fails.
      clock.now = new Date(T0.getTime() + 2 * HOUR)
      assert.equal(rejectedCode(await v.verify({ peerCertificates: td.chain })), 'PORTCULLIS_IDENTITY_EXPIRED')
    })

    test('a token entry ends at the token exp', async (t) => {
      const clock = { now: T0 }
      const v = makeVerifier(t, clock, { jwt_svid: { audiences: ['portcullis'], leeway_seconds: 0 } })
      const token = await signJwt(svidKey, { sub: SUB, aud: 'portcullis', exp: epoch(60_000) })
      await v.verify({ headers: { authorization: `Bearer ${token}` } })
      clock.now = new Date(T0.getTime() + 30_000)
      const hit = await v.verify({ headers: { authorization: `Bearer ${token}` } })
      assert.equal(hit.kind === 'verified' && hit.cached, true)
      clock.now = new Date(T0.getTime() + 61_000)
      assert.equal(rejectedCode(await v.verify({ headers: { authorization: `Bearer ${token}` } })), 'PORTCULLIS_IDENTITY_EXPIRED')
    })

    test('a trust-bundle change empties the cache: a removed root stops verifying at once', async (t) => {
      const d = tempDir(t)
      const file = write(d, 'root.pem', td.root.pem)
      const config = validateIdentityConfig({ trust_domains: { 'example.org': { x509_authorities: [file] } }, watch: { enabled: false } })
      const v = createIdentityVerifier(config, { now: () => T0 })
      t.after(async () => await v.close())
      verified(await v.verify({ peerCertificates: td.chain }))
      const events: TrustChangeEvent[] = []
      v.on('trust-change', (ev) => events.push(ev))
      writeFileSync(file, (await makeCa({ name: 'new root' })).pem)
      await v.reload()
      assert.equal(events.length, 1)
      assert.equal(events[0]?.trustDomain, 'example.org')
      assert.equal(v.status().cache.size, 0)
      assert.equal(rejectedCode(await v.verify({ peerCertificates: td.chain })), 'PORTCULLIS_IDENTITY_UNTRUSTED')
    })

    test('cache disabled: every verification is fresh', async (t) => {
      const v = makeVerifier(t, { now: T0 }, { cache: { enabled: false } })
      await v.verify({ peerCertificates: td.chain })
      const r = await v.verify({ peerCertificates: td.chain })
      assert.equal(r.kind === 'verified' && r.cached, undefined)
      assert.equal(v.status().cache.enabled, false)
    })
  })

  test('status reports trust domains and OIDC key files', async (t) => {
    const v = makeVerifier(t)
    await v.ready
    const st = v.status()
    assert.equal(st.trust_domains['example.org']?.state, 'OK')
    assert.equal(st.trust_domains['example.org']?.sequence, 4)
    assert.equal(st.trust_domains['example.org']?.x509_authorities, 1)
    assert.equal(st.trust_domains['example.org']?.jwt_authorities, 1)
    assert.equal(st.oidc_key_files[K8S_ISS]?.state, 'OK')
    assert.equal(Object.keys(st.trust_domains).length, 1)
  })
})
