/**
 * What the audit trail adds to one decision (issue 11's targets: batched ≥ 95%, sync ≥ 80% of
 * audit-off throughput): the time to build, erase and serialize one event
 * (AuditTrail.build: event.ts + mask.ts, no bundle mask policy) beside the time of the
 * evaluation it records, for a Data API decision and for an Envoy Check whose input carries
 * the credential headers the default erasure removes. In-process, ~3 s per measurement.
 *
 *   flock /tmp/bench.lock node --import tsx benchmarks/audit-event.ts
 */
import { join } from 'node:path'
import { AuditTrail } from '../src/audit/trail.js'
import { AUDIT_DEFAULT_ERASE } from '../src/config/defaults.js'
import { BundleManager } from '../src/bundles/activate.js'
import type { DecisionRecord } from '../src/decision/types.js'
import { deepFreeze } from '../src/deep-freeze.js'
import { fmt, machine, opsPerSecond } from './lib.js'
import { repoRoot } from '../scripts/lib/opa.js'

const manager = new BundleManager()
if (!(await manager.load(join(repoRoot, 'bundles', 'authz.tar.gz')))) throw new Error('cannot load bundles/authz.tar.gz')
const snapshot = manager.snapshot
const trail = new AuditTrail({ sinks: [{ name: 'null', sink: { append: () => undefined, close: async () => {} } }], erase: AUDIT_DEFAULT_ERASE, labels: { env: 'bench' } })

// the identity document is frozen, as the verified-credential cache hands it out
const dataInput = { identity: deepFreeze({ type: 'jwt-svid', spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend', trust_domain: 'example.org', subject: 'spiffe://example.org/ns/shop/sa/frontend', claims: { sub: 'spiffe://example.org/ns/shop/sa/frontend', aud: ['portcullis'], exp: 1767225600 } }), service: 'orders', method: 'GET', path: '/orders/42' }
const envoyInput = {
  attributes: {
    source: { address: { socketAddress: { address: '10.0.0.7', portValue: 51234 } } },
    destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 8080 } } },
    request: { time: { seconds: 1767225600, nanos: 5 }, http: { id: 'f3b1c7e2-1', method: 'GET', path: '/orders/42', host: 'shop.example', scheme: 'https', protocol: 'HTTP/1.1', headers: { ':path': '/orders/42', host: 'shop.example', authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmUifQ.c2ln', 'user-agent': 'curl/8', accept: '*/*', 'x-request-id': 'f3b1c7e2-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } } },
  },
  parsed_path: ['orders', '42'],
  parsed_query: {},
  version: { ext_authz: 'v3', encoding: 'protojson' },
}

const dataInputJson = JSON.stringify(dataInput)

function record (input: unknown, transport: 'http' | 'envoy-grpc', i: number, inputJson?: string): DecisionRecord {
  const timestamp = new Date()
  const bundles = snapshot.revisions()
  return {
    decision_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    timestamp,
    bundles,
    input,
    ...(inputJson !== undefined ? { inputJson } : {}),
    snapshot,
    request: { path: transport === 'http' ? 'authz/allow' : 'envoy/authz/allow', transport, requestId: `req-${i}`, requestedBy: '127.0.0.1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    decision: { decision_id: 'x', path: 'authz/allow', defined: true, result: true, bundles, bundle: 'authz', cached: false, input, timestamp, metrics: { timer_rego_query_eval_ns: 20000, timer_portcullis_identity_ns: 0, timer_portcullis_decision_ns: 30000 } },
  }
}

const evaluation = opsPerSecond(() => { snapshot.evaluate('authz/allow', dataInput) })
const dataEvent = opsPerSecond((i) => { trail.build(record(dataInput, 'http', i)) })
// a cacheable decision: the pipeline hands over the input's text it wrote for the cache key
const dataEventText = opsPerSecond((i) => { trail.build(record(dataInput, 'http', i, dataInputJson)) })
const envoyEvent = opsPerSecond((i) => { trail.build(record(envoyInput, 'envoy-grpc', i)) })

console.log(`machine: ${machine()}`)
console.log(`evaluation (authz/allow):          ${fmt(evaluation.nsPerOp)} ns/op`)
console.log(`event, Data API decision:          ${fmt(dataEvent.nsPerOp)} ns/op  (${(100 * dataEvent.nsPerOp / evaluation.nsPerOp).toFixed(0)}% of the evaluation)`)
console.log(`event, Data API, input text reused: ${fmt(dataEventText.nsPerOp)} ns/op  (${(100 * dataEventText.nsPerOp / evaluation.nsPerOp).toFixed(0)}% of the evaluation)`)
console.log(`event, Envoy Check (erasure):      ${fmt(envoyEvent.nsPerOp)} ns/op  (${(100 * envoyEvent.nsPerOp / evaluation.nsPerOp).toFixed(0)}% of the evaluation)`)
