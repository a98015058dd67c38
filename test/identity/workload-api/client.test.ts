/**
 * The Workload API client against a small real grpc-js server implementing our
 * workload.proto (test/helpers/workload-api-server.ts), over a real Unix socket. These are the
 * cases a real SPIRE agent cannot be made to produce — malformed bundles, InvalidArgument (a
 * request without the security header), Unimplemented, a stream the agent ends cleanly, a trust
 * domain dropped from a later message — so the agent is scripted here. Everything SPIRE can
 * produce (SVIDs, bundles, rotation, PermissionDenied, an agent going away) is tested against
 * SPIRE itself in spire.test.ts.
 */
import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { makeCa, makeLeaf, privateKeyPem, makeJwtKey, signJwt, type Issued } from '../support/pki.js'
import { startFakeAgent, type FakeAgent } from '../../helpers/workload-api-server.js'
import { waitFor } from '../../helpers/wait.js'
import { createIdentityVerifier, validateIdentityConfig, type IdentityVerifier, type TrustChangeEvent } from '../../../src/identity/index.js'
import { WorkloadApi, parseServingSvid, reconnectDelayMs } from '../../../src/identity/workload-api/index.js'
import { parseWorkloadEndpoint } from '../../../src/config/workload-api.js'
import { DEFAULTS } from '../../../src/config/defaults.js'
import type { WorkloadApiConfig } from '../../../src/config/schema.js'
import { isPortcullisError } from '../../../src/errors.js'

const HOUR = 3600_000

function config (endpoint: string, over: Partial<WorkloadApiConfig> = {}): WorkloadApiConfig {
  return { ...DEFAULTS.workload_api, enabled: true, socket: endpoint, backoff: { initial_ms: 20, max_ms: 100 }, ...over }
}

interface Td { root: Issued, leaf: Issued, chain: Buffer[] }

async function trustDomain (td: string): Promise<Td> {
  const now = Date.now()
  const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR) }
  const root = await makeCa({ name: `${td} root`, uri: `spiffe://${td}`, ...valid })
  const leaf = await makeLeaf({ issuer: root, uris: [`spiffe://${td}/ns/prod/sa/api`], ...valid })
  return { root, leaf, chain: [leaf.der] }
}

function verifier (): IdentityVerifier {
  return createIdentityVerifier(validateIdentityConfig({ x509_svid: { sources: ['mtls'] }, jwt_svid: { audiences: ['portcullis'] }, watch: { enabled: false } }))
}

async function verdict (v: IdentityVerifier, chain: Buffer[]): Promise<string> {
  try {
    await v.verifyX509Svid(chain)
    return 'verified'
  } catch (err) {
    return isPortcullisError(err) ? err.code : 'thrown'
  }
}

describe('Workload API client (scripted agent: cases SPIRE cannot produce)', () => {
  let agent: FakeAgent
  let a: Td
  let b: Td
  const closers: Array<() => Promise<void> | void> = []
  beforeEach(async () => {
    agent = await startFakeAgent()
    a = await trustDomain('example.org')
    b = await trustDomain('partner.example')
  })
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c()
    await agent.close()
  })

  const start = (v: IdentityVerifier, over: Partial<WorkloadApiConfig> = {}): WorkloadApi => {
    const w = new WorkloadApi(config(agent.endpoint, over))
    closers.push(() => v.close(), () => w.close())
    w.start({ trustStore: v.workloadApiSink })
    return w
  }

  test('every call carries workload.spiffe.io: true; bundles of each trust domain, federated ones included, verify only their own SVIDs', async () => {
    const jwtKey = await makeJwtKey('ES256', 'k1')
    agent.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': a.root.der, 'spiffe://partner.example': b.root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from(JSON.stringify({ keys: [jwtKey.publicJwk] })) } }) })
    const v = verifier()
    const w = start(v)
    await waitFor(() => w.ready(), 'both bundle streams')
    assert.deepEqual(agent.headers, ['true', 'true'])
    assert.equal(await verdict(v, a.chain), 'verified')
    assert.equal(await verdict(v, b.chain), 'verified')
    // a leaf naming example.org signed by partner.example's CA: never merged across trust domains
    const cross = await makeLeaf({ issuer: b.root, uris: ['spiffe://example.org/ns/prod/sa/api'], notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + HOUR) })
    assert.equal(await verdict(v, [cross.der]), 'PORTCULLIS_IDENTITY_UNTRUSTED')
    const token = await signJwt(jwtKey, { sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'portcullis', exp: Math.floor(Date.now() / 1000) + 300 })
    const r = await v.verify({ headers: { authorization: `Bearer ${token}` } })
    assert.equal(r.kind, 'verified')
    const st = w.status()
    assert.equal(st.state, 'OK')
    assert.equal(st.connected, true)
    assert.deepEqual(st.trust_domains, { x509: ['example.org', 'partner.example'], jwt: ['example.org'] })
    assert.equal(v.status().trust_domains['partner.example']?.sources[0]?.kind, 'workload_api_x509')
  })

  test('each message is the full state: a trust domain missing from a later message is removed (trust-change)', async () => {
    let send: ((m: unknown) => void) | undefined
    agent.handle('FetchX509Bundles', (call) => { send = (m) => call.write(m); call.write({ bundles: { 'spiffe://example.org': a.root.der, 'spiffe://partner.example': b.root.der } }) })
    const v = verifier()
    const changes: TrustChangeEvent[] = []
    v.on('trust-change', (e) => changes.push(e))
    const w = start(v, { trust_bundles: true })
    await waitFor(() => w.status().streams.x509_bundles?.updated === true, 'first bundles')
    assert.equal(await verdict(v, b.chain), 'verified')
    send?.({ bundles: { 'spiffe://example.org': a.root.der } })
    await waitFor(() => changes.some((c) => c.trustDomain === 'partner.example' && c.digest === ''), 'partner.example removed')
    assert.equal(await verdict(v, b.chain), 'PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN')
    assert.equal(await verdict(v, a.chain), 'verified')
    assert.equal(v.status().trust_domains['partner.example'], undefined)
  })

  test('a configured trust domain is the union of its file sources and the agent\'s bundle; the agent dropping it leaves the files', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-wapi-union-'))
    closers.push(() => rmSync(dir, { recursive: true, force: true }))
    const other = await trustDomain('example.org') // a second CA of the same trust domain, from a file
    writeFileSync(join(dir, 'ca.pem'), other.root.pem)
    let send: ((m: unknown) => void) | undefined
    agent.handle('FetchX509Bundles', (call) => { send = (m) => call.write(m); call.write({ bundles: { 'spiffe://example.org': a.root.der } }) })
    const v = createIdentityVerifier(validateIdentityConfig({ trust_domains: { 'example.org': { x509_authorities: [join(dir, 'ca.pem')] } }, watch: { enabled: false } }))
    await v.ready
    assert.equal(await verdict(v, other.chain), 'verified')
    assert.equal(await verdict(v, a.chain), 'PORTCULLIS_IDENTITY_UNTRUSTED')
    const w = start(v)
    await waitFor(() => w.status().streams.x509_bundles?.updated === true, 'bundles')
    assert.equal(await verdict(v, a.chain), 'verified')
    assert.equal(await verdict(v, other.chain), 'verified')
    assert.deepEqual(v.status().trust_domains['example.org']?.sources.map((s) => s.kind), ['x509_pem', 'workload_api_x509'])
    // an empty map is malformed (SPIFFE Workload API §4.5, §5.2.2): refused, counted, the last good state kept
    send?.({ bundles: {} })
    await waitFor(() => w.status().streams.x509_bundles?.last_error?.code === 'PORTCULLIS_IDENTITY_BUNDLE_INVALID', 'the empty map refused')
    assert.equal(await verdict(v, a.chain), 'verified')
    assert.equal(w.status().streams.x509_bundles?.updates, 1)
    // the agent's message without example.org: its CA goes, the file's stays
    send?.({ bundles: { 'spiffe://partner.example': b.root.der } })
    await waitFor(() => v.status().trust_domains['example.org']?.x509_authorities === 1, 'the agent\'s CA removed')
    assert.equal(await verdict(v, a.chain), 'PORTCULLIS_IDENTITY_UNTRUSTED')
    assert.equal(await verdict(v, other.chain), 'verified')
  })

  test('a malformed message is refused whole: the last good bundles stay, the failure is counted with PORTCULLIS_IDENTITY_BUNDLE_INVALID', async () => {
    const writes: unknown[] = [
      { bundles: { 'spiffe://example.org': a.root.der } },
      // trailing garbage after a certificate
      { bundles: { 'spiffe://example.org': Buffer.concat([b.root.der, Buffer.from([0x30, 0x82])]) } },
      // not a trust domain's SPIFFE ID
      { bundles: { 'spiffe://Example.ORG': b.root.der } },
      // a good domain beside a bad one: nothing of the message is taken
      { bundles: { 'spiffe://partner.example': b.root.der, 'spiffe://example.org': Buffer.from('not der') } },
    ]
    let send: ((m: unknown) => void) | undefined
    agent.handle('FetchX509Bundles', (call) => { send = (m) => call.write(m) })
    const errors: string[] = []
    const v = verifier()
    const w = new WorkloadApi(config(agent.endpoint, { ready_requires_update: true }), { recorder: { update: () => {}, error: (_s, code) => errors.push(code), connected: () => {} } })
    closers.push(() => v.close(), () => w.close())
    w.start({ trustStore: v.workloadApiSink })
    await waitFor(() => send !== undefined, 'the stream')
    for (const m of writes) send?.(m)
    await waitFor(() => errors.length === 3, 'three refused messages')
    assert.deepEqual(errors, ['PORTCULLIS_IDENTITY_BUNDLE_INVALID', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID'])
    assert.equal(await verdict(v, a.chain), 'verified')
    assert.equal(await verdict(v, b.chain), 'PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN')
    assert.equal(w.status().streams.x509_bundles?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
    assert.equal(w.status().streams.x509_bundles?.updates, 1)
    assert.equal(v.status().trust_domains['example.org']?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  })

  test('a malformed JWT bundle (not a JWK Set; a key without kid; a kid twice) keeps the last good keys', async () => {
    const jwtKey = await makeJwtKey('ES256', 'k1')
    const other = await makeJwtKey('ES256', 'k2')
    let send: ((m: unknown) => void) | undefined
    agent.handle('FetchJWTBundles', (call) => { send = (m) => call.write(m); call.write({ bundles: { 'spiffe://example.org': Buffer.from(JSON.stringify({ keys: [jwtKey.publicJwk] })) } }) })
    const errors: string[] = []
    const v = verifier()
    const w = new WorkloadApi(config(agent.endpoint), { recorder: { update: () => {}, error: (s, code) => { if (s === 'jwt_bundles') errors.push(code) }, connected: () => {} } })
    closers.push(() => v.close(), () => w.close())
    w.start({ trustStore: v.workloadApiSink })
    await waitFor(() => w.status().streams.jwt_bundles?.updated === true, 'JWT bundles')
    const bad = ['{"keys": {}}', JSON.stringify({ keys: [{ ...other.publicJwk, kid: undefined }] }), JSON.stringify({ keys: [other.publicJwk, { ...jwtKey.publicJwk, kid: 'k2' }] })]
    for (const text of bad) send?.({ bundles: { 'spiffe://example.org': Buffer.from(text) } })
    await waitFor(() => errors.length === 3, 'three refused messages')
    assert.deepEqual(errors, ['PORTCULLIS_IDENTITY_BUNDLE_INVALID', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID'])
    assert.equal(w.status().streams.jwt_bundles?.updates, 1)
    const token = await signJwt(jwtKey, { sub: 'spiffe://example.org/x', aud: 'portcullis', exp: Math.floor(Date.now() / 1000) + 300 })
    assert.equal((await v.verify({ headers: { authorization: `Bearer ${token}` } })).kind, 'verified')
    // a good message with unique kids is taken
    send?.({ bundles: { 'spiffe://example.org': Buffer.from(JSON.stringify({ keys: [jwtKey.publicJwk, other.publicJwk] })) } })
    await waitFor(() => w.status().streams.jwt_bundles?.updates === 2, 'the good message')
  })

  test('InvalidArgument and Unimplemented are not retried: the stream stops with its status', async () => {
    agent.handle('FetchX509Bundles', (call) => { call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'bad request' }) })
    agent.handle('FetchJWTBundles', (call) => { call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'no JWT profile' }) })
    const v = verifier()
    const w = start(v)
    await waitFor(() => w.status().streams.x509_bundles?.state === 'STOPPED' && w.status().streams.jwt_bundles?.state === 'STOPPED', 'both streams stopped')
    // well past several backoff periods (20 ms … 100 ms): still one call each
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(agent.calls.FetchX509Bundles, 1)
    assert.equal(agent.calls.FetchJWTBundles, 1)
    const st = w.status()
    assert.equal(st.streams.x509_bundles?.last_error?.grpc_code, 'INVALID_ARGUMENT')
    assert.equal(st.streams.jwt_bundles?.last_error?.grpc_code, 'UNIMPLEMENTED')
    assert.equal(st.last_error?.code, 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE')
    assert.equal(st.ready, false)
    assert.equal(st.state, 'NOT_READY')
  })

  test('Unavailable is retried with backoff until a good message; a stream the agent ends is opened again at once', async () => {
    agent.handle('FetchX509Bundles', (call, n) => {
      if (n < 3) { call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'agent busy' }); return }
      call.write({ bundles: { 'spiffe://example.org': a.root.der } })
      if (n === 3) call.end() // a clean end: reconnect at once
    })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    const v = verifier()
    const w = start(v)
    await waitFor(() => agent.calls.FetchX509Bundles >= 5 && w.status().streams.x509_bundles?.state === 'CONNECTED', 'retries, then a reconnect after the clean end')
    const st = w.status().streams.x509_bundles
    assert.equal(st?.failures, 0) // reset by the good message
    assert.equal(st?.updates, 2)
    assert.equal(st?.last_error?.grpc_code, 'UNAVAILABLE')
    assert.equal(await verdict(v, a.chain), 'verified')
  })

  test('a stream the agent ends without a message is a failure: counted, and called again with backoff, not in a loop', async () => {
    agent.handle('FetchX509Bundles', (call) => { call.end() })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    const v = verifier()
    const w = start(v)
    await waitFor(() => (w.status().streams.x509_bundles?.failures ?? 0) >= 3, 'three failed calls')
    // backoff 20, 40, 60, 80, 100, 100 … ms: about a dozen calls in this window; a loop makes thousands
    await new Promise((r) => setTimeout(r, 500))
    const calls = agent.calls.FetchX509Bundles
    assert.ok(calls <= 20, `${calls} calls`)
    const st = w.status().streams.x509_bundles
    assert.ok((st?.failures ?? 0) >= calls - 1 && (st?.failures ?? 0) <= calls, "every call that ended empty is a counted failure (one may be in flight)")
    assert.equal(st?.updated, false)
    assert.equal(st?.last_error?.code, 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE')
    assert.equal(st?.last_error?.grpc_code, 'OK')
    assert.equal(w.ready(), false)
  })

  test('readiness: an agent without the JWT profile (Unimplemented) does not block it; a served SVID past its notAfter with no replacement does (ERROR)', async () => {
    const start0 = Date.now()
    let clock = start0
    const svidLeaf = await makeLeaf({ issuer: a.root, uris: ['spiffe://example.org/portcullis'], notBefore: new Date(start0 - HOUR), notAfter: new Date(start0 + HOUR) })
    const key = createPrivateKey(await privateKeyPem(svidLeaf)).export({ format: 'der', type: 'pkcs8' })
    agent.handle('FetchX509SVID', (call) => { call.write({ svids: [{ spiffe_id: 'spiffe://example.org/portcullis', x509_svid: svidLeaf.der, x509_svid_key: key, bundle: a.root.der }] }) })
    agent.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': a.root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'no JWT profile' }) })
    const v = verifier()
    const w = new WorkloadApi(config(agent.endpoint, { serving_svid: true }), { now: () => new Date(clock) })
    closers.push(() => v.close(), () => w.close())
    w.start({ trustStore: v.workloadApiSink })
    await waitFor(() => w.svid !== undefined && w.status().streams.jwt_bundles?.state === 'STOPPED' && w.status().streams.x509_bundles?.updated === true, 'the streams')
    assert.equal(w.ready(), true)
    const st = w.status()
    assert.equal(st.state, 'OK')
    assert.equal(st.streams.jwt_bundles?.last_error?.grpc_code, 'UNIMPLEMENTED', 'the refusal stays visible')
    clock = start0 + 2 * HOUR // past the SVID's notAfter, no new SVID
    assert.equal(w.ready(), false)
    assert.equal(w.status().state, 'ERROR')
    assert.equal(w.status().ready, false)
  })

  test('a request without the security header is refused by the standard agent (our client always sends it)', async () => {
    // A raw client without the header: what the standard says an agent answers.
    const raw = new grpc.Client(agent.endpoint, grpc.credentials.createInsecure())
    closers.push(() => raw.close())
    const code = await new Promise<number>((res) => {
      const call = raw.makeServerStreamRequest('/SpiffeWorkloadAPI/FetchX509Bundles', () => Buffer.alloc(0), (b: Buffer) => b, {}, new grpc.Metadata())
      call.on('error', (e: grpc.ServiceError) => res(e.code))
      call.on('data', () => {})
    })
    assert.equal(code, grpc.status.INVALID_ARGUMENT)
    assert.deepEqual(agent.headers, [undefined])
  })

  test('the serving SVID: by SPIFFE ID, by hint, else the first; a key that does not match its leaf is refused', async () => {
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    const one = await makeLeaf({ issuer: a.root, uris: ['spiffe://example.org/one'], ...valid })
    const two = await makeLeaf({ issuer: a.root, uris: ['spiffe://example.org/two'], ...valid })
    const der = async (l: Issued): Promise<Buffer> => createPrivateKey(await privateKeyPem(l)).export({ format: 'der', type: 'pkcs8' })
    const msg = {
      svids: [
        { spiffe_id: 'spiffe://example.org/one', x509_svid: one.der, x509_svid_key: await der(one), bundle: a.root.der, hint: 'internal' },
        { spiffe_id: 'spiffe://example.org/two', x509_svid: two.der, x509_svid_key: await der(two), bundle: a.root.der, hint: 'external' },
      ],
      federated_bundles: { 'spiffe://partner.example': b.root.der },
    }
    assert.equal(parseServingSvid(msg, {}).spiffeId, 'spiffe://example.org/one')
    assert.equal(parseServingSvid(msg, { hint: 'external' }).spiffeId, 'spiffe://example.org/two')
    assert.equal(parseServingSvid(msg, { spiffeId: 'spiffe://example.org/two' }).spiffeId, 'spiffe://example.org/two')
    // the TLS pool holds exactly the SVID's bundle and the federated one; per trust domain, each its own
    const served = parseServingSvid(msg, {})
    const pool = served.caPem.split(/(?<=-----END CERTIFICATE-----\n?)/).filter((p) => p.trim() !== '').map((p) => new X509Certificate(p).fingerprint256)
    assert.deepEqual(pool, [new X509Certificate(a.root.der).fingerprint256, new X509Certificate(b.root.der).fingerprint256])
    assert.equal(served.trustDomain, 'example.org')
    assert.deepEqual([...served.bundles.keys()], ['example.org', 'partner.example'])
    assert.deepEqual(served.bundles.get('partner.example')?.x509Authorities.map((x) => x.fingerprint_sha256), [createHash('sha256').update(b.root.der).digest('hex')])
    const codeOf = (f: () => unknown): string => { try { f(); return 'ok' } catch (e) { return isPortcullisError(e) ? e.code : 'thrown' } }
    assert.equal(codeOf(() => parseServingSvid(msg, { hint: 'nope' })), 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
    const swapped = { svids: [{ ...msg.svids[0], x509_svid_key: msg.svids[1]?.x509_svid_key }] }
    assert.equal(codeOf(() => parseServingSvid(swapped, {})), 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
    assert.equal(codeOf(() => parseServingSvid({ svids: [] }, {})), 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  })

  test('the serving SVID is checked before it is served: one URI SAN equal to spiffe_id, valid now, a non-empty bundle it chains to', async () => {
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    const der = async (l: Issued): Promise<Buffer> => createPrivateKey(await privateKeyPem(l)).export({ format: 'der', type: 'pkcs8' })
    const ID = 'spiffe://example.org/one'
    const entry = async (l: Issued, over: object = {}): Promise<{ svids: object[] }> => ({ svids: [{ spiffe_id: ID, x509_svid: l.der, x509_svid_key: await der(l), bundle: a.root.der, ...over }] })
    const codeOf = (f: () => unknown): string => { try { f(); return 'ok' } catch (e) { return isPortcullisError(e) ? e.code : 'thrown' } }
    const good = await makeLeaf({ issuer: a.root, uris: [ID], ...valid })
    const goodMsg = await entry(good)
    assert.equal(codeOf(() => parseServingSvid(goodMsg, {})), 'ok')
    const cases: Record<string, { svids: object[] }> = {
      // the old substring test on OpenSSL's SAN text accepted both of these
      'a longer SPIFFE ID': await entry(await makeLeaf({ issuer: a.root, uris: [`${ID}-extra`], ...valid })),
      'two URI SANs': await entry(await makeLeaf({ issuer: a.root, uris: [ID, 'spiffe://example.org/two'], ...valid })),
      expired: await entry(await makeLeaf({ issuer: a.root, uris: [ID], notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) })),
      'not yet valid': await entry(await makeLeaf({ issuer: a.root, uris: [ID], notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) })),
      'empty bundle': await entry(good, { bundle: Buffer.alloc(0) }),
      'not issued by its bundle': await entry(await makeLeaf({ issuer: b.root, uris: [ID], ...valid })),
    }
    for (const [name, msg] of Object.entries(cases)) assert.equal(codeOf(() => parseServingSvid(msg, {})), 'PORTCULLIS_IDENTITY_BUNDLE_INVALID', name)

    // over the wire: a refused SVID leaves the current one served
    let send: ((m: unknown) => void) | undefined
    agent.handle('FetchX509SVID', (call) => { send = (m) => call.write(m); call.write(goodMsg) })
    const w = new WorkloadApi(config(agent.endpoint, { trust_bundles: false, serving_svid: true }))
    closers.push(() => w.close())
    w.start({})
    await waitFor(() => w.svid !== undefined, 'the SVID')
    const fp = w.svid?.certPem
    send?.(cases.expired)
    await waitFor(() => w.status().streams.x509_svid?.last_error !== undefined, 'the expired SVID refused')
    assert.equal(w.status().streams.x509_svid?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
    assert.equal(w.svid?.certPem, fp, 'the current SVID is kept')
  })

  /**
   * The configured SVID (by `pick`) served, then a message with other SVIDs but not that one
   * (`later`): a removal — no SVID, not ready, status ERROR, not counted as malformed — and the
   * first message again serves it again.
   */
  async function removal (pick: Record<string, string>, hints: [string, string], later: [string, string] | 'without-two'): Promise<void> {
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    const one = await makeLeaf({ issuer: a.root, uris: ['spiffe://example.org/one'], ...valid })
    const two = await makeLeaf({ issuer: a.root, uris: ['spiffe://example.org/two'], ...valid })
    const der = async (l: Issued): Promise<Buffer> => createPrivateKey(await privateKeyPem(l)).export({ format: 'der', type: 'pkcs8' })
    const svid = async (id: string, hint: string, l: Issued): Promise<object> => ({ spiffe_id: id, x509_svid: l.der, x509_svid_key: await der(l), bundle: a.root.der, hint })
    let send: ((m: unknown) => void) | undefined
    const first = { svids: [await svid('spiffe://example.org/one', hints[0], one), await svid('spiffe://example.org/two', hints[1], two)] }
    agent.handle('FetchX509SVID', (call) => { send = (m) => call.write(m); call.write(first) })
    const w = new WorkloadApi(config(agent.endpoint, { trust_bundles: false, serving_svid: true, ...pick }))
    closers.push(() => w.close())
    let removed = 0
    w.on('svid-removed', () => { removed++ })
    w.start({})
    await waitFor(() => w.svid !== undefined, 'the SVID')
    assert.equal(w.svid?.spiffeId, 'spiffe://example.org/two')
    assert.equal(w.ready(), true)
    send?.({ svids: later === 'without-two' ? [await svid('spiffe://example.org/one', hints[0], one)] : [await svid('spiffe://example.org/one', later[0], one), await svid('spiffe://example.org/two', later[1], two)] })
    await waitFor(() => removed === 1, 'the SVID removed')
    assert.equal(w.svid, undefined)
    assert.equal(w.ready(), false)
    assert.equal(w.status().svid, undefined)
    assert.equal(w.status().state, 'ERROR')
    assert.equal(w.status().streams.x509_svid?.last_error, undefined, 'not counted as a malformed message')
    send?.(first)
    await waitFor(() => w.svid !== undefined, 'served again')
    assert.equal(w.status().svid?.spiffe_id, 'spiffe://example.org/two')
    assert.equal(w.ready(), true)
    assert.equal(w.status().state, 'OK')
  }

  test('the configured spiffe_id missing from a later message is a removal (SVID dropped, not ready), not a malformed message', async () => {
    await removal({ spiffe_id: 'spiffe://example.org/two' }, ['', ''], 'without-two')
  })

  test('with ready_requires_update: false, no SVID held is still not ready: before the first, and after PermissionDenied drops it', async () => {
    const ID = 'spiffe://example.org/one'
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    const leaf = await makeLeaf({ issuer: a.root, uris: [ID], ...valid })
    const msg = { svids: [{ spiffe_id: ID, x509_svid: leaf.der, x509_svid_key: createPrivateKey(await privateKeyPem(leaf)).export({ format: 'der', type: 'pkcs8' }), bundle: a.root.der, hint: 'h' }] }
    let deny: (() => void) | undefined
    let serve = false
    agent.handle('FetchX509SVID', (call) => {
      deny = () => { call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' }) }
      if (serve) call.write(msg)
    })
    const warnings: string[] = []
    const w = new WorkloadApi(config(agent.endpoint, { trust_bundles: false, serving_svid: true, svid_hint: 'h', ready_requires_update: false }), { logger: { warn: (_o: unknown, m: string) => { warnings.push(m) } } as never })
    closers.push(() => w.close())
    w.start({})
    await waitFor(() => deny !== undefined, 'the stream open')
    assert.equal(w.ready(), false, 'no SVID yet')
    serve = true
    deny?.() // the client reconnects; this time the agent sends the SVID
    await waitFor(() => w.svid !== undefined, 'the SVID')
    assert.equal(w.ready(), true)
    serve = false
    deny?.()
    await waitFor(() => w.svid === undefined, 'the SVID dropped by PermissionDenied')
    assert.equal(w.ready(), false)
    assert.ok(warnings.some((m) => m.includes('serving SVID removed')), warnings.join('; '))
  })

  test('a first message without the configured svid_hint serves nothing and says why', async () => {
    const ID = 'spiffe://example.org/one'
    const now = Date.now()
    const leaf = await makeLeaf({ issuer: a.root, uris: [ID], notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) })
    agent.handle('FetchX509SVID', async (call) => { call.write({ svids: [{ spiffe_id: ID, x509_svid: leaf.der, x509_svid_key: createPrivateKey(await privateKeyPem(leaf)).export({ format: 'der', type: 'pkcs8' }), bundle: a.root.der, hint: 'other' }] }) })
    const warnings: Array<Record<string, unknown>> = []
    const w = new WorkloadApi(config(agent.endpoint, { trust_bundles: false, serving_svid: true, svid_hint: 'h' }), { logger: { warn: (o: Record<string, unknown>) => { warnings.push(o) } } as never })
    closers.push(() => w.close())
    w.start({})
    await waitFor(() => w.status().streams.x509_svid?.updated === true, 'the message')
    assert.equal(w.svid, undefined)
    assert.equal(w.ready(), false)
    assert.equal(w.status().state, 'ERROR')
    assert.ok(warnings.some((o) => o.code === 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE' && String(o.reason).includes('"h"')), JSON.stringify(warnings))
  })

  test('the configured svid_hint missing from a later message is a removal too: the SVID served is always one the agent issues now', async () => {
    // the agent now issues the same SVID under another hint: the hint no longer names one
    await removal({ svid_hint: 'external' }, ['internal', 'external'], ['internal', 'renamed'])
  })
})

describe('Workload API endpoint address and backoff', () => {
  test('a tcp://ip:port endpoint is reached over TCP', async (t) => {
    const tcp = await startFakeAgent({ tcp: true })
    t.after(() => tcp.close())
    const td = await trustDomain('example.org')
    tcp.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': td.root.der } }) })
    tcp.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    const v = verifier()
    const w = new WorkloadApi(config(tcp.endpoint))
    t.after(async () => { w.close(); await v.close() })
    w.start({ trustStore: v.workloadApiSink })
    await waitFor(() => w.ready(), 'bundles over TCP')
    assert.match(w.status().endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(await verdict(v, td.chain), 'verified')
  })

  test('unix:///path, unix:/path and tcp://ip:port are accepted; anything else is PORTCULLIS_CONFIG_INVALID', () => {
    assert.equal(parseWorkloadEndpoint('unix:///run/spire/agent.sock').target, 'unix:///run/spire/agent.sock')
    assert.equal(parseWorkloadEndpoint('unix:/run/spire/agent.sock').target, 'unix:///run/spire/agent.sock')
    assert.equal(parseWorkloadEndpoint('tcp://127.0.0.1:8081').target, '127.0.0.1:8081')
    assert.equal(parseWorkloadEndpoint('tcp://[::1]:8081').target, '[::1]:8081')
    for (const bad of ['/run/spire/agent.sock', 'unix://host/run/a.sock', 'unix:relative', 'tcp://localhost:8081', 'tcp://127.0.0.1', 'http://127.0.0.1:1', 'unix:///a.sock?x=1', '']) {
      assert.throws(() => parseWorkloadEndpoint(bad), (e: unknown) => isPortcullisError(e) && e.code === 'PORTCULLIS_CONFIG_INVALID' && e.details.key === 'workload_api.socket', bad)
    }
  })

  test('workload_api.envoy_grpc_client_ids: SPIFFE IDs or trust domains; anything else is PORTCULLIS_CONFIG_INVALID', () => {
    const load = (ids: string[]): void => { new WorkloadApi(config('unix:///run/a.sock', { serving_svid: true, envoy_grpc_client_ids: ids })).close() }
    assert.doesNotThrow(() => load(['spiffe://example.org/envoy', 'spiffe://partner.example']))
    for (const bad of ['example.org', 'spiffe://Example.org/envoy', 'https://example.org/envoy']) {
      assert.throws(() => load([bad]), (e: unknown) => isPortcullisError(e) && e.code === 'PORTCULLIS_CONFIG_INVALID' && e.details.key === 'workload_api.envoy_grpc_client_ids', bad)
    }
  })

  test('the retry delay grows linearly and is capped (go-spiffe: 1 s, 2 s, … 30 s)', () => {
    const b = { initialMs: 1000, maxMs: 30_000 }
    assert.deepEqual([1, 2, 3, 10, 30, 31, 100].map((n) => reconnectDelayMs(n, b)), [1000, 2000, 3000, 10_000, 30_000, 30_000, 30_000])
  })
})
