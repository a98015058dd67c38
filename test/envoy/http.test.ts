/**
 * Envoy's ext_authz http_service mode: real HTTP requests, as Envoy forwards them
 * (path_prefix + original path, headers, body), to the listener the runtime starts; the same
 * policy must answer the same as over gRPC.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { connect } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { checkRequest, envoyBundles, OK, startEnvoy, type EnvoyEnv } from './support.js'
import { stripPrefix } from '../../src/envoy/http.js'
import { DAY, HOUR, makeCa, makeLeaf, pemOf, urlEncodePem } from '../identity/support/pki.js'

async function metricValue (env: EnvoyEnv, name: string, labels: Record<string, string>): Promise<number> {
  const m = await env.runtime.metrics.registry.getSingleMetricAsString(name)
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of m.split('\n')) {
    if (line.startsWith('#')) continue
    if (want.every((w) => line.includes(w))) return Number(line.split(' ').pop())
  }
  return 0
}

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string }

function forward (base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(base)
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

describe('Envoy ext_authz HTTP service mode', () => {
  let bundles: ReturnType<typeof envoyBundles>
  let env: EnvoyEnv
  const PREFIX = '/ext'

  before(async () => {
    bundles = envoyBundles()
    env = await startEnvoy(bundles.dir, { envoy_ext_authz: { http: { path_prefix: PREFIX, max_body_bytes: 4096 } } })
  })
  after(async () => {
    await env.close()
    bundles.cleanup()
  })

  test('allow: 200 with the policy\'s headers (arrays as repeated values) and x-envoy-auth-headers-to-remove', async () => {
    const r = await forward(env.httpUrl, 'GET', `${PREFIX}/public/x`)
    assert.equal(r.status, 200)
    assert.equal(r.headers['x-user'], 'alice')
    assert.equal(r.headers['x-multi'], 'a, b')
    assert.equal(r.headers['x-resp'], '1')
    assert.equal(r.headers['x-envoy-auth-headers-to-remove'], 'x-secret')
    assert.match(String(r.headers['x-portcullis-decision-id']), /^[0-9a-f-]{36}$/)
  })

  test('deny: the policy\'s status, body and headers for the client; a boolean deny is 403', async () => {
    const r = await forward(env.httpUrl, 'GET', `${PREFIX}/deny`)
    assert.equal(r.status, 401)
    assert.equal(r.body, 'go away')
    assert.equal(r.headers['x-reason'], 'policy')
    assert.equal(r.headers['x-multi'], 'c, d')
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/boolno`)).status, 403)
    // a deny with a 5xx status would be an authorization-server failure to Envoy, which
    // failure_mode_allow can let through: answered 403 instead
    const five = await forward(env.httpUrl, 'GET', `${PREFIX}/unavailable`)
    assert.deepEqual([five.status, five.body], [403, 'try later'])
  })

  test('a denial stays a denial whatever its headers hold: a value HTTP cannot carry is left out, constructor/__proto__ are plain names, an interim 1xx status becomes 403', async () => {
    const plain = await forward(env.httpUrl, 'GET', `${PREFIX}/hdrdeny/abc`)
    assert.equal(plain.status, 409)
    assert.equal(plain.headers['x-denied-path'], 'hdrdeny/abc')
    assert.equal(plain.headers.constructor, 'c')
    for (const path of ['%E2%82%AC', '%00', 'a%0D%0Aset-cookie:x=1']) {
      const r = await forward(env.httpUrl, 'GET', `${PREFIX}/hdrdeny/${path}`)
      assert.equal(r.status, 409, path)
      assert.equal(r.headers['x-denied-path'], undefined, path)
      assert.equal(r.headers['set-cookie'], undefined, path)
    }
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/interim`)).status, 403)
  })

  test('a policy\'s connection or framing header: a deny drops it (the answer stays parseable), an allow is an error', async () => {
    for (const name of ['transfer-encoding', 'content-length', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection']) {
      // Node's strict HTTP/1 parser, as Envoy's codec, refuses an answer with both Content-Length and Transfer-Encoding
      const d = await forward(env.httpUrl, 'GET', `${PREFIX}/nameddeny/${name}`)
      assert.deepEqual([d.status, d.body, d.headers['x-kept'], d.headers['transfer-encoding']], [403, 'no', '1', undefined], name)
      const a = await forward(env.httpUrl, 'GET', `${PREFIX}/namedallow/${name}`)
      assert.deepEqual([a.status, a.body], [500, 'PORTCULLIS_ENVOY_RESULT_INVALID'], name)
      assert.equal(a.headers['transfer-encoding'], undefined, name)
    }
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/namedallow/x-fine`)).headers['x-fine'], 'chunked')
  })

  test('an allow whose header HTTP cannot carry is an error (5xx), as a malformed result is over gRPC', async () => {
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/hdrallow/abc`)).status, 200)
    const r = await forward(env.httpUrl, 'GET', `${PREFIX}/hdrallow/%00`)
    assert.equal(r.status, 500)
    assert.equal(r.body, 'PORTCULLIS_ENVOY_RESULT_INVALID')
  })

  test('errors are 5xx (Envoy applies status_on_error / failure_mode_allow); unparseable requests are 400', async () => {
    for (const p of ['/malformed', '/teapot', '/nothing']) {
      const r = await forward(env.httpUrl, 'GET', `${PREFIX}${p}`)
      assert.ok(r.status >= 500, `${p}: ${r.status}`)
    }
    const q = await forward(env.httpUrl, 'GET', `${PREFIX}/public?a=%zz`)
    assert.deepEqual([q.status, q.body], [400, 'PORTCULLIS_ENVOY_REQUEST_INVALID'])
    const j = await forward(env.httpUrl, 'POST', `${PREFIX}/body`, { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'false' }, '{"a":')
    assert.deepEqual([j.status, j.body], [400, 'PORTCULLIS_ENVOY_REQUEST_INVALID'])
  })

  test('path_prefix: removed before the input is built; a path without it is refused', async () => {
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}//admin/people`)).body, 'admin only')
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/people`)).status, 200)
    const r = await forward(env.httpUrl, 'GET', '/public/x')
    assert.equal(r.status, 400)
    assert.deepEqual(['/a', '/a', '/?x=1', '/', undefined, undefined], [stripPrefix('/p/a', '/p'), stripPrefix('/p/a', '/p/'), stripPrefix('/p?x=1', '/p'), stripPrefix('/p', '/p'), stripPrefix('/pa', '/p'), stripPrefix('/a', '/p')])
    // a prefix ending in '/': Envoy sends prefix + path as they are, so `/p/` + `/admin/x` is
    // `/p//admin/x`, and the original path is `/admin/x` (not `//admin/x`, which a rule on
    // /admin would miss); the same for the prefix `/`
    assert.deepEqual([stripPrefix('/p//admin/x', '/p/'), stripPrefix('//admin/x', '/'), stripPrefix('/p/', '/p/'), stripPrefix('/p/?x=1', '/p/'), stripPrefix('/q//a', '/p/')], ['/admin/x', '/admin/x', '/', '/?x=1', undefined])
  })

  test('a body over max_body_bytes is refused (413), never allowed', async () => {
    const r = await forward(env.httpUrl, 'POST', `${PREFIX}/public`, { 'content-type': 'text/plain' }, 'x'.repeat(10_000))
    assert.equal(r.status, 413)
  })

  test('requests refused before a Check (body over max_body_bytes, unreadable body, path without path_prefix) are audited and counted', async () => {
    const seen: string[] = []
    env.runtime.decisions.setAuditHook((rec) => { seen.push(`${rec.request.transport}:${rec.request.requestId ?? '-'}:${rec.error?.code ?? 'ok'}`) })
    try {
      const before = await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-http', outcome: 'refused' })
      const big = await forward(env.httpUrl, 'POST', `${PREFIX}/public`, { 'content-type': 'text/plain', 'x-request-id': 'rq-big' }, 'x'.repeat(10_000))
      assert.deepEqual([big.status, big.body], [413, 'PORTCULLIS_INPUT_TOO_LARGE'])
      const stray = await forward(env.httpUrl, 'GET', '/public/x', { 'x-request-id': 'rq-stray' })
      assert.deepEqual([stray.status, stray.body], [400, 'PORTCULLIS_ENVOY_REQUEST_INVALID'])
      // unreadable: the caller announces 100 body bytes, sends 5 and hangs up (real socket, real server)
      const u = new URL(env.httpUrl)
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(u.port), u.hostname, () => {
          socket.write(`POST ${PREFIX}/public HTTP/1.1\r\nhost: x\r\nx-request-id: rq-cut\r\ncontent-length: 100\r\n\r\nhello`, () => { setTimeout(() => { socket.destroy(); resolve() }, 50) })
        })
        socket.on('error', reject)
      })
      for (let i = 0; i < 100 && seen.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10))
      assert.deepEqual(seen, ['envoy-http:rq-big:PORTCULLIS_INPUT_TOO_LARGE', 'envoy-http:rq-stray:PORTCULLIS_ENVOY_REQUEST_INVALID', 'envoy-http:rq-cut:PORTCULLIS_ENVOY_REQUEST_INVALID'])
      assert.equal(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-http', outcome: 'refused' }), before + 3)
    } finally {
      env.runtime.decisions.setAuditHook(undefined)
    }
  })

  test('a body without x-envoy-auth-partial-body is treated as cut (Envoy forwards a cut body with Content-Length of what it sends): truncated_body, no parsed_body', async () => {
    // Envoy with max_request_bytes: 8192, allow_partial_message: true, and x-envoy-auth-partial-body
    // not in allowed_headers: the admin field lies past the cut, and nothing says the body was cut
    const cut = `pad=${'x'.repeat(8200)}&role=admin`.slice(0, 8192)
    const asSent = await forward(env.httpUrl, 'POST', `${PREFIX}/bodycheck`, { 'content-type': 'application/x-www-form-urlencoded' }, cut.slice(0, 4000))
    assert.deepEqual([asSent.status, asSent.body], [403, 'truncated'])
    // any body at all, whatever its type, until Envoy says it is whole
    for (const [type, body] of [['application/json', '{"role":"user"}'], ['application/x-www-form-urlencoded', 'role=user'], ['text/plain', 'x']]) {
      assert.deepEqual((await forward(env.httpUrl, 'POST', `${PREFIX}/bodycheck`, { 'content-type': type as string }, body)).body, 'truncated', type)
    }
    const whole = await forward(env.httpUrl, 'POST', `${PREFIX}/bodycheck`, { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'false' }, 'role=user')
    assert.equal(whole.status, 200)
    const admin = await forward(env.httpUrl, 'POST', `${PREFIX}/bodycheck`, { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'false' }, 'role=admin')
    assert.deepEqual([admin.status, admin.body], [403, 'no admins'])
    // no body: nothing to be cut
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/bodycheck`)).status, 200)
  })

  test('CONNECT is answered 403 (a denial) and closed; an absolute-form or asterisk-form target is refused 400; all audited and counted', async () => {
    const u = new URL(env.httpUrl)
    /** The whole answer to `raw`, read until the server closes the connection (bounded: 5 s). */
    const exchange = async (raw: string): Promise<string> => await new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname, () => socket.write(raw))
      let out = ''
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close after ${JSON.stringify(out)}`)) }, 5000)
      socket.on('data', (d: Buffer) => { out += d.toString('latin1') })
      socket.on('close', () => { clearTimeout(timer); resolve(out) })
      socket.on('error', reject)
    })
    const before = await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-http', outcome: 'refused' })
    const tunnel = await exchange('CONNECT admin.example:443 HTTP/1.1\r\nHost: admin.example:443\r\n\r\n')
    assert.match(tunnel, /^HTTP\/1\.1 403 /)
    assert.ok(tunnel.endsWith('\r\n\r\nPORTCULLIS_ENVOY_REQUEST_INVALID'), tunnel)
    for (const target of [`http://x${PREFIX}/public`, `https://x${PREFIX}/public?a=1`, '*']) {
      const method = target === '*' ? 'OPTIONS' : 'GET'
      const answer = await exchange(`${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      assert.match(answer, /^HTTP\/1\.1 400 /, target)
      assert.ok(answer.endsWith('PORTCULLIS_ENVOY_REQUEST_INVALID'), target)
    }
    assert.equal(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-http', outcome: 'refused' }), before + 4)
    assert.deepEqual([stripPrefix('http://x/p/a', '/p'), stripPrefix('http://x/a', '/'), stripPrefix('*', ''), stripPrefix('/a', '')], [undefined, undefined, undefined, '/a'])
  })

  test('a request header named __proto__ reaches the policy (it was dropped building the headers map)', async () => {
    const headers: Record<string, string> = {}
    Object.defineProperty(headers, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true })
    const r = await forward(env.httpUrl, 'GET', `${PREFIX}/protohdr`, headers)
    assert.deepEqual([r.status, r.body], [403, 'header __proto__'])
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/protohdr`, {})).status, 200)
  })

  test('a request with more than 1,000 headers keeps them all: a deny-on-header policy still sees the last one', async () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 1100; i++) headers[`x-h${i}`] = 'v'
    headers['x-deny'] = '1'
    const r = await forward(env.httpUrl, 'GET', `${PREFIX}/hdrcount`, headers)
    assert.deepEqual([r.status, r.body], [403, 'x-deny'])
    delete headers['x-deny']
    assert.equal((await forward(env.httpUrl, 'GET', `${PREFIX}/hdrcount`, headers)).status, 200)
  })

  test('the same policy answers the same in both modes', async () => {
    const cases: Array<{ path: string, method?: string, headers?: Record<string, string>, body?: string }> = [
      { path: '/public/x' }, { path: '/bool' }, { path: '/boolno' }, { path: '/deny' }, { path: '/plaindeny' },
      { path: '/teapot' }, { path: '/malformed' }, { path: '/nothing' }, { path: '//admin/people' }, { path: '/people' },
      { path: '/public?a=%zz' }, { path: '/public?x=1&x=2' },
      // as Envoy sends a body (with_request_body): x-envoy-auth-partial-body says whether it was cut
      { path: '/body', method: 'POST', headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'false' }, body: '{"user":"alice"}' },
      { path: '/body', method: 'POST', headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'false' }, body: '{"user":' },
      { path: '/body', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'false' }, body: 'a=1&b=2' },
      { path: '/bodycheck', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'false' }, body: 'role=admin' },
      { path: '/bodycheck', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-envoy-auth-partial-body': 'true' }, body: 'role=user' },
    ]
    for (const c of cases) {
      const method = c.method ?? 'GET'
      const headers = { ...(c.headers ?? {}), ...(c.body !== undefined ? { 'content-length': String(Buffer.byteLength(c.body)) } : {}) }
      const viaHttp = await forward(env.httpUrl, method, `${PREFIX}${c.path}`, c.headers ?? {}, c.body)
      let viaGrpc: string
      try {
        const r = await env.check(checkRequest(c.path, { method, headers, ...(c.body !== undefined ? { body: c.body } : {}) }))
        viaGrpc = (r.status?.code ?? OK) === OK ? 'allow' : `deny ${r.deniedResponse?.status?.code ?? 403} ${r.deniedResponse?.body ?? ''}`
      } catch (err) {
        viaGrpc = `error ${(err as grpc.ServiceError).metadata.get('portcullis-error-code')[0] as string}`
      }
      const httpAnswer = viaHttp.status === 200 ? 'allow' : viaHttp.status >= 500 ? `error ${viaHttp.body}` : `deny ${viaHttp.status} ${viaHttp.body}`
      assert.equal(httpAnswer, viaGrpc, `${method} ${c.path}`)
    }
  })
})

describe('Envoy ext_authz HTTP service mode: identity', () => {
  let bundles: ReturnType<typeof envoyBundles>
  before(() => { bundles = envoyBundles() })
  after(() => bundles.cleanup())

  test('XFCC from a trusted proxy is the verified identity; from an untrusted one it is refused (401)', async (t) => {
    const dir = join(bundles.dir, '..')
    const now = Date.now()
    const root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) })
    const leaf = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    writeFileSync(join(dir, 'bundle.pem'), root.pem)
    const identity = (proxies: string[]): Record<string, unknown> => ({
      trust_domains: { 'example.org': { x509_authorities: [join(dir, 'bundle.pem')] } },
      x509_svid: { sources: ['xfcc'], xfcc: { trusted_proxies: proxies } },
      on_missing: 'allow',
      watch: { enabled: false },
    })
    const xfcc = { 'x-forwarded-client-cert': `Cert="${urlEncodePem(pemOf(leaf))}"` }
    const trusted = await startEnvoy(bundles.dir, { identity: identity(['127.0.0.1']) })
    t.after(trusted.close)
    assert.equal((await forward(trusted.httpUrl, 'GET', '/whoami', xfcc)).status, 200)
    assert.equal((await forward(trusted.httpUrl, 'GET', '/whoami')).body, 'no identity')
    const untrusted = await startEnvoy(bundles.dir, { identity: identity(['10.1.1.1']) })
    t.after(untrusted.close)
    const r = await forward(untrusted.httpUrl, 'GET', '/whoami', xfcc)
    assert.deepEqual([r.status, r.body], [401, 'PORTCULLIS_IDENTITY_UNTRUSTED_PROXY'])
  })
})
