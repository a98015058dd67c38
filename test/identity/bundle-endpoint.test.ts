/**
 * SPIFFE bundle endpoint (https_web) polling. A real HTTPS server listens on 127.0.0.1:0 with a
 * certificate from a test CA (@peculiar/x509); timers are injected so schedules are asserted,
 * not waited for.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { nextDelaySeconds, type Timers } from '../../src/identity/bundle-endpoint.js'
import type { BundleEndpointConfig } from '../../src/config/schema.js'
import { TrustStore } from '../../src/identity/trust-store.js'
import { createIdentityVerifier, validateIdentityConfig } from '../../src/identity/index.js'
import { DAY, epoch, HOUR, makeCa, makeJwtKey, makeServerCert, signJwt, spiffeBundle, T0, tempDir, write, type Issued } from './support/pki.js'

let tlsCa: Issued
let server: Server
let url: string
let respond: (res: import('node:http').ServerResponse) => void = () => {}
let requests = 0
let bundleCa: Issued
let bundleCa2: Issued

before(async () => {
  tlsCa = await makeCa({ name: 'endpoint TLS CA', notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 10 * DAY) })
  bundleCa = await makeCa({ name: 'td root' })
  bundleCa2 = await makeCa({ name: 'td root 2' })
  const { cert, key } = await makeServerCert(tlsCa)
  server = createServer({ cert, key }, (_req, res) => {
    requests++
    respond(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const cfg = (over: Partial<BundleEndpointConfig> = {}): BundleEndpointConfig => ({ url, timeout_ms: 2000, default_refresh_seconds: 300, min_refresh_seconds: 10, max_refresh_seconds: 3600, initial_backoff_seconds: 1, max_backoff_seconds: 60, ...over })

function fakeTimers (): Timers & { pending: Array<{ fn: () => void, ms: number, id: number }> } {
  let id = 0
  const pending: Array<{ fn: () => void, ms: number, id: number }> = []
  return {
    pending,
    setTimeout: (fn, ms) => { pending.push({ fn, ms, id: ++id }); return id },
    clearTimeout: (h) => { const i = pending.findIndex((p) => p.id === h); if (i >= 0) pending.splice(i, 1) },
  }
}

const json = (body: string, status = 200) => (res: import('node:http').ServerResponse): void => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(body)
}

test('nextDelaySeconds: clamped refresh hint after success, capped exponential backoff after failure', () => {
  const c = cfg()
  assert.equal(nextDelaySeconds(c, { failures: 0 }), 300)
  assert.equal(nextDelaySeconds(c, { failures: 0, refreshHint: 60 }), 60)
  assert.equal(nextDelaySeconds(c, { failures: 0, refreshHint: 1 }), 10)
  assert.equal(nextDelaySeconds(c, { failures: 0, refreshHint: 10 ** 9 }), 3600)
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((f) => nextDelaySeconds(c, { failures: f, refreshHint: 600 })), [1, 2, 4, 8, 16, 32, 60, 60])
  assert.equal(nextDelaySeconds(c, { failures: 10, refreshHint: 20 }), 20)
})

test('polls the endpoint at its refresh hint; a failed refresh keeps the last good bundle; backoff then recovery', async (t) => {
  const dir = tempDir(t)
  const timers = fakeTimers()
  let now = T0
  respond = json(await spiffeBundle({ x509: [bundleCa], sequence: 1, refreshHint: 60 }))
  const store = new TrustStore({ 'example.org': { x509_authorities: [], spiffe_bundles: [], jwt_authorities: [], bundle_endpoint: cfg({ ca: write(dir, 'tls-ca.pem', tlsCa.pem) }) } }, { now: () => now, timers })
  t.after(async () => await store.close())
  await store.ready
  const first = store.bundle('example.org')
  assert.equal(first?.x509Authorities.length, 1)
  assert.equal(first?.sequence, 1)
  let st = store.status()['example.org']
  assert.equal(st?.state, 'OK')
  assert.equal(st?.sources[0]?.next_refresh_at, new Date(T0.getTime() + 60_000).toISOString())
  assert.deepEqual(timers.pending.map((p) => p.ms), [60_000])

  // The endpoint fails: last good stays, error reported, retry after 1 s, then 2 s.
  respond = json('oops', 500)
  now = new Date(T0.getTime() + 60_000)
  timers.pending.shift()?.fn()
  await store.refresh('example.org')
  assert.equal(store.bundle('example.org'), first)
  st = store.status()['example.org']
  assert.equal(st?.state, 'ERROR')
  assert.equal(st?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  assert.deepEqual(timers.pending.map((p) => p.ms), [1000])

  // Invalid JSON from the endpoint is a failure too; the backoff doubles.
  respond = json('{"keys": "nope"}')
  await store.refresh()
  assert.equal(store.bundle('example.org'), first)
  assert.deepEqual(timers.pending.map((p) => p.ms), [2000])

  // Recovery with a rotated bundle: trust-change fires, hint schedule resumes.
  let changed = 0
  store.on('trust-change', () => { changed++ })
  respond = json(await spiffeBundle({ x509: [bundleCa, bundleCa2], sequence: 2, refreshHint: 120 }))
  await store.refresh()
  assert.equal(changed, 1)
  assert.equal(store.bundle('example.org')?.x509Authorities.length, 2)
  assert.equal(store.status()['example.org']?.sequence, 2)
  assert.equal(store.status()['example.org']?.state, 'OK')
  assert.deepEqual(timers.pending.map((p) => p.ms), [120_000])
})

test('an endpoint whose TLS certificate is not trusted is refused (https_web: Web PKI or the configured CA)', async (t) => {
  const timers = fakeTimers()
  respond = json(await spiffeBundle({ x509: [bundleCa] }))
  const before = requests
  const store = new TrustStore({ 'example.org': { x509_authorities: [], spiffe_bundles: [], jwt_authorities: [], bundle_endpoint: cfg() } }, { now: () => T0, timers })
  t.after(async () => await store.close())
  await store.ready
  assert.equal(store.bundle('example.org'), undefined)
  assert.equal(store.status()['example.org']?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  assert.equal(requests, before)
})

test('a hanging endpoint times out', async (t) => {
  const dir = tempDir(t)
  const timers = fakeTimers()
  respond = () => { /* never answers */ }
  const store = new TrustStore({ 'example.org': { x509_authorities: [], spiffe_bundles: [], jwt_authorities: [], bundle_endpoint: cfg({ timeout_ms: 150, ca: write(dir, 'tls-ca.pem', tlsCa.pem) }) } }, { now: () => T0, timers })
  t.after(async () => await store.close())
  await store.ready
  assert.equal(store.bundle('example.org'), undefined)
  assert.equal(store.status()['example.org']?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  assert.deepEqual(timers.pending.map((p) => p.ms), [1000])
})

test('verifier: JWT-SVID keys from the bundle endpoint; a rotation removes the old key and empties the cache', async (t) => {
  const dir = tempDir(t)
  const timers = fakeTimers()
  const oldKey = await makeJwtKey('ES256', 'old')
  const newKey = await makeJwtKey('ES256', 'new')
  respond = json(await spiffeBundle({ jwt: [oldKey], sequence: 1, refreshHint: 60 }))
  const config = validateIdentityConfig({
    trust_domains: { 'example.org': { bundle_endpoint: { url, ca: write(dir, 'tls-ca.pem', tlsCa.pem) } } },
    jwt_svid: { audiences: ['portcullis'] },
    watch: { enabled: false },
  })
  const v = createIdentityVerifier(config, { now: () => T0, timers })
  t.after(async () => await v.close())
  const claims = { sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'portcullis', exp: epoch(HOUR) }
  const oldToken = { headers: { authorization: `Bearer ${await signJwt(oldKey, claims)}` } }
  assert.equal((await v.verify(oldToken)).kind, 'verified')
  const again = await v.verify(oldToken)
  assert.equal(again.kind === 'verified' && again.cached, true)
  assert.equal(v.status().trust_domains['example.org']?.sequence, 1)

  respond = json(await spiffeBundle({ jwt: [newKey], sequence: 2, refreshHint: 60 }))
  let changes = 0
  v.on('trust-change', () => { changes++ })
  await v.refresh()
  assert.equal(changes, 1)
  assert.equal(v.status().cache.size, 0)
  const r = await v.verify(oldToken)
  assert.equal(r.kind === 'rejected' && r.error.code, 'PORTCULLIS_IDENTITY_KEY_UNKNOWN')
  assert.equal((await v.verify({ headers: { authorization: `Bearer ${await signJwt(newKey, claims)}` } })).kind, 'verified')
})
