/**
 * The audit trail end to end: a real runtime (config -> createRuntime) on loopback with the
 * Data API, the batch route and both Envoy ext_authz modes, bundles compiled by the real opa
 * (test/fixtures/bundles/audit: decisions of every kind plus OPA-style system.log mask and drop
 * policies; test/fixtures/bundles/envoy), a real JWT-SVID trust domain, real clients over the
 * wire. Events are read from the console sink (`decision_logs.console`: one "Decision Log"
 * line per event, as OPA writes it). Where a test needs a sink that fails, is slow or keeps
 * exact text, it installs its own AuditSink (the durable log, src/audit/log/, is built by
 * another part of the work and is not wired in here yet).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { AuditTrail, type AuditSink } from '../../src/audit/trail.js'
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js'
import { EnvoyCheck } from '../../src/envoy/check.js'
import { envoyExtAuthz, type EnvoyListeners } from '../../src/envoy/listeners.js'
import { createRuntime, type Runtime } from '../../src/server/runtime.js'
import { buildFixture } from '../helpers/bundles.js'
import { FRONTEND, verifiedCaller, type VerifiedCaller } from '../helpers/identity.js'
import { waitFor } from '../helpers/wait.js'
import { authorizationClient, checkRequest, OK, PERMISSION_DENIED, type Checker } from '../envoy/support.js'

type Event = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN = '00f067aa0ba902b7'
const TRACEPARENT = `00-${TRACE}-${SPAN}-01`

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, text: string, body: any } // eslint-disable-line @typescript-eslint/no-explicit-any

function send (url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        let parsed: unknown
        try { parsed = JSON.parse(text) } catch { parsed = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed })
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

/** A test sink that keeps every event's exact text. */
class CaptureSink implements AuditSink {
  readonly texts: string[] = []
  append (eventJson: string): undefined { this.texts.push(eventJson); return undefined }
  async close (): Promise<void> {}
}

describe('audit trail: one event per decision, over the wire', () => {
  let work: string
  let runtime: Runtime
  let url: string
  let grpcCheck: Checker
  let closeClient: () => void
  let httpUrl: string
  let caller: VerifiedCaller
  const lines: Event[] = []
  const rawLines: string[] = []
  /** Console events so far; `take()` empties the list. */
  const take = (): Event[] => lines.splice(0).filter((l) => l.msg === 'Decision Log')

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-audit-'))
    const dir = join(work, 'bundles')
    mkdirSync(dir)
    buildFixture('audit', work, { out: join('bundles', 'audit.tar.gz'), revision: 'audit-rev-7' })
    buildFixture('envoy', work, { out: join('bundles', 'envoy.tar.gz'), revision: 'envoy-rev-2' })
    caller = await verifiedCaller()
    const stream = new Writable({
      write (chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) {
          if (l === '') continue
          rawLines.push(l)
          lines.push(JSON.parse(l) as Event)
        }
        cb()
      },
    })
    const config = loadConfig({
      env: {},
      overrides: {
        server: { addr: '127.0.0.1:0', workers: 1 },
        bundles: { dir, watch: false },
        logging: { level: 'info' },
        identity: { ...caller.config('allow'), on_rejected: 'deny' },
        audit: { labels: { env: 'test' } },
        decision_logs: { console: true },
        envoy_ext_authz: { grpc: { enabled: true, addr: '127.0.0.1:0' }, http: { enabled: true, addr: '127.0.0.1:0' } },
      } as ConfigOverrides,
    })
    runtime = await createRuntime(config, {}, { logger: pino({ level: 'info' }, stream), listeners: [envoyExtAuthz] })
    url = await runtime.start()
    const envoy = runtime.listeners[0] as EnvoyListeners
    httpUrl = envoy.httpUrl as string
    const c = authorizationClient(envoy.grpcAddress as string)
    grpcCheck = c.check
    closeClient = () => { c.client.close() }
  })

  after(async () => {
    closeClient()
    await runtime.stop()
    rmSync(work, { recursive: true, force: true })
  })

  test('a Data API decision: OPA fields, labels, bundle revisions, trace context, then a cache hit with its own event', async () => {
    take()
    const body = JSON.stringify({ input: { user: 'alice' } })
    const r1 = await send(url, 'POST', '/v1/data/audit/authz/allow', body, { traceparent: TRACEPARENT })
    const r2 = await send(url, 'POST', '/v1/data/audit/authz/allow', body)
    assert.equal(r1.status, 200)
    assert.equal(r1.body.result, true)
    const events = take()
    assert.equal(events.length, 2)
    const [e1, e2] = events as [Event, Event]
    assert.equal(e1.decision_id, r1.body.decision_id)
    assert.equal(e2.decision_id, r2.body.decision_id)
    assert.equal(e1.path, 'audit/authz/allow')
    assert.equal(e1.input.user, 'alice')
    assert.equal(e1.result, true)
    assert.deepEqual(e1.bundles, { audit: { revision: 'audit-rev-7' }, envoy: { revision: 'envoy-rev-2' } })
    assert.equal(e1.labels.env, 'test')
    assert.match(e1.labels.id, /^[0-9a-f-]{36}$/)
    assert.equal(typeof e1.labels.version, 'string')
    assert.equal(typeof e1.labels.hostname, 'string')
    assert.equal(e1.requested_by, '127.0.0.1')
    assert.equal(typeof e1.req_id, 'string')
    assert.equal(e1.trace_id, TRACE)
    assert.equal(e1.span_id, SPAN)
    assert.equal(Object.hasOwn(e2, 'trace_id'), false)
    assert.match(e1.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/)
    assert.equal(typeof e1.metrics.timer_rego_query_eval_ns, 'number')
    assert.deepEqual([e1.outcome, e1.transport, e1.cached], ['allow', 'http', false])
    assert.deepEqual([e2.outcome, e2.cached], ['allow', true])
    // an anonymous caller reached the policy (on_missing: allow): the event says so
    assert.equal(e1.identity_error, 'PORTCULLIS_IDENTITY_REQUIRED')
    const counted = (await runtime.metrics.auditEvents.get()).values.find((v) => v.labels.outcome === 'allow' && v.labels.transport === 'http')?.value ?? 0
    assert.ok(counted >= 2, `events counted by outcome and transport: ${counted}`)
    const status = await send(url, 'GET', '/v1/status')
    assert.equal(status.body.result.audit.state, 'enabled')
  })

  test('v1 GET and a denial', async () => {
    take()
    const r = await send(url, 'GET', `/v1/data/audit/authz/allow?input=${encodeURIComponent('{"user":"bob"}')}`)
    assert.equal(r.status, 200)
    const [e] = take()
    assert.deepEqual([e?.decision_id, e?.outcome, e?.result, e?.input.user], [r.body.decision_id, 'deny', false, 'bob'])
  })

  test('batch: one event per item, each naming the batch', async () => {
    take()
    const r = await send(url, 'POST', '/v1/batch/data/audit/authz/allow', JSON.stringify({ inputs: { a: { user: 'alice' }, b: { user: 'bob' } } }))
    assert.equal(r.status, 200)
    const events = take()
    assert.equal(events.length, 2)
    for (const id of ['a', 'b']) {
      const e = events.find((x) => x.decision_id === r.body.responses[id].decision_id)
      assert.ok(e !== undefined, `event for item ${id}`)
      assert.equal(e.transport, 'batch')
      assert.equal(e.batch_decision_id, r.body.batch_decision_id)
      assert.match(e.req_id, new RegExp(`/${id}$`))
    }
  })

  test('an evaluation error: outcome error with the OPA-shaped error', async () => {
    take()
    const r = await send(url, 'POST', '/v1/data/audit/authz/conflict', JSON.stringify({ input: { conflict: true } }))
    assert.equal(r.status, 500)
    const [e] = take()
    assert.equal(e?.outcome, 'error')
    assert.equal(e?.error.portcullis_code, 'PORTCULLIS_POLICY_CONFLICT')
    assert.equal(e?.error.code, 'internal_error')
    assert.equal(Object.hasOwn(e ?? {}, 'result'), false)
  })

  test('a verified caller: the identity summary, never the token', async () => {
    take()
    rawLines.length = 0
    const r = await send(url, 'POST', '/v1/data/audit/authz/whoami', JSON.stringify({ input: {} }), caller.headers)
    assert.equal(r.status, 200)
    const [e] = take()
    assert.deepEqual(e?.identity, { type: 'jwt-svid', spiffe_id: FRONTEND, trust_domain: 'example.org' })
    assert.equal(Object.hasOwn(e ?? {}, 'identity_error'), false)
    const token = (caller.headers.authorization as string).slice('Bearer '.length)
    assert.equal(rawLines.some((l) => l.includes(token)), false)
  })

  test('an identity rejection: a denial with the rejection code', async () => {
    take()
    const r = await send(url, 'POST', '/v1/data/audit/authz/allow', JSON.stringify({ input: { user: 'alice' } }), { authorization: 'Bearer not.a.token' })
    assert.equal(r.status, 401)
    const [e] = take()
    assert.equal(e?.outcome, 'deny')
    assert.match(e?.identity_error, /^PORTCULLIS_IDENTITY_/)
    assert.equal(e?.error.portcullis_code, e?.identity_error)
  })

  test('the exact result: an integer beyond 2^53 digit for digit (a test sink keeps the exact text)', async () => {
    const capture = new CaptureSink()
    new AuditTrail({ sinks: [{ name: 'capture', sink: capture }], erase: [] }).install(runtime.decisions)
    try {
      const r = await send(url, 'POST', '/v1/data/audit/authz/big', JSON.stringify({ input: { user: 'alice' } }))
      assert.equal(r.status, 200)
      assert.match(r.text, /12345678901234567890/)
      assert.equal(capture.texts.length, 1)
      assert.match(capture.texts[0] as string, /"result":\{"n":12345678901234567890,"secret":"s3cr3t","user":"alice"\}/)
    } finally {
      runtime.audit?.install(runtime.decisions)
    }
  })

  test("the bundle's mask policy (OPA's examples): erase, upsert, remove from the result; a missing path is not listed", async () => {
    take()
    const r = await send(url, 'POST', '/v1/data/audit/authz/big', JSON.stringify({ input: { user: 'alice', password: 'hunter2', ssn: '123-45-6789', hide_secret: true } }))
    assert.equal(r.status, 200)
    assert.equal(r.body.result.secret, 's3cr3t') // the caller's answer is not masked
    const [e] = take()
    assert.deepEqual(e?.input, { user: 'alice', ssn: '**REDACTED**', hide_secret: true, identity_error: { code: 'PORTCULLIS_IDENTITY_REQUIRED', message: 'no credential presented' } })
    assert.deepEqual(e?.result, { n: 12345678901234567000, user: 'alice' })
    assert.deepEqual([...(e?.erased ?? [])].sort(), ['/input/password', '/result/secret'])
    assert.deepEqual(e?.masked, ['/input/ssn'])
  })

  test('the drop policy drops by path, counted', async () => {
    take()
    const dropped = async (): Promise<number> => (await runtime.metrics.auditDropped.get()).values.find((v) => v.labels.reason === 'drop_policy')?.value ?? 0
    const before = await dropped()
    const r = await send(url, 'POST', '/v1/data/audit/authz/noisy', JSON.stringify({ input: {} }))
    assert.equal(r.status, 200)
    assert.equal(take().length, 0)
    assert.equal(await dropped(), before + 1)
  })

  test('a mask policy that fails (evaluation error, or a rule that is not one) erases the whole record, marked and counted', async () => {
    const failures = async (): Promise<number> => (await runtime.metrics.auditMaskErrors.get()).values.find((v) => v.labels.reason === 'policy_error')?.value ?? 0
    for (const [why, input, code] of [['evaluation error', { user: 'alice', explode: true, password: 'pw' }, 'PORTCULLIS_POLICY_CONFLICT'], ['invalid rule', { user: 'alice', bad_rule: true, password: 'pw' }, 'PORTCULLIS_POLICY_EVAL_FAILED']] as const) {
      take()
      rawLines.length = 0
      const before = await failures()
      const r = await send(url, 'POST', '/v1/data/audit/authz/allow', JSON.stringify({ input }))
      assert.equal(r.status, 200, why)
      const [e] = take()
      assert.equal(Object.hasOwn(e ?? {}, 'input'), false, why)
      assert.equal(Object.hasOwn(e ?? {}, 'result'), false, why)
      assert.deepEqual(e?.erased, ['/input', '/result'], why)
      assert.equal(e?.mask_error.code, code, why)
      assert.equal(e?.outcome, 'allow', why)
      assert.equal(await failures(), before + 1, why)
      assert.equal(rawLines.some((l) => l.includes('"pw"')), false, why)
    }
  })

  test('Envoy gRPC: the verdict as the outcome, credentials (a real JWT-SVID) and certificates erased by default, trace context from the headers', async () => {
    take()
    rawLines.length = 0
    const req = checkRequest('/public', { id: 'envoy-req-5', headers: { ':path': '/public', host: 'shop.example', authorization: caller.headers.authorization as string, cookie: 'session=cookie-secret', traceparent: TRACEPARENT } },
      // (the destination's certificate: a source certificate would be judged as the caller's X.509-SVID first)
      { destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 8080 } }, certificate: '-----BEGIN%20CERTIFICATE-----peer-cert-secret' } })
    const res = await grpcCheck(req)
    assert.equal(res.status?.code, OK)
    const [e] = take()
    assert.deepEqual([e?.transport, e?.outcome, e?.req_id, e?.trace_id, e?.span_id, e?.path], ['envoy-grpc', 'allow', 'envoy-req-5', TRACE, SPAN, 'envoy/authz/allow'])
    assert.deepEqual([...(e?.erased ?? [])].sort(), ['/input/attributes/destination/certificate', '/input/attributes/request/http/headers/authorization', '/input/attributes/request/http/headers/cookie'])
    assert.equal(e?.input.attributes.request.http.headers.host, 'shop.example')
    assert.equal(e?.identity.spiffe_id, FRONTEND)
    const token = (caller.headers.authorization as string).slice('Bearer '.length)
    for (const secret of [token, 'cookie-secret', 'peer-cert-secret']) assert.equal(rawLines.some((l) => l.includes(secret)), false, secret)
  })

  test('Envoy gRPC: a denial, a malformed result (error) and an unparseable request (refused) each leave one event', async () => {
    take()
    const denied = await grpcCheck(checkRequest('/deny'))
    assert.equal(denied.status?.code, PERMISSION_DENIED)
    await assert.rejects(grpcCheck(checkRequest('/malformed')))
    const refused = await grpcCheck(checkRequest('/a?b=%', { id: 'bad-1' }))
    assert.equal(refused.status?.code, PERMISSION_DENIED)
    const events = take()
    assert.equal(events.length, 3)
    const [d, m, x] = events as [Event, Event, Event]
    assert.deepEqual([d.outcome, d.result.allowed], ['deny', false])
    assert.deepEqual([m.outcome, m.error.portcullis_code, m.result.allowed], ['error', 'PORTCULLIS_ENVOY_RESULT_INVALID', 'yes'])
    assert.deepEqual([x.outcome, x.error.portcullis_code, x.req_id, x.transport], ['deny', 'PORTCULLIS_ENVOY_REQUEST_INVALID', 'bad-1', 'envoy-grpc'])
  })

  test('Envoy HTTP service mode: one event per forwarded request, refusals too', async () => {
    take()
    const ok = await send(httpUrl, 'GET', '/bool', undefined, { traceparent: TRACEPARENT, 'x-request-id': 'h-1' })
    assert.equal(ok.status, 200)
    const no = await send(httpUrl, 'GET', '/plaindeny')
    assert.equal(no.status, 403)
    const events = take()
    assert.equal(events.length, 2)
    assert.deepEqual([events[0]?.transport, events[0]?.outcome, events[0]?.req_id, events[0]?.trace_id, events[0]?.decision_id], ['envoy-http', 'allow', 'h-1', TRACE, ok.headers['x-portcullis-decision-id']])
    assert.deepEqual([events[1]?.outcome, events[1]?.decision_id], ['deny', no.headers['x-portcullis-decision-id']])
  })

  test('Envoy dry run: answered OK, the event keeps the real verdict and says dry_run', async () => {
    take()
    const dry = new EnvoyCheck({ decisions: runtime.decisions, settings: { path: 'envoy/authz/allow', skipRequestBodyParse: false, dryRun: true, trustedCaller: () => false }, transport: 'envoy-grpc' })
    const outcome = await dry.check(checkRequest('/deny') as never)
    assert.ok(outcome.kind === 'decided' && outcome.verdict.allowed)
    const [e] = take()
    assert.deepEqual([e?.outcome, e?.dry_run, e?.decision_id], ['deny', true, outcome.decisionId])
  })

  test('a sink that cannot take the event: the Data API answers 503, Envoy denies (gRPC and HTTP), nothing is allowed unrecorded', async () => {
    // a sink that rejects every event, as the durable log does when it cannot write and on_full is
    // deny (the durable log's own disk-full behaviour is tested on a real tmpfs in test/audit/log/)
    const broken: AuditSink = { append: () => Promise.reject(new Error('disk full')), close: async () => {} }
    new AuditTrail({ sinks: [{ name: 'broken', sink: broken }], metrics: runtime.metrics }).install(runtime.decisions)
    try {
      const r = await send(url, 'POST', '/v1/data/audit/authz/allow', JSON.stringify({ input: { user: 'alice' } }))
      assert.equal(r.status, 503)
      assert.equal(r.body.portcullis_code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
      assert.equal(Object.hasOwn(r.body, 'result'), false)
      const g = await grpcCheck(checkRequest('/public'))
      assert.equal(g.status?.code, PERMISSION_DENIED)
      assert.equal(g.deniedResponse?.status?.code, 503)
      assert.equal(g.okResponse, undefined)
      const h = await send(httpUrl, 'GET', '/bool')
      assert.equal(h.status, 403)
      const failures = (await runtime.metrics.auditWriteFailures.get()).values.find((v) => v.labels.sink === 'broken')?.value ?? 0
      assert.ok(failures >= 3)
    } finally {
      runtime.audit?.install(runtime.decisions)
    }
  })

  test('a slow sink (sync semantics): the answer waits until the event is recorded, on the fast route too', async () => {
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    const appended: string[] = []
    const slow: AuditSink = { append: (t) => { appended.push(t); return gate }, close: async () => {} }
    new AuditTrail({ sinks: [{ name: 'slow', sink: slow }] }).install(runtime.decisions)
    try {
      let answered = 0
      const body = JSON.stringify({ input: { user: 'alice' } })
      const replies = [0, 1, 2].map(async () => {
        const r = await send(url, 'POST', '/v1/data/audit/authz/allow', body)
        answered++
        return r
      })
      await waitFor(() => appended.length === 3, 'three events handed to the slow sink')
      // every event is with the sink and not one answer has left: they wait for the record
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(answered, 0)
      release()
      const rs = await Promise.all(replies)
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200])
      assert.deepEqual(rs.map((r) => r.body.result), [true, true, true])
    } finally {
      runtime.audit?.install(runtime.decisions)
    }
  })
})
