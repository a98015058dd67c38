/**
 * Property-based fuzzing of the HTTP Data API (fast-check), over real sockets. Every generated
 * request — random paths (percent-encoded, control characters, dots, very long), bodies
 * (malformed, deep, huge, wrong types, forged identities), headers and encodings, query flags —
 * goes to three servers on 127.0.0.1:
 *   - `fast`:  the framework-free decision route in front of fastify, decision cache on;
 *   - `plain`: fastify alone, its own decision cache;
 *   - `clean`: fastify alone, no cache: the answer a server with no history gives.
 * Properties: the process never crashes (and still answers afterwards); nothing answers 5xx
 * but an evaluation error; `fast` and `plain` answer the same (status, body, stable code); and
 * no request ever gets `true` from `fast` or `plain` where the clean server does not say true
 * (no poisoned cache, no forged identity). Bounded: a fixed number of runs and a time limit.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request as httpRequest } from 'node:http'
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { startRuntime } from '../helpers/runtime.js'
import { verifiedCaller, type VerifiedCaller } from '../helpers/identity.js'

const LIMIT = 16 * 1024
const DEPTH = 32
const RUNS = Number(process.env.FUZZ_RUNS ?? 600)
const TIME_LIMIT_MS = 90_000
/** The only codes a 5xx may carry: the policy's own evaluation failed (OPA answers 500 too). */
const EVALUATION_ERRORS = new Set(['PORTCULLIS_POLICY_CONFLICT', 'PORTCULLIS_POLICY_BUILTIN_ERROR', 'PORTCULLIS_POLICY_EVAL_FAILED'])

interface Req { path: string, body: Buffer, headers: Record<string, string> }
interface Answer { status: number, body: unknown, text: string }

const agent = new Agent({ keepAlive: true, maxSockets: 4 })

function send (base: string, r: Req): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(base)
    const req = httpRequest({ host: u.hostname, port: u.port, path: r.path, method: 'POST', agent, headers: { ...r.headers, 'content-length': r.body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try { body = JSON.parse(text) } catch {}
        resolve({ status: res.statusCode ?? 0, body, text })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(r.body)
  })
}

/** The parts of an answer two servers must agree on (ids and timers differ by nature). */
function comparable (a: Answer): unknown {
  if (a.body === null || typeof a.body !== 'object') return { status: a.status, body: a.body }
  const { decision_id: _id, metrics: _m, message: _msg, errors: _e, ...rest } = a.body as Record<string, unknown>
  return { status: a.status, body: rest }
}

// --- generators ------------------------------------------------------------------------------
const segment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('authz', 'allow', 'decision', 'system', 'main', 'envoy', 'reasons', 'nothing', 'segments_match') },
  { weight: 2, arbitrary: fc.constantFrom('.', '..', '%2e', '%2E%2e', '%2F', '%2f', '%00', '%0a', '%1f', '%7f', '%20', '%zz', '%', '%f', '%ff', '%c3%a9', '%e2%82', 'allow%00strict', '~', '-', '_', 'a;b', 'a=b', "a'b", 'é') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.~-]{1,12}$/) },
  { weight: 1, arbitrary: fc.nat(5000).map((n) => 'x'.repeat(n)) },
)
const randomPath = fc.tuple(
  fc.constantFrom('/v1/data/', '/v1/data/', '/v1/data/', '/v1/data', '/v1/data//'),
  fc.array(segment, { maxLength: 6 }),
  fc.constantFrom('', '', '', '/'),
  fc.constantFrom('', '', '', '', '?strict-builtin-errors=true', '?pretty=true', '?metrics=true', '?explain=notes', '?provenance', '?x=%00'),
).map(([prefix, segs, slash, query]) => prefix + segs.join('/') + slash + query)
// paths that reach allowing decisions, so the "never an undeserved true" property is exercised
const knownPath = fc.constantFrom('/v1/data/authz/allow', '/v1/data/authz/allow/', '/v1/data//authz/allow', '/v1/data/authz/%61llow', '/v1/data/authz/decision/allow', '/v1/data/authz/allow?strict-builtin-errors=true', '/v1/data/authz/decision')
const path = fc.oneof({ weight: 2, arbitrary: knownPath }, { weight: 3, arbitrary: randomPath })

const json = fc.jsonValue({ maxDepth: 4 })
const order = fc.record({
  service: fc.constantFrom('orders', 'orders', 'payments', 'nope'),
  method: fc.constantFrom('GET', 'GET', 'POST', 'DELETE'),
  path: fc.constantFrom('/orders/1', '/orders/42', '/orders/1', '/admin', '/'),
})
const input = fc.oneof(
  { weight: 5, arbitrary: order },
  { weight: 2, arbitrary: order.map((o) => ({ ...o, identity: { spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' } })) },
  { weight: 1, arbitrary: order.map((o) => ({ ...o, identity_error: null })) },
  { weight: 2, arbitrary: json },
)
const bodyText = fc.oneof(
  { weight: 6, arbitrary: input.map((i) => JSON.stringify({ input: i })) },
  { weight: 1, arbitrary: fc.constantFrom('', '{}', '{"input":', '[1,2]', '"allow"', 'null', 'true', '{"input":1}{', '\u0000', '{"input":"\\ud800"}', '{"input":{"a":1,"a":2}}') },
  { weight: 1, arbitrary: json.map((j) => JSON.stringify(j)) },
  { weight: 1, arbitrary: fc.integer({ min: DEPTH - 2, max: DEPTH + 40 }).map((d) => `{"input":${'['.repeat(d)}${']'.repeat(d)}}`) },
  { weight: 1, arbitrary: fc.integer({ min: LIMIT - 64, max: LIMIT + 256 }).map((n) => JSON.stringify({ input: { pad: 'x'.repeat(n) } })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 64 }) },
)
const encoding = fc.constantFrom<'none' | 'identity' | 'gzip' | 'bogus-gzip' | 'br'>('none', 'none', 'none', 'identity', 'gzip', 'bogus-gzip', 'br')
const contentType = fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined)
const credential = fc.constantFrom<'valid' | 'none' | 'garbage' | 'unsigned'>('valid', 'valid', 'none', 'garbage', 'unsigned')

describe('fuzzing the HTTP API (fast-check)', () => {
  let caller: VerifiedCaller
  const servers: Record<'fast' | 'plain' | 'clean', { url: string, close: () => Promise<void> }> = {} as never

  before(async () => {
    caller = await verifiedCaller()
    const common = { body_limit_bytes: LIMIT, max_json_depth: DEPTH }
    for (const [name, server, cache] of [['fast', { ...common, fast_data_route: true }, true], ['plain', { ...common, fast_data_route: false }, true], ['clean', { ...common, fast_data_route: false }, false]] as const) {
      const { url, close } = await startRuntime({ server, cache: { enabled: cache }, identity: caller.config() })
      servers[name] = { url, close }
    }
  })
  after(async () => {
    agent.destroy()
    for (const s of Object.values(servers)) await s.close()
  })

  test('random requests: no crash, no 5xx but evaluation errors, both routes agree, never an undeserved true', async () => {
    const request = fc.record({ path, body: bodyText, encoding, contentType, credential }).map(({ path, body, encoding, contentType, credential }): Req => {
      const headers: Record<string, string> = {}
      if (contentType !== undefined) headers['content-type'] = contentType
      let bytes = Buffer.from(body)
      if (encoding === 'gzip') { headers['content-encoding'] = 'gzip'; bytes = gzipSync(bytes) }
      if (encoding === 'bogus-gzip') headers['content-encoding'] = 'gzip'
      if (encoding === 'identity') headers['content-encoding'] = 'identity'
      if (encoding === 'br') headers['content-encoding'] = 'br'
      if (credential === 'valid') Object.assign(headers, caller.headers)
      if (credential === 'garbage') headers.authorization = 'Bearer not.a.jwt'
      if (credential === 'unsigned') headers.authorization = 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9ucy9zaG9wL3NhL2Zyb250ZW5kIn0.'
      // counterexamples print short: the path, the headers and the body's head and size
      const summary = `POST ${path} ${JSON.stringify(headers)} body(${bytes.length}B)=${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`
      return Object.assign({ path, body: bytes, headers }, { [fc.toStringMethod]: () => summary })
    })
    let trues = 0
    await fc.assert(fc.asyncProperty(request, async (r) => {
      // each request twice to the cached servers: the second may be a cache hit
      const fast1 = await send(servers.fast.url, r)
      const plain1 = await send(servers.plain.url, r)
      const fast2 = await send(servers.fast.url, r)
      const clean = await send(servers.clean.url, r)
      for (const a of [fast1, plain1, fast2, clean]) {
        if (a.status >= 500) {
          const code = (a.body as { portcullis_code?: string } | null)?.portcullis_code
          assert.ok(code !== undefined && EVALUATION_ERRORS.has(code), `5xx ${a.status} ${a.text.slice(0, 200)} for ${r.path}`)
        }
      }
      assert.deepEqual(comparable(fast1), comparable(plain1), `fast and fastify routes differ for ${r.path}`)
      assert.deepEqual(comparable(fast2), comparable(fast1), `a repeated request answered differently for ${r.path}`)
      for (const a of [fast1, plain1, fast2]) {
        const result = (a.body as { result?: unknown } | null)?.result ?? (a.status === 200 ? a.body : undefined)
        if (result === true) {
          trues++
          const cleanResult = (clean.body as { result?: unknown } | null)?.result ?? (clean.status === 200 ? clean.body : undefined)
          assert.equal(cleanResult, true, `true where a clean server does not say true, for ${r.path}`)
        }
      }
    }), { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false })
    assert.ok(trues > 0, 'the generated requests reached allowed decisions too (the property is not vacuous)')
    // still serving
    for (const s of Object.values(servers)) assert.equal((await fetch(`${s.url}/health`)).status, 200)
  })
})
