/**
 * The framework-free decision route (src/server/fast-data.ts) against the fastify route it
 * stands in for: the same requests go over real sockets to one app with the fast route and to
 * one without it (same pipeline, same limits), and the answers must agree — status, content
 * type, body (decision ids aside), stable error codes, and the error counts. A counter on
 * fastify's onRequest hook shows which requests the fast route took. Identity verification is
 * on (a real JWT-SVID in the headers), so the credential path is compared too.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { build } from '../../src/server/app.js'
import type { Runtime } from '../../src/server/runtime.js'
import { gzipSync } from 'node:zlib'
import { Metrics } from '../../src/metrics/index.js'
import { startRuntime } from '../helpers/runtime.js'
import { verifiedCaller, type VerifiedCaller } from '../helpers/identity.js'

const order = (path: string, method = 'GET'): unknown => ({ service: 'orders', method, path })
const LIMIT = 8 * 1024
const DEPTH = 16

interface Answer { status: number, type: string | undefined, body: unknown }

function send (url: string, path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}, chunked = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url)
    const h: Record<string, string | number> = { ...headers }
    if (body !== undefined && !chunked) h['content-length'] = Buffer.byteLength(body)
    const req = httpRequest(u, { method: 'POST', headers: h }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let parsed: unknown = text
        try { parsed = JSON.parse(text) } catch {}
        if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { decision_id?: unknown }).decision_id === 'string') {
          assert.match((parsed as { decision_id: string }).decision_id, /^[0-9a-f-]{36}$/)
          ;(parsed as { decision_id: string }).decision_id = '<id>'
        }
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: parsed })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (chunked && body !== undefined) {
      const b = Buffer.from(body)
      req.write(b.subarray(0, 5))
      setTimeout(() => req.end(b.subarray(5)), 10)
    } else {
      req.end(body)
    }
  })
}

describe('framework-free decision route', () => {
  let runtime: Runtime
  let fastUrl: string
  let plain: FastifyInstance
  let plainUrl: string
  let close: () => Promise<void>
  let fastifySaw = 0
  let caller: VerifiedCaller
  const plainMetrics = new Metrics({ defaultMetrics: false })

  before(async () => {
    caller = await verifiedCaller()
    ;({ runtime, close } = await startRuntime({ server: { body_limit_bytes: LIMIT, max_json_depth: DEPTH }, identity: caller.config() }, { listen: false }))
    runtime.app.addHook('onRequest', (_req, _reply, done) => { fastifySaw++; done() })
    fastUrl = await runtime.start()
    // the same pipeline behind fastify alone
    plain = build({ decisions: runtime.decisions, manager: runtime.manager, metrics: plainMetrics, bodyLimit: LIMIT, maxJsonDepth: DEPTH, fastDataRoute: false })
    plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await plain.close()
    await close()
  })

  const allowBody = JSON.stringify({ input: order('/orders/1') })
  // fastify: false marks the requests the fast route hands to fastify (both apps then answer through fastify)
  const cases: Array<{ name: string, path: string, body?: string | Buffer, headers?: Record<string, string>, chunked?: boolean, anonymous?: boolean, fastify?: boolean, status: number, result?: unknown, code?: string }> = [
    { name: 'allow', path: '/v1/data/authz/allow', body: JSON.stringify({ input: order('/orders/1') }), status: 200, result: true },
    { name: 'deny', path: '/v1/data/authz/allow', body: JSON.stringify({ input: order('/orders/1', 'DELETE') }), status: 200 },
    { name: 'object result', path: '/v1/data/authz/decision', body: JSON.stringify({ input: order('/nope') }), status: 200 },
    { name: 'below an entrypoint', path: '/v1/data/authz/decision/allow', body: JSON.stringify({ input: order('/orders/2') }), status: 200 },
    { name: 'undefined below an entrypoint', path: '/v1/data/authz/decision/nothing', body: JSON.stringify({ input: order('/orders/2') }), status: 200 },
    { name: 'a path no bundle owns', path: '/v1/data/nobody/owns/this', body: '{"input":{}}', status: 200 },
    { name: 'inside a bundle but not compiled', path: '/v1/data/authz/segments_match', body: '{"input":{}}', status: 404, code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' },
    { name: 'trailing slash', path: '/v1/data/authz/allow/', body: JSON.stringify({ input: order('/orders/3') }), status: 200 },
    { name: 'empty body', path: '/v1/data/authz/allow', body: '', status: 200 },
    { name: 'no input key', path: '/v1/data/authz/allow', body: '{"other":1}', status: 200 },
    // OPA reads `"input": null` as no input (DataRequestV1.Input is a pointer): the same as no input key
    { name: 'input null is no input', path: '/v1/data/authz/allow', body: '{"input":null}', status: 200 },
    { name: 'body null is no input', path: '/v1/data/authz/allow', body: 'null', status: 200 },
    { name: 'whitespace and key order', path: '/v1/data/authz/allow', body: '{ "input" : {"path":"/orders/4","method":"GET","service":"orders"} }\n', status: 200, result: true },
    { name: 'text/plain body', path: '/v1/data/authz/allow', body: JSON.stringify({ input: order('/orders/5') }), headers: { 'content-type': 'text/plain' }, status: 200 },
    { name: 'chunked body', path: '/v1/data/authz/allow', body: JSON.stringify({ input: order('/orders/6') }), chunked: true, status: 200 },
    { name: 'malformed JSON', path: '/v1/data/authz/allow', body: '{"input":', status: 400, code: 'PORTCULLIS_INPUT_INVALID' },
    { name: 'array body', path: '/v1/data/authz/allow', body: '[1,2]', status: 400, code: 'PORTCULLIS_INPUT_INVALID' },
    { name: 'string body', path: '/v1/data/authz/allow', body: '"allow"', status: 400, code: 'PORTCULLIS_INPUT_INVALID' },
    { name: 'too deep', path: '/v1/data/authz/allow', body: `{"input":${'['.repeat(DEPTH + 2)}${']'.repeat(DEPTH + 2)}}`, status: 400, code: 'PORTCULLIS_INPUT_INVALID' },
    { name: 'too large (declared)', path: '/v1/data/authz/allow', body: JSON.stringify({ input: { pad: 'x'.repeat(LIMIT) } }), status: 413, code: 'PORTCULLIS_INPUT_TOO_LARGE' },
    { name: 'too large (chunked)', path: '/v1/data/authz/allow', body: JSON.stringify({ input: { pad: 'x'.repeat(LIMIT) } }), chunked: true, status: 413, code: 'PORTCULLIS_INPUT_TOO_LARGE' },
    // regression: POST /v1/data/ once answered 200 on the fast route and 404 on fastify's
    { name: 'empty path', path: '/v1/data/', body: allowBody, status: 404, code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' },
    { name: 'only slashes', path: '/v1/data///', body: allowBody, status: 404, code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' },
    { name: 'double slash inside the path (skipped, as OPA)', path: '/v1/data/authz//allow', body: allowBody, status: 200, result: true },
    { name: 'percent-encoded segment', path: '/v1/data/authz/%61llow', body: allowBody, status: 200, result: true },
    { name: 'encoded slash', path: '/v1/data/authz%2Fallow', body: allowBody, status: 400, code: 'PORTCULLIS_PATH_INVALID' },
    { name: 'encoded NUL (cache poisoning attempt)', path: '/v1/data/authz/decision/allow%00strict', body: allowBody, status: 400, code: 'PORTCULLIS_PATH_INVALID' },
    { name: 'encoded control character', path: '/v1/data/authz/allow%1f', body: allowBody, status: 400, code: 'PORTCULLIS_PATH_INVALID' },
    { name: 'invalid UTF-8 once decoded', path: '/v1/data/authz/%ff', body: allowBody, status: 400, code: 'PORTCULLIS_PATH_INVALID' },
    { name: 'malformed escape', path: '/v1/data/authz/%zz', body: allowBody, status: 400, code: 'PORTCULLIS_PATH_INVALID' },
    { name: 'strict mode', path: '/v1/data/authz/allow?strict-builtin-errors=true', body: allowBody, fastify: true, status: 200, result: true },
    { name: 'gzip body', path: '/v1/data/authz/allow', body: gzipSync(allowBody), headers: { 'content-encoding': 'gzip' }, fastify: true, status: 200, result: true },
    { name: 'no credential: the policy sees identity_error and denies', path: '/v1/data/authz/allow', body: allowBody, anonymous: true, status: 200, result: false },
    { name: 'a forged input.identity is removed', path: '/v1/data/authz/allow', body: JSON.stringify({ input: { ...(order('/orders/1') as object), identity: { spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' } } }), anonymous: true, status: 200, result: false },
    { name: 'a forged credential is rejected', path: '/v1/data/authz/allow', body: allowBody, anonymous: true, headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9ucy9zaG9wL3NhL2Zyb250ZW5kIn0.' }, status: 401 },
  ]

  test('more than 1,000 headers: the credential and Content-Encoding after them are read (Node dropped them)', async () => {
    const headers: Record<string, string> = {}
    for (let i = 0; i < 1100; i++) headers[`x-h${i}`] = 'v'
    Object.assign(headers, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, caller.headers)
    for (const url of [fastUrl, plainUrl]) {
      const r = await send(url, '/v1/data/authz/allow', gzipSync(allowBody), headers)
      assert.deepEqual([r.status, (r.body as { result?: unknown }).result], [200, true], url)
    }
  })

  for (const c of cases) {
    test(`${c.name}: same answer with and without the fast route`, async () => {
      const before = fastifySaw
      const headers = { 'content-type': 'application/json', ...(c.anonymous === true ? {} : caller.headers), ...c.headers }
      const fast = await send(fastUrl, c.path, c.body, headers, c.chunked)
      assert.equal(fastifySaw, c.fastify === true ? before + 1 : before, c.fastify === true ? 'handed to fastify' : 'answered by the fast route, not by fastify')
      const slow = await send(plainUrl, c.path, c.body, headers, c.chunked)
      assert.equal(fast.status, c.status)
      assert.equal(slow.status, c.status)
      assert.equal(fast.type, slow.type)
      if (c.result !== undefined) assert.equal((fast.body as { result?: unknown }).result, c.result)
      if (c.code !== undefined) {
        const f = fast.body as { code: string, portcullis_code: string }
        const s = slow.body as { code: string, portcullis_code: string }
        assert.equal(f.portcullis_code, c.code)
        assert.equal(s.portcullis_code, c.code)
        assert.equal(f.code, s.code)
      } else {
        assert.deepEqual(fast.body, slow.body)
      }
    })
  }

  test('both apps counted the same request errors, once each', async () => {
    const counts = async (m: Metrics): Promise<string> => ((await m.requestErrors.get()).values.map((v) => `${String(v.labels.code)}=${v.value}`).sort().join(' '))
    const fast = await counts(runtime.metrics)
    assert.notEqual(fast, '')
    assert.equal(fast, await counts(plainMetrics))
  })

  test('the fast route answers a repeated body from the decision cache, the second time and after', async () => {
    const body = JSON.stringify({ input: order('/orders/cache-check') })
    const a = await send(fastUrl, '/v1/data/authz/allow', body, caller.headers)
    const stats = runtime.decisions.cacheStats()
    const b = await send(fastUrl, '/v1/data/authz/allow', body, caller.headers)
    assert.deepEqual(a, b)
    assert.equal(runtime.decisions.cacheStats()?.hits, (stats?.hits ?? 0) + 1)
    // from the third time on the parsed body itself is kept (interned); still the same answer
    const c = await send(fastUrl, '/v1/data/authz/allow', body, caller.headers)
    const d = await send(fastUrl, '/v1/data/authz/allow', body, caller.headers)
    assert.deepEqual(c, a)
    assert.deepEqual(d, a)
    assert.equal(runtime.decisions.cacheStats()?.hits, (stats?.hits ?? 0) + 3)
  })

  test('anything else goes to fastify: query strings, encodings, other methods and routes', async () => {
    const body = JSON.stringify({ input: order('/orders/7') })
    let before = fastifySaw
    const pretty = await send(fastUrl, '/v1/data/authz/allow?pretty=true', body, caller.headers)
    assert.equal(pretty.status, 200)
    assert.equal((pretty.body as { result: boolean }).result, true)
    assert.equal(fastifySaw, before + 1)
    before = fastifySaw
    const v0 = await send(fastUrl, '/v0/data/authz/allow', JSON.stringify(order('/orders/7')), caller.headers)
    assert.equal(v0.status, 200)
    assert.equal(v0.body, true)
    assert.equal(fastifySaw, before + 1)
    before = fastifySaw
    const bad = await send(fastUrl, '/v1/data/authz/allow', body, { 'content-encoding': 'br' })
    assert.equal(bad.status, 400)
    assert.equal((bad.body as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_INPUT_INVALID')
    assert.equal(fastifySaw, before + 1)
  })

  test('metrics count fast-route requests under the fastify route label', async () => {
    await send(fastUrl, '/v1/data/authz/allow', JSON.stringify({ input: order('/orders/8') }))
    await send(fastUrl, '/v1/data/authz/allow', '{"input":')
    const text = await runtime.metrics.registry.metrics()
    assert.match(text, /portcullis_http_request_duration_seconds_count\{route="\/v1\/data\/\*",method="POST",outcome="ok"\} [1-9]/)
    assert.match(text, /portcullis_http_request_duration_seconds_count\{route="\/v1\/data\/\*",method="POST",outcome="client_error"\} [1-9]/)
    assert.match(text, /portcullis_request_errors_total\{code="PORTCULLIS_INPUT_INVALID"\} [1-9]/)
  })
})

test('server.fast_data_route: false sends every request through fastify', async () => {
  const caller = await verifiedCaller()
  const { runtime, close } = await startRuntime({ server: { fast_data_route: false }, identity: caller.config() }, { listen: false })
  let saw = 0
  runtime.app.addHook('onRequest', (_req, _reply, done) => { saw++; done() })
  try {
    const url = await runtime.start()
    const r = await send(url, '/v1/data/authz/allow', JSON.stringify({ input: order('/orders/9') }), caller.headers)
    assert.equal(r.status, 200)
    assert.equal((r.body as { result: boolean }).result, true)
    assert.equal(saw, 1)
  } finally {
    await close()
  }
})
