/** The OPA Data API over app.inject() (the real client over a socket is in client.test.ts). */
import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync, gunzipSync } from 'node:zlib'
import { startRuntime } from '../helpers/runtime.js'
import type { Runtime } from '../../src/server/runtime.js'
import { verifiedCaller, type VerifiedCaller } from '../helpers/identity.js'

// the caller's identity is verified (a real JWT-SVID in every request's headers), never taken from the input
const order = { service: 'orders', method: 'GET', path: '/orders/1' }

describe('OPA Data API', () => {
  let runtime: Runtime
  let close: () => Promise<void>
  let caller: VerifiedCaller
  before(async () => {
    caller = await verifiedCaller()
    ;({ runtime, close } = await startRuntime({ server: { body_limit_bytes: 64 * 1024, max_json_depth: 32 }, identity: caller.config() }, { listen: false }))
  })
  after(async () => close())

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    runtime.app.inject({ method: 'POST', url, payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json', ...caller.headers, ...headers } })

  test('POST /v1/data/{path} answers {result, decision_id}', async () => {
    const r = await post('/v1/data/authz/allow', { input: order })
    assert.equal(r.statusCode, 200)
    const body = r.json()
    assert.equal(body.result, true)
    assert.match(body.decision_id, /^[0-9a-f-]{36}$/)
    assert.equal(body.warning, undefined)
  })

  test('GET /v1/data/{path}?input= answers the same', async () => {
    const r = await runtime.app.inject({ method: 'GET', url: `/v1/data/authz/allow?input=${encodeURIComponent(JSON.stringify(order))}`, headers: caller.headers })
    assert.equal(r.json().result, true)
    const bad = await runtime.app.inject({ method: 'GET', url: '/v1/data/authz/allow?input=%7Bnope' })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'invalid_parameter')
  })

  // Regression: ?input= went through JSON.parse, so {"amount":1e400} reached the policy as
  // {"amount":null} (and null < 1000 holds in Rego) while the same body was refused.
  test('GET ?input= is read by the rules a body is: a number beyond a double, too deep, empty', async () => {
    for (const text of ['{"amount":1e400}', '['.repeat(40) + ']'.repeat(40), '', ' ']) {
      const r = await runtime.app.inject({ method: 'GET', url: `/v1/data/authz/allow?input=${encodeURIComponent(text)}`, headers: caller.headers })
      assert.equal(r.statusCode, 400, text)
      assert.equal(r.json().portcullis_code, 'PORTCULLIS_INPUT_INVALID', text)
    }
    const ok = await runtime.app.inject({ method: 'GET', url: `/v1/data/authz/allow?input=${encodeURIComponent(JSON.stringify({ ...order, amount: 1e300 }))}`, headers: caller.headers })
    assert.equal(ok.statusCode, 200)
  })

  // Regression: the cache key once joined its parts with NUL and marked strict mode as
  // path + "\0strict", so this non-strict request stored "undefined" where the strict caller read.
  test('cache poisoning through an encoded NUL: refused, and the strict answer stays true', async () => {
    const poison = await post('/v1/data/authz/decision/allow%00strict', { input: order })
    assert.equal(poison.statusCode, 400)
    assert.equal(poison.json().portcullis_code, 'PORTCULLIS_PATH_INVALID')
    const strict = await post('/v1/data/authz/decision/allow?strict-builtin-errors=true', { input: order })
    assert.equal(strict.statusCode, 200)
    assert.equal(strict.json().result, true)
  })

  test('an undefined decision is 200 without a result key', async () => {
    const r = await post('/v1/data/authz/decision/nothing', { input: order })
    assert.equal(r.statusCode, 200)
    assert.equal(Object.hasOwn(r.json(), 'result'), false)
  })

  test('a body without input gets OPA\'s api_usage_warning', async () => {
    // a body `null` and `"input": null` are no input too, as OPA reads them (DataRequestV1.Input is a pointer)
    for (const payload of ['{}', '', 'null', '{"input":null}']) {
      const r = await post('/v1/data/authz/allow', payload)
      assert.equal(r.statusCode, 200, JSON.stringify(payload))
      assert.deepEqual(r.json().warning, { code: 'api_usage_warning', message: "'input' key missing from the request" })
      assert.equal(r.json().result, false)
    }
  })

  test('malformed JSON is 400 invalid_parameter', async () => {
    for (const payload of ['{"input": ', '[1,2]', '"str"', '7']) {
      const r = await post('/v1/data/authz/allow', payload)
      assert.equal(r.statusCode, 400, payload)
      assert.equal(r.json().code, 'invalid_parameter', payload)
      assert.equal(r.json().portcullis_code, 'PORTCULLIS_INPUT_INVALID', payload)
    }
  })

  test('bodies are parsed as JSON whatever the content type, as OPA does', async () => {
    const r = await runtime.app.inject({ method: 'POST', url: '/v1/data/authz/allow', payload: JSON.stringify({ input: order }), headers: { 'content-type': 'application/x-www-form-urlencoded', ...caller.headers } })
    assert.equal(r.json().result, true)
  })

  test('too large a body is 413 in OPA\'s error shape', async () => {
    const r = await post('/v1/data/authz/allow', { input: { pad: 'x'.repeat(100 * 1024) } })
    assert.equal(r.statusCode, 413)
    assert.equal(r.json().code, 'invalid_parameter')
    assert.equal(r.json().portcullis_code, 'PORTCULLIS_INPUT_TOO_LARGE')
  })

  test('a number beyond a double in the input (1e400: Infinity to JSON.parse, null to the policy, below every number in Rego) is 400, never decided', async () => {
    for (const payload of ['{"input":{"amount":1e400}}', '{"input":[-1e999]}']) {
      const r = await post('/v1/data/authz/allow', payload)
      assert.equal(r.statusCode, 400, payload)
      assert.equal(r.json().portcullis_code, 'PORTCULLIS_INPUT_INVALID', payload)
    }
  })

  test('nesting deeper than the limit is refused before parsing', async () => {
    const deep = '{"input":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}'
    const r = await post('/v1/data/authz/allow', deep)
    assert.equal(r.statusCode, 400)
    assert.equal(r.json().portcullis_code, 'PORTCULLIS_INPUT_INVALID')
  })

  test('gzip request bodies are inflated; a gzip bomb stops at the body limit', async () => {
    const ok = await post('/v1/data/authz/allow', gzipSync(JSON.stringify({ input: order })), { 'content-encoding': 'gzip' })
    assert.equal(ok.json().result, true)
    const bomb = gzipSync(JSON.stringify({ input: { pad: ' '.repeat(50 * 1024 * 1024) } }))
    assert.ok(bomb.length < 100 * 1024)
    const r = await post('/v1/data/authz/allow', bomb, { 'content-encoding': 'gzip' })
    assert.equal(r.statusCode, 413)
    const garbage = await post('/v1/data/authz/allow', Buffer.from('not gzip'), { 'content-encoding': 'gzip' })
    assert.equal(garbage.statusCode, 400)
    const br = await post('/v1/data/authz/allow', '{}', { 'content-encoding': 'br' })
    assert.equal(br.statusCode, 400)
  })

  test('large responses are gzip-compressed when the client accepts it', async () => {
    const r = await runtime.app.inject({ method: 'GET', url: '/v1/status', headers: { 'accept-encoding': 'gzip' } })
    assert.equal(r.statusCode, 200)
    assert.equal(r.headers['content-encoding'], 'gzip')
    assert.ok(JSON.parse(gunzipSync(r.rawPayload).toString()).result.bundles.length >= 3)
  })

  test('?pretty, ?metrics and ?provenance', async () => {
    const r = await post('/v1/data/authz/allow?pretty=true&metrics=true&provenance', { input: order })
    assert.match(r.body, /\n {2}"result": true/)
    const body = r.json()
    assert.equal(typeof body.metrics.timer_rego_query_eval_ns, 'number')
    assert.equal(typeof body.metrics.timer_server_handler_ns, 'number')
    assert.equal(typeof body.provenance.version, 'string')
    assert.equal(typeof body.provenance.bundles.authz.revision, 'string')
  })

  test('a path no bundle owns is undefined (200, no result) as in OPA; an uncompiled rule inside a bundle is 404', async () => {
    const u = await post('/v1/data/nowhere/allow', { input: {} })
    assert.equal(u.statusCode, 200)
    assert.equal(Object.hasOwn(u.json(), 'result'), false)
    const r = await post('/v1/data/authz/not_a_rule', { input: {} })
    assert.equal(r.statusCode, 404)
    assert.equal(r.json().code, 'resource_not_found')
    assert.equal(r.json().portcullis_code, 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
    const whole = await post('/v1/data', { input: {} })
    assert.equal(whole.statusCode, 404)
  })

  test('POST /v0/data/{path}: raw input in, bare value out, 404 undefined_document', async () => {
    const r = await post('/v0/data/authz/allow', order)
    assert.equal(r.statusCode, 200)
    assert.equal(r.body, 'true')
    const u = await post('/v0/data/authz/decision/nothing', order)
    assert.equal(u.statusCode, 404)
    assert.equal(u.json().code, 'undefined_document')
  })

  test('POST / evaluates the default decision (system/main: undefined here, so 404 undefined_document)', async () => {
    const r = await post('/', order)
    assert.equal(r.statusCode, 404)
    assert.equal(r.json().code, 'undefined_document')
  })

  test('batch: 200 when all succeed, 500 when all fail (207 in client.test.ts); common_input merged', async () => {
    const ok = await post('/v1/batch/data/authz/allow', { inputs: { a: order, b: { ...order, method: 'DELETE' } } })
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.json().responses.a.result, true)
    assert.equal(ok.json().responses.b.result, false)
    const common = await post('/v1/batch/data/authz/allow', { common_input: { service: 'orders' }, inputs: { a: { method: 'GET', path: '/orders/1' }, b: { method: 'GET', path: '/nope' } } })
    assert.deepEqual([common.json().responses.a.result, common.json().responses.b.result], [true, false])
    const failing = await post('/v1/batch/data/authz/not_a_rule', { inputs: { a: {}, b: {} } })
    assert.equal(failing.statusCode, 500)
    assert.equal(failing.json().responses.a.http_status_code, '500')
    const bad = await post('/v1/batch/data/authz/allow', { nope: 1 })
    assert.equal(bad.statusCode, 400)
    // an id "__proto__" is an id like any other (it was decided but missing from the answer)
    const proto = await post('/v1/batch/data/authz/allow', `{"inputs":{"__proto__":${JSON.stringify(order)},"b":${JSON.stringify(order)}}}`, { 'content-type': 'application/json' })
    assert.equal(proto.statusCode, 200)
    assert.deepEqual(Object.keys(proto.json().responses).sort(), ['__proto__', 'b'])
    assert.equal(proto.json().responses.__proto__.result, true)
    // common_input merged under thousands of inputs beyond 64 MiB in all: refused before any is decided
    const inputs = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`i${i}`, {}]))
    const amplified = await post('/v1/batch/data/authz/allow', { common_input: { pad: 'x'.repeat(40_000) }, inputs })
    assert.equal(amplified.statusCode, 413)
    assert.equal(amplified.json().portcullis_code ?? amplified.json().code, 'PORTCULLIS_INPUT_TOO_LARGE')
  })

  test('health: /health, ?bundles, /health/live, /health/ready', async () => {
    for (const url of ['/health', '/health?bundles', '/health/live', '/health/ready']) {
      const r = await runtime.app.inject({ method: 'GET', url })
      assert.equal(r.statusCode, 200, url)
      assert.deepEqual(r.json(), {}, url)
    }
  })

  test('protected endpoints: allowed from loopback, denied from elsewhere', async () => {
    const local = await runtime.app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '127.0.0.1' })
    assert.equal(local.statusCode, 200)
    const status = local.json().result
    assert.deepEqual(status.bundles.map((b: { name: string }) => b.name), ['authz', 'envoy', 'system'])
    assert.equal(status.cache.max_entries, 100_000)
    const remote = await runtime.app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '10.9.8.7' })
    assert.equal(remote.statusCode, 403)
    assert.equal(remote.json().code, 'unauthorized')
    const flushRemote = await runtime.app.inject({ method: 'POST', url: '/v1/cache/flush', remoteAddress: '10.9.8.7' })
    assert.equal(flushRemote.statusCode, 403)
    await post('/v1/data/authz/allow', { input: order })
    const flush = await runtime.app.inject({ method: 'POST', url: '/v1/cache/flush', remoteAddress: '127.0.0.1' })
    assert.equal(flush.statusCode, 200)
    assert.ok(flush.json().result.flushed >= 1)
    // a browser request from another site (CSRF: any page an operator opened) is refused on
    // loopback too; tools send no Origin or Sec-Fetch-Site and are not affected
    for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }, { origin: 'null' }]) {
      const csrf = await runtime.app.inject({ method: 'POST', url: '/v1/cache/flush', remoteAddress: '127.0.0.1', headers: { ...headers, 'content-type': 'text/plain' }, payload: '{}' })
      assert.equal(csrf.statusCode, 403, JSON.stringify(headers))
      assert.equal(csrf.json().portcullis_code, 'PORTCULLIS_CONSOLE_CROSS_SITE')
    }
    const sameOrigin = await runtime.app.inject({ method: 'POST', url: '/v1/cache/flush', remoteAddress: '127.0.0.1', headers: { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' } })
    assert.equal(sameOrigin.statusCode, 200)
  })

  test('the system policy judges the path the router serves: escapes decoded, a trailing slash dropped', async () => {
    const { routedPath } = await import('../../src/server/plugins/admin-authz.js')
    assert.deepEqual(['/v1/%61udit/events?x=1', '/v1/cache/flush/', '/%75i/', '/', '/v1/status', '/a%zz'].map(routedPath), ['/v1/audit/events', '/v1/cache/flush', '/ui', '/', '/v1/status', '/a%zz'])
  })

  test('with on_missing: deny, the system policy still decides about anonymous callers of protected endpoints', async () => {
    const strict = await startRuntime({ identity: caller.config('deny') }, { listen: false })
    try {
      const local = await strict.runtime.app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '127.0.0.1' })
      assert.equal(local.statusCode, 200)
      const remote = await strict.runtime.app.inject({ method: 'GET', url: '/v1/status', remoteAddress: '10.9.8.7' })
      assert.equal(remote.statusCode, 403)
      // decisions themselves still need a credential
      const anonymous = await strict.runtime.app.inject({ method: 'POST', url: '/v1/data/authz/allow', payload: JSON.stringify({ input: order }), remoteAddress: '127.0.0.1' })
      assert.equal(anonymous.statusCode, 401)
      assert.equal(anonymous.json().portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
    } finally {
      await strict.close()
    }
  })

  test('/metrics is Prometheus text with the decision and HTTP series', async () => {
    await post('/v1/data/authz/allow', { input: order })
    const r = await runtime.app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(r.statusCode, 200)
    assert.match(r.headers['content-type'] as string, /text\/plain/)
    for (const series of ['portcullis_decisions_total', 'portcullis_http_request_duration_seconds_bucket', 'portcullis_decision_cache_hits_total', 'portcullis_bundle_activations_total', 'portcullis_request_errors_total', 'nodejs_eventloop_lag_seconds']) {
      assert.match(r.body, new RegExp(series), series)
    }
  })

  test('unknown endpoints are 404 in OPA\'s shape', async () => {
    const r = await runtime.app.inject({ method: 'GET', url: '/v2/whatever' })
    assert.equal(r.statusCode, 404)
    assert.equal(r.json().code, 'resource_not_found')
  })
})
