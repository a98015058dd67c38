/**
 * The TLS listener: server certificate from files (reloaded on change), client X.509-SVIDs
 * verified by the identity plugin so the caller's SPIFFE ID reaches the policy. Certificates
 * are generated in setup with @peculiar/x509 (test/identity/support/pki.ts), valid around now.
 */
import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request as httpsRequest } from 'node:https'
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DAY, HOUR, KU, makeCa, makeLeaf, makeServerCert, pemOf, privateKeyPem, type Issued } from '../identity/support/pki.js'
import { startRuntime } from '../helpers/runtime.js'
import { loadConfig } from '../../src/config/load.js'
import { createIdentityVerifier, validateIdentityConfig } from '../../src/identity/index.js'
import { build } from '../../src/server/app.js'
import { clientCertificateGate, httpsOptions } from '../../src/server/tls.js'
import { isPortcullisError } from '../../src/errors.js'

const order = { service: 'orders', method: 'GET', path: '/orders/1' }

interface Reply { status: number, body: Record<string, unknown>, fingerprint: string }

function call (url: string, opts: { ca: string, cert?: string, key?: string }, payload: unknown = { input: order }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v1/data/authz/allow`, {
      method: 'POST',
      ca: opts.ca,
      ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
      headers: { 'content-type': 'application/json' },
      agent: false,
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>, fingerprint: peer.fingerprint256 })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify(payload))
  })
}

interface Exchange { status: number, body: Record<string, unknown> }

/** One request on its own connection: `path` chooses the route (plain POST /v1/data/... is the fast route). */
function exchange (url: string, opts: { ca: string, cert?: string, key?: string, agent?: Agent }, method: 'GET' | 'POST', path: string): Promise<Exchange & { reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}${path}`, {
      method,
      ca: opts.ca,
      ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
      headers: { 'content-type': 'application/json' },
      agent: opts.agent ?? false,
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>, reused: req.reusedSocket }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(method === 'POST' ? JSON.stringify({ input: order }) : undefined)
  })
}

/** The fast decision route, a fastify decision route and a fastify admin route. */
const ROUTES = [
  ['POST', '/v1/data/authz/allow'],
  ['POST', '/v1/data/authz/allow?pretty=true'],
  ['GET', '/v1/status'],
] as const

describe('TLS and mTLS listener', () => {
  let dir: string
  let root: Issued
  let svid: { cert: string, key: string }
  let foreign: { cert: string, key: string }
  let serverCertFile: string
  let serverKeyFile: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-'))
    const now = Date.now()
    const valid = { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) }
    root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', ...valid })
    const intermediate = await makeCa({ name: 'example.org intermediate', uri: 'spiffe://example.org', issuer: root, ...valid })
    const leaf = await makeLeaf({ issuer: intermediate, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    svid = { cert: pemOf(leaf, intermediate), key: await privateKeyPem(leaf) }
    // same trust-domain name, different (untrusted) root
    const evilRoot = await makeCa({ name: 'evil root', uri: 'spiffe://example.org', ...valid })
    const evilLeaf = await makeLeaf({ issuer: evilRoot, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    foreign = { cert: pemOf(evilLeaf), key: await privateKeyPem(evilLeaf) }
    const server = await makeServerCert(root)
    serverCertFile = join(dir, 'server.pem')
    serverKeyFile = join(dir, 'server.key')
    writeFileSync(serverCertFile, server.cert)
    writeFileSync(serverKeyFile, server.key)
    writeFileSync(join(dir, 'bundle.pem'), root.pem)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const identity = (): Record<string, unknown> => ({
    trust_domains: { 'example.org': { x509_authorities: [join(dir, 'bundle.pem')] } },
    x509_svid: { sources: ['mtls'] },
    watch: { enabled: false },
  })

  test('a client X.509-SVID is verified and its SPIFFE ID reaches the policy', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: { cert_file: serverCertFile, key_file: serverKeyFile, client_auth: 'request' } }, identity: identity() })
    t.after(close)
    assert.match(url, /^https:/)
    const ok = await call(url, { ca: root.pem, ...svid })
    assert.equal(ok.status, 200)
    assert.equal(ok.body.result, true)
    // no client certificate: anonymous, denied before the policy (default)
    const anon = await call(url, { ca: root.pem })
    assert.equal(anon.status, 401)
    assert.equal(anon.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
    // a certificate from an untrusted root with the same trust-domain name is rejected
    const evil = await call(url, { ca: root.pem, ...foreign })
    assert.equal(evil.status, 401)
    assert.equal(evil.body.code, 'unauthorized')
    assert.notEqual(evil.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('client_auth: require refuses requests without a client certificate', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: { cert_file: serverCertFile, key_file: serverKeyFile, client_auth: 'require' } }, identity: identity() })
    t.after(close)
    const anon = await call(url, { ca: root.pem })
    assert.equal(anon.status, 401)
    assert.equal((await call(url, { ca: root.pem, ...svid })).body.result, true)
  })

  test('the server certificate is reloaded when its files change', async (t) => {
    const certFile = join(dir, 'reload.pem')
    const keyFile = join(dir, 'reload.key')
    const first = await makeServerCert(root)
    writeFileSync(certFile, first.cert)
    writeFileSync(keyFile, first.key)
    const { url, close } = await startRuntime({ server: { tls: { cert_file: certFile, key_file: keyFile, client_auth: 'none' } } })
    t.after(close)
    const before = (await call(url, { ca: root.pem })).fingerprint
    const second = await makeServerCert(root)
    // write both, then swap them in by rename
    writeFileSync(join(dir, '.k'), second.key)
    writeFileSync(join(dir, '.c'), second.cert)
    renameSync(join(dir, '.k'), keyFile)
    renameSync(join(dir, '.c'), certFile)
    let now = before
    for (let i = 0; i < 50 && now === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      now = (await call(url, { ca: root.pem })).fingerprint
    }
    assert.notEqual(now, before)
    // a broken replacement keeps the current certificate
    writeFileSync(certFile, 'not a certificate')
    await new Promise((resolve) => setTimeout(resolve, 600))
    assert.equal((await call(url, { ca: root.pem })).fingerprint, now)
  })
})

describe('client_auth: a requested client certificate is always verified', () => {
  let dir: string
  let root: Issued
  let server: { cert: string, key: string }
  let svid: { cert: string, key: string }
  let selfSigned: { cert: string, key: string }
  let caIssued: { cert: string, key: string }
  let expiredSvid: { cert: string, key: string }
  let clientCaFile: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-client-auth-'))
    const now = Date.now()
    const valid = { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) }
    root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', ...valid })
    const leaf = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    svid = { cert: pemOf(leaf), key: await privateKeyPem(leaf) }
    const old = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) })
    expiredSvid = { cert: pemOf(old), key: await privateKeyPem(old) }
    // the defect: a self-signed certificate claiming the SPIFFE ID was let through
    const forged = await makeCa({ name: 'forged', uri: 'spiffe://example.org/ns/shop/sa/frontend', ca: false, keyUsage: KU.digitalSignature, ...valid })
    selfSigned = { cert: forged.pem, key: await privateKeyPem(forged) }
    // an ordinary client certificate from a private CA (no SPIFFE ID)
    const clientCa = await makeCa({ name: 'client CA', ...valid })
    const client = await makeLeaf({ issuer: clientCa, uris: [], dns: ['client.internal'], subject: 'CN=client', notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    caIssued = { cert: pemOf(client), key: await privateKeyPem(client) }
    clientCaFile = join(dir, 'client-ca.pem')
    writeFileSync(clientCaFile, clientCa.pem)
    server = await makeServerCert(root)
    writeFileSync(join(dir, 'server.pem'), server.cert)
    writeFileSync(join(dir, 'server.key'), server.key)
    writeFileSync(join(dir, 'bundle.pem'), root.pem)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const tls = (clientAuth: 'request' | 'require', extra: Record<string, unknown> = {}): Record<string, unknown> => ({ cert_file: join(dir, 'server.pem'), key_file: join(dir, 'server.key'), client_auth: clientAuth, ...extra })
  // X.509 trust bundles; the listener's gate refuses a bad certificate before any route (or
  // identity plugin) sees the request, on routes that never run a decision too
  const svidTrust = (): Record<string, unknown> => ({
    trust_domains: { 'example.org': { x509_authorities: [join(dir, 'bundle.pem')] } },
    x509_svid: { sources: ['mtls'] },
    on_missing: 'allow',
    watch: { enabled: false },
  })

  test('require with X.509-SVID trust: a self-signed certificate is refused on every route, a valid SVID accepted', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: tls('require') }, identity: svidTrust() } as never)
    t.after(close)
    for (const [method, path] of ROUTES) {
      const forged = await exchange(url, { ca: root.pem, ...selfSigned }, method, path)
      assert.equal(forged.status, 401, `${method} ${path}`)
      assert.equal(forged.body.portcullis_code, 'PORTCULLIS_IDENTITY_UNTRUSTED', `${method} ${path}`)
      const expired = await exchange(url, { ca: root.pem, ...expiredSvid }, method, path)
      assert.equal(expired.body.portcullis_code, 'PORTCULLIS_IDENTITY_EXPIRED', `${method} ${path}`)
      const none = await exchange(url, { ca: root.pem }, method, path)
      assert.equal(none.status, 401, `${method} ${path}`)
      assert.equal(none.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED', `${method} ${path}`)
      const ok = await exchange(url, { ca: root.pem, ...svid }, method, path)
      assert.equal(ok.status, 200, `${method} ${path}`)
    }
  })

  test('request with X.509-SVID trust: no certificate passes the listener, a bad one does not', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: tls('request') }, identity: svidTrust() } as never)
    t.after(close)
    for (const [method, path] of ROUTES) {
      assert.equal((await exchange(url, { ca: root.pem }, method, path)).status, 200, `${method} ${path}`)
      const forged = await exchange(url, { ca: root.pem, ...selfSigned }, method, path)
      assert.equal(forged.status, 401, `${method} ${path}`)
      assert.equal(forged.body.portcullis_code, 'PORTCULLIS_IDENTITY_UNTRUSTED', `${method} ${path}`)
    }
  })

  test('require with client_ca_file: the TLS layer refuses an unverified certificate, a CA-issued one is accepted', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: tls('require', { client_ca_file: clientCaFile }) } } as never)
    t.after(close)
    for (const [method, path] of ROUTES) {
      await assert.rejects(exchange(url, { ca: root.pem, ...selfSigned }, method, path), `${method} ${path}`)
      await assert.rejects(exchange(url, { ca: root.pem, ...svid }, method, path), `${method} ${path}: a CA outside client_ca_file`)
      await assert.rejects(exchange(url, { ca: root.pem }, method, path), `${method} ${path}: no certificate`)
      assert.equal((await exchange(url, { ca: root.pem, ...caIssued }, method, path)).status, 200, `${method} ${path}`)
    }
  })

  test('request with client_ca_file: a presented certificate must verify', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: tls('request', { client_ca_file: clientCaFile }) } } as never)
    t.after(close)
    for (const [method, path] of ROUTES) {
      assert.equal((await exchange(url, { ca: root.pem }, method, path)).status, 200, `${method} ${path}`)
      assert.equal((await exchange(url, { ca: root.pem, ...caIssued }, method, path)).status, 200, `${method} ${path}`)
      const forged = await exchange(url, { ca: root.pem, ...selfSigned }, method, path)
      assert.equal(forged.status, 401, `${method} ${path}`)
      assert.equal(forged.body.portcullis_code, 'PORTCULLIS_IDENTITY_UNTRUSTED', `${method} ${path}`)
    }
  })

  test('request or require with nothing to verify against refuses to start, naming server.tls.client_auth', () => {
    const cases: Array<Record<string, unknown>> = [
      { server: { tls: tls('require') } },
      { server: { tls: tls('request') } },
      // trust domains with JWT keys only cannot verify a certificate
      { server: { tls: tls('require') }, identity: { trust_domains: { 'example.org': { jwt_authorities: [join(dir, 'jwks.json')] } }, jwt_svid: { audiences: ['portcullis'] } } },
      // X.509 trust bundles, but the X.509-SVID plugin switched off
      { server: { tls: tls('require') }, identity: { ...svidTrust(), x509_svid: { enabled: false } } },
    ]
    for (const overrides of cases) {
      assert.throws(() => loadConfig({ env: {}, overrides: overrides as never }), (err: unknown) => isPortcullisError(err) && err.code === 'PORTCULLIS_CONFIG_INVALID' && err.details.key === 'server.tls.client_auth')
    }
    // left unset, client_auth is none when nothing could verify a certificate, request when something can
    assert.equal(loadConfig({ env: {}, overrides: { server: { tls: { cert_file: 'a', key_file: 'b' } } } as never }).server.tls?.client_auth, 'none')
    assert.equal(loadConfig({ env: {}, overrides: { server: { tls: { cert_file: 'a', key_file: 'b' } }, identity: svidTrust() } as never }).server.tls?.client_auth, 'request')
  })

  test('a verdict kept for a keep-alive connection ends with the certificate', async (t) => {
    let clock = Date.now()
    const verifier = createIdentityVerifier(validateIdentityConfig(svidTrust()), { now: () => new Date(clock) })
    const { runtime, close } = await startRuntime({}, { listen: false })
    const settings = { cert_file: join(dir, 'server.pem'), key_file: join(dir, 'server.key'), client_auth: 'require' as const }
    const app = build({ decisions: runtime.decisions, manager: runtime.manager, https: httpsOptions(settings), clientCertificates: clientCertificateGate(settings, verifier, () => clock) })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: root.pem, ...svid })
    t.after(async () => {
      agent.destroy()
      await app.close()
      await verifier.close()
      await close()
    })
    const first = await exchange(url, { ca: root.pem, ...svid, agent }, 'POST', '/v1/data/authz/allow')
    assert.equal(first.status, 200)
    clock += 2 * DAY // the SVID ends a day after now
    const later = await exchange(url, { ca: root.pem, ...svid, agent }, 'POST', '/v1/data/authz/allow')
    assert.equal(later.reused, true, 'the same connection')
    assert.equal(later.status, 401)
    assert.equal(later.body.portcullis_code, 'PORTCULLIS_IDENTITY_EXPIRED')
  })

  test('a trust-bundle change is applied to connections judged before it', async (t) => {
    const bundle = join(dir, 'rotating.pem')
    writeFileSync(bundle, root.pem)
    const { url, runtime, close } = await startRuntime({ server: { tls: tls('require') }, identity: { ...svidTrust(), trust_domains: { 'example.org': { x509_authorities: [bundle] } } } } as never)
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: root.pem, ...svid })
    t.after(async () => {
      agent.destroy()
      await close()
    })
    assert.equal((await exchange(url, { ca: root.pem, ...svid, agent }, 'GET', '/v1/status')).status, 200)
    // the CA is replaced: the trust domain no longer trusts the SVID's issuer
    writeFileSync(bundle, (await makeCa({ name: 'new root', uri: 'spiffe://example.org' })).pem)
    await runtime.identity?.reload()
    const after = await exchange(url, { ca: root.pem, ...svid, agent }, 'GET', '/v1/status')
    assert.equal(after.reused, true, 'the same connection')
    assert.equal(after.status, 401)
    assert.equal(after.body.portcullis_code, 'PORTCULLIS_IDENTITY_UNTRUSTED')
  })

  test('a client_ca_file without a certificate in it refuses to start', async () => {
    writeFileSync(join(dir, 'empty-ca.pem'), 'no certificates here\n')
    await assert.rejects(startRuntime({ server: { tls: tls('require', { client_ca_file: join(dir, 'empty-ca.pem') }) } } as never), (err: unknown) => isPortcullisError(err) && err.code === 'PORTCULLIS_CONFIG_INVALID' && err.details.key === 'server.tls.client_ca_file')
  })
})
