/**
 * The serving X.509-SVID on both TLS listeners — the Data API (node:https, setSecureContext) and
 * the Envoy gRPC listener (grpc-js certificate provider) — rotated in place: an open connection
 * keeps working on the certificate it was opened with, new connections get the new one; and
 * readiness waits for the first SVID. The SVIDs come from a scripted Workload API server (real
 * grpc-js over a Unix socket, our proto), because a test needs to choose the moment of each
 * rotation, which SPIRE does not let it; spire.test.ts serves SPIRE-issued SVIDs.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createPrivateKey } from 'node:crypto'
import { Agent, request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import * as grpc from '@grpc/grpc-js'
import { makeCa, makeLeaf, privateKeyPem, type Issued } from '../support/pki.js'
import { startFakeAgent, type FakeAgent } from '../../helpers/workload-api-server.js'
import { startWapiRuntime } from '../../helpers/workload-api-runtime.js'
import { needsOpa } from '../../helpers/opa.js'
import { waitFor } from '../../helpers/wait.js'
import { envoyExtAuthz, type EnvoyListeners } from '../../../src/envoy/listeners.js'
import type { ListenerFactory } from '../../../src/server/runtime.js'

const HOUR = 3600_000
const SERVER_ID = 'spiffe://example.org/portcullis'

async function svidMessage (root: Issued, leaf: Issued): Promise<unknown> {
  const key = createPrivateKey(await privateKeyPem(leaf)).export({ format: 'der', type: 'pkcs8' })
  return { svids: [{ spiffe_id: SERVER_ID, x509_svid: leaf.der, x509_svid_key: key, bundle: root.der }] }
}

describe('serving the X.509-SVID from the Workload API', needsOpa(), () => {
  let agent: FakeAgent
  let root: Issued
  let first: Issued
  let second: Issued
  let client: { cert: string, key: string }
  before(async () => {
    agent = await startFakeAgent()
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', notBefore: valid.notBefore, notAfter: new Date(now + 24 * HOUR) })
    first = await makeLeaf({ issuer: root, uris: [SERVER_ID], ...valid })
    second = await makeLeaf({ issuer: root, uris: [SERVER_ID], ...valid })
    const c = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/envoy'], ...valid })
    client = { cert: c.pem, key: await privateKeyPem(c) }
  })
  after(async () => { await agent.close() })

  test('not ready until the first SVID; then both listeners serve it, and a rotation keeps open connections', async (t) => {
    let sendSvid: ((m: unknown) => void) | undefined
    agent.handle('FetchX509SVID', (call) => { sendSvid = (m) => call.write(m) })
    agent.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    let envoy: EnvoyListeners | undefined
    const factory: ListenerFactory = (parts) => { envoy = envoyExtAuthz(parts); return envoy }
    const { runtime, url, close } = await startWapiRuntime({
      workload_api: { enabled: true, socket: agent.endpoint, serving_svid: true, backoff: { initial_ms: 50, max_ms: 200 } },
      identity: { x509_svid: { sources: ['mtls'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
      envoy_ext_authz: { grpc: { enabled: true, addr: '127.0.0.1:0' } },
    }, { listeners: [factory] })
    t.after(close)
    assert.match(url, /^https:/)
    await waitFor(() => sendSvid !== undefined && runtime.workloadApi?.status().streams.x509_bundles?.updated === true, 'the streams')
    const early = await runtime.app.inject({ method: 'GET', url: '/health/ready' })
    assert.equal(early.statusCode, 503)
    assert.equal((early.json() as { plugins: { workload_api: { ready: boolean } } }).plugins.workload_api.ready, false)

    sendSvid?.(await svidMessage(root, first))
    await waitFor(() => runtime.workloadApi?.svid !== undefined, 'the SVID')
    const ready = await runtime.app.inject({ method: 'GET', url: '/health/ready' })
    assert.equal(ready.statusCode, 200, ready.body)

    // Data API: a keep-alive connection opened on the first SVID
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
    t.after(() => keepAlive.destroy())
    const get = async (agentOpt: Agent | false): Promise<{ status: number, fingerprint: string, reused: boolean }> => await new Promise((resolve, reject) => {
      const req = httpsRequest(`${url}/v1/data/whoami/caller`, {
        method: 'POST', ca: root.pem, ...client, agent: agentOpt, headers: { 'content-type': 'application/json' },
        checkServerIdentity: (_h, cert) => cert.subjectaltname === `URI:${SERVER_ID}` ? undefined : new Error(`unexpected ${cert.subjectaltname}`),
      }, (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256
        res.resume()
        res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, reused: req.reusedSocket }))
      })
      req.on('error', reject)
      req.end('{"input": {}}')
    })
    const a1 = await get(keepAlive)
    assert.equal(a1.status, 200)

    // Envoy gRPC listener: TLS from the same SVID, client certificate required (Envoy's SVID)
    const seen: string[] = []
    const creds = grpc.credentials.createSsl(Buffer.from(root.pem), Buffer.from(client.key), Buffer.from(client.cert), {
      checkServerIdentity: (_h, cert) => { seen.push(cert.fingerprint256); return cert.subjectaltname === `URI:${SERVER_ID}` ? undefined : new Error('wrong server') },
    })
    const channel = new grpc.Client(envoy?.grpcAddress as string, creds)
    t.after(() => channel.close())
    const health = async (c: grpc.Client): Promise<void> => await new Promise((resolve, reject) => {
      c.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, (err) => { if (err !== null) reject(err); else resolve() })
    })
    await health(channel)
    assert.equal(seen.length, 1)

    // rotate
    sendSvid?.(await svidMessage(root, second))
    await waitFor(() => runtime.workloadApi?.status().streams.x509_svid?.updates === 2, 'the second SVID')
    await new Promise((r) => setTimeout(r, 50))
    const a2 = await get(keepAlive)
    assert.equal(a2.reused, true, 'the open Data API connection is still open')
    assert.equal(a2.fingerprint, a1.fingerprint, 'and still on the certificate it was opened with')
    const fresh = await get(false)
    assert.notEqual(fresh.fingerprint, a1.fingerprint, 'a new connection gets the new SVID')
    await health(channel)
    assert.equal(seen.length, 1, 'the open gRPC connection was not dropped (no new handshake)')
    // its own subchannel pool: grpc-js would otherwise share the first channel's connection
    const channel2 = new grpc.Client(envoy?.grpcAddress as string, creds, { 'grpc.use_local_subchannel_pool': 1 })
    t.after(() => channel2.close())
    await health(channel2)
    assert.equal(seen.length, 2)
    assert.notEqual(seen[1], seen[0], 'a new gRPC connection gets the new SVID')

    // without a client certificate the gRPC listener refuses the handshake (client auth required)
    const anon = new grpc.Client(envoy?.grpcAddress as string, grpc.credentials.createSsl(Buffer.from(root.pem), null, null, { checkServerIdentity: () => undefined }), { 'grpc.use_local_subchannel_pool': 1 })
    t.after(() => anon.close())
    await assert.rejects(health(anon), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE)
  })

  test('Envoy gRPC client auth: each caller is verified against its own trust domain\'s bundle, then the allow-list (gRPC status codes)', async (t) => {
    const now = Date.now()
    const valid = { notBefore: new Date(now - HOUR), notAfter: new Date(now + HOUR) }
    const partner = await makeCa({ name: 'partner.example root', uri: 'spiffe://partner.example', ...valid })
    const svidKey = createPrivateKey(await privateKeyPem(first)).export({ format: 'der', type: 'pkcs8' })
    let sendSvid: ((m: unknown) => void) | undefined
    agent.handle('FetchX509SVID', (call) => { sendSvid = (m) => call.write(m) })
    agent.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    let envoy: EnvoyListeners | undefined
    const factory: ListenerFactory = (parts) => { envoy = envoyExtAuthz(parts); return envoy }
    const { runtime, close } = await startWapiRuntime({
      workload_api: { enabled: true, socket: agent.endpoint, serving_svid: true, envoy_grpc_client_ids: ['spiffe://example.org/envoy'], backoff: { initial_ms: 50, max_ms: 200 } },
      identity: { x509_svid: { sources: ['mtls'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
      envoy_ext_authz: { grpc: { enabled: true, addr: '127.0.0.1:0' } },
    }, { listeners: [factory] })
    t.after(close)
    const caPem = Buffer.from(root.pem + partner.pem)
    const callAs = async (leaf: Issued | undefined): Promise<{ code: number, portcullis?: string }> => {
      const creds = leaf === undefined
        ? grpc.credentials.createSsl(caPem, null, null, { checkServerIdentity: () => undefined })
        : grpc.credentials.createSsl(caPem, Buffer.from(await privateKeyPem(leaf)), Buffer.from(leaf.pem), { checkServerIdentity: () => undefined })
      const c = new grpc.Client(envoy?.grpcAddress as string, creds, { 'grpc.use_local_subchannel_pool': 1 })
      try {
        return await new Promise((resolve) => {
          c.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, { deadline: Date.now() + 5000 }, (err) => {
            const code = err?.metadata?.get('portcullis-error-code')[0]
            resolve({ code: err === null ? grpc.status.OK : err.code, ...(typeof code === 'string' ? { portcullis: code } : {}) })
          })
        })
      } finally { c.close() }
    }
    const envoyLeaf = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/envoy'], ...valid })
    // before the first SVID the listener serves no certificate: the handshake fails, nothing is answered
    assert.equal((await callAs(envoyLeaf)).code, grpc.status.UNAVAILABLE)

    sendSvid?.({ svids: [{ spiffe_id: SERVER_ID, x509_svid: first.der, x509_svid_key: svidKey, bundle: root.der }], federated_bundles: { 'spiffe://partner.example': partner.der } })
    await waitFor(() => runtime.workloadApi?.svid !== undefined, 'the SVID')
    assert.deepEqual(await callAs(envoyLeaf), { code: grpc.status.OK }, 'the allowed Envoy SVID')

    // partner.example's CA issuing a leaf that claims our trust domain: the TLS pool (a union) lets
    // it through the handshake; the per-trust-domain check refuses it
    const forged = await makeLeaf({ issuer: partner, uris: ['spiffe://example.org/envoy'], ...valid })
    assert.deepEqual(await callAs(forged), { code: grpc.status.UNAUTHENTICATED, portcullis: 'PORTCULLIS_IDENTITY_UNTRUSTED' })
    // a genuine SVID of our trust domain, not on the allow-list
    const other = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/other'], ...valid })
    assert.deepEqual(await callAs(other), { code: grpc.status.PERMISSION_DENIED, portcullis: 'PORTCULLIS_IDENTITY_DENIED' })
    // a genuine federated SVID, not on the allow-list
    const partnerLeaf = await makeLeaf({ issuer: partner, uris: ['spiffe://partner.example/envoy'], ...valid })
    assert.deepEqual(await callAs(partnerLeaf), { code: grpc.status.PERMISSION_DENIED, portcullis: 'PORTCULLIS_IDENTITY_DENIED' })
    // no client certificate: the handshake itself is refused
    assert.equal((await callAs(undefined)).code, grpc.status.UNAVAILABLE)
    assert.deepEqual(await callAs(envoyLeaf), { code: grpc.status.OK })
  })

  test('PermissionDenied after a delivery drops the redacted state: the agent\'s bundles (trust-change), the served SVID (new handshakes refused), readiness', async (t) => {
    const svidKey = createPrivateKey(await privateKeyPem(first)).export({ format: 'der', type: 'pkcs8' })
    const ends: Array<() => void> = []
    let deny = false
    const answer = (call: grpc.ServerWritableStream<unknown, unknown>, msg: unknown): void => {
      if (deny) { call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' }); return }
      call.write(msg)
      ends.push(() => call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' }))
    }
    agent.handle('FetchX509SVID', (call) => { answer(call, { svids: [{ spiffe_id: SERVER_ID, x509_svid: first.der, x509_svid_key: svidKey, bundle: root.der }] }) })
    agent.handle('FetchX509Bundles', (call) => { answer(call, { bundles: { 'spiffe://example.org': root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { answer(call, { bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    let envoy: EnvoyListeners | undefined
    const factory: ListenerFactory = (parts) => { envoy = envoyExtAuthz(parts); return envoy }
    const { runtime, url, close } = await startWapiRuntime({
      workload_api: { enabled: true, socket: agent.endpoint, serving_svid: true, backoff: { initial_ms: 50, max_ms: 200 } },
      identity: { x509_svid: { sources: ['mtls'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
      envoy_ext_authz: { grpc: { enabled: true, addr: '127.0.0.1:0' } },
    }, { listeners: [factory] })
    t.after(close)
    await waitFor(() => runtime.workloadApi?.ready() === true, 'every stream delivered')
    const changes: string[] = []
    runtime.identity?.on('trust-change', (e) => changes.push(e.trustDomain))
    assert.equal(runtime.identity?.status().trust_domains['example.org']?.x509_authorities, 1)
    const dataApi = async (): Promise<string> => await new Promise((resolve) => {
      const req = httpsRequest(`${url}/health`, { ca: root.pem, agent: false, checkServerIdentity: () => undefined }, (res) => { res.resume(); resolve(`HTTP ${res.statusCode ?? 0}`) })
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
      req.end()
    })
    const grpcHealth = async (): Promise<number> => {
      const c = new grpc.Client(envoy?.grpcAddress as string, grpc.credentials.createSsl(Buffer.from(root.pem), Buffer.from(client.key), Buffer.from(client.cert), { checkServerIdentity: () => undefined }), { 'grpc.use_local_subchannel_pool': 1 })
      try {
        return await new Promise((resolve) => c.makeUnaryRequest('/grpc.health.v1.Health/Check', () => Buffer.alloc(0), (b: Buffer) => b, {}, { deadline: Date.now() + 5000 }, (err) => resolve(err === null ? grpc.status.OK : err.code)))
      } finally { c.close() }
    }
    assert.equal(await dataApi(), 'HTTP 200')
    assert.equal(await grpcHealth(), grpc.status.OK)

    deny = true
    for (const end of ends.splice(0)) end()
    await waitFor(() => runtime.workloadApi?.svid === undefined && runtime.identity?.status().trust_domains['example.org'] === undefined, 'the redacted state dropped')
    assert.ok(changes.includes('example.org'), 'trust-change fired for the dropped bundle')
    assert.equal(runtime.workloadApi?.ready(), false)
    assert.equal((await runtime.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 503)
    assert.equal(runtime.workloadApi?.status().svid, undefined)
    assert.deepEqual(runtime.workloadApi?.status().trust_domains, { x509: [], jwt: [] })
    assert.equal(await dataApi(), 'ECONNRESET', 'new Data API handshakes are refused')
    assert.equal(await grpcHealth(), grpc.status.UNAVAILABLE, 'new gRPC handshakes are refused')

    // the entry is back: served again
    deny = false
    await waitFor(() => runtime.workloadApi?.ready() === true, 'delivered again')
    assert.equal(await dataApi(), 'HTTP 200')
    assert.equal(await grpcHealth(), grpc.status.OK)
  })

  test('a runtime that fails to build (a listener factory) or to start (a listener cannot bind) closes its Workload API client', async () => {
    let open = 0
    let cancelled = 0
    const track = (call: grpc.ServerWritableStream<unknown, unknown>): void => { open++; call.on('cancelled', () => { cancelled++ }) }
    agent.handle('FetchX509SVID', track)
    agent.handle('FetchX509Bundles', track)
    agent.handle('FetchJWTBundles', track)
    const config = {
      workload_api: { enabled: true, socket: agent.endpoint, serving_svid: true, backoff: { initial_ms: 50, max_ms: 200 } },
      identity: { x509_svid: { sources: ['mtls'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
    } as const
    const failingFactory: ListenerFactory = () => { throw new Error('factory failed') }
    await assert.rejects(startWapiRuntime(config, { listeners: [failingFactory] }), /factory failed/)
    await waitFor(() => open === 3 && cancelled === 3, 'every stream of the failed build cancelled')
    const callsAfterBuild = { ...agent.calls }

    open = 0
    cancelled = 0
    const failingStart: ListenerFactory = () => ({ name: 'broken', start: async () => { throw new Error('cannot bind') }, stop: async () => {} })
    await assert.rejects(startWapiRuntime(config, { listeners: [failingStart] }), /cannot bind/)
    await waitFor(() => open === 3 && cancelled === 3, 'every stream of the failed start cancelled')
    // and no stream is opened again afterwards (the client is closed, not retrying)
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(agent.calls.FetchX509SVID, callsAfterBuild.FetchX509SVID + 1)
  })

  test('Envoy gRPC client auth none: TLS from the SVID, no client certificate asked', async (t) => {
    const svidKey = createPrivateKey(await privateKeyPem(first)).export({ format: 'der', type: 'pkcs8' })
    agent.handle('FetchX509SVID', (call) => { call.write({ svids: [{ spiffe_id: SERVER_ID, x509_svid: first.der, x509_svid_key: svidKey, bundle: root.der }] }) })
    agent.handle('FetchX509Bundles', (call) => { call.write({ bundles: { 'spiffe://example.org': root.der } }) })
    agent.handle('FetchJWTBundles', (call) => { call.write({ bundles: { 'spiffe://example.org': Buffer.from('{"keys":[]}') } }) })
    let envoy: EnvoyListeners | undefined
    const factory: ListenerFactory = (parts) => { envoy = envoyExtAuthz(parts); return envoy }
    const { runtime, close } = await startWapiRuntime({
      workload_api: { enabled: true, socket: agent.endpoint, serving_svid: true, envoy_grpc_client_auth: 'none', backoff: { initial_ms: 50, max_ms: 200 } },
      identity: { x509_svid: { sources: ['mtls'] }, watch: { enabled: false } },
      server: { tls: { client_auth: 'request' } },
      envoy_ext_authz: { grpc: { enabled: true, addr: '127.0.0.1:0' } },
    }, { listeners: [factory] })
    t.after(close)
    await waitFor(() => runtime.workloadApi?.svid !== undefined, 'the SVID')
    const seen: string[] = []
    const anon = new grpc.Client(envoy?.grpcAddress as string, grpc.credentials.createSsl(Buffer.from(root.pem), null, null, {
      checkServerIdentity: (_h, cert) => { seen.push(cert.subjectaltname ?? ''); return undefined },
    }), { 'grpc.use_local_subchannel_pool': 1 })
    t.after(() => anon.close())
    const code = await new Promise<number>((resolve) => {
      anon.makeUnaryRequest("/grpc.health.v1.Health/Check", () => Buffer.alloc(0), (b: Buffer) => b, {}, { deadline: Date.now() + 5000 }, (err) => { resolve(err === null ? grpc.status.OK : err.code) })
    })
    assert.equal(code, grpc.status.OK)
    assert.deepEqual(seen, [`URI:${SERVER_ID}`], 'served over TLS with the SVID')
  })
})
