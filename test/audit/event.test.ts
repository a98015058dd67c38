/**
 * The event of a decision record (src/audit/event.ts): OPA's decision-log fields, W3C trace
 * context, Go's RFC 3339 timestamps, the identity summary, the outcome rules.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { eventJson, eventOf, identitySummary, parseTraceparent, rfc3339 } from '../../src/audit/event.js'
import type { DecisionRecord } from '../../src/decision/types.js'
import { PortcullisError } from '../../src/errors.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN = '00f067aa0ba902b7'

describe('W3C traceparent', () => {
  test('a valid version-00 header gives trace_id and span_id', () => {
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { trace_id: TRACE, span_id: SPAN })
  })
  test('a later version may carry more after a dash (parsed as 00)', () => {
    assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-00-extra`), { trace_id: TRACE, span_id: SPAN })
  })
  for (const [why, header] of [
    ['uppercase hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['an all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['trailing data on version 00', `00-${TRACE}-${SPAN}-01-x`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['a later version with trailing data not after a dash', `01-${TRACE}-${SPAN}-01x`],
    ['garbage', 'hello'],
  ] as const) {
    test(`invalid: ${why}`, () => { assert.equal(parseTraceparent(header), undefined) })
  }
})

test('timestamps are written as Go writes RFC3339Nano (UTC, no trailing zeros)', () => {
  assert.equal(rfc3339(new Date('2026-01-02T03:04:05.120Z')), '2026-01-02T03:04:05.12Z')
  assert.equal(rfc3339(new Date('2026-01-02T03:04:05.000Z')), '2026-01-02T03:04:05Z')
  assert.equal(rfc3339(new Date('2026-01-02T03:04:05.007Z')), '2026-01-02T03:04:05.007Z')
})

test('the identity summary carries who, never the credential', () => {
  assert.deepEqual(identitySummary({ identity: { type: 'jwt-svid', source: 'header', spiffe_id: 'spiffe://example.org/a', subject: 'spiffe://example.org/a', trust_domain: 'example.org', issuer: 'https://i', claims: { sub: 'x' } } }),
    { type: 'jwt-svid', spiffe_id: 'spiffe://example.org/a', issuer: 'https://i', trust_domain: 'example.org' })
  assert.deepEqual(identitySummary({ identity: { type: 'oidc', subject: 'system:serviceaccount:ns:sa', issuer: 'https://k8s' } }), { type: 'oidc', subject: 'system:serviceaccount:ns:sa', issuer: 'https://k8s' })
  assert.equal(identitySummary({ user: 'x' }), undefined)
})

function record (over: Partial<DecisionRecord> = {}): DecisionRecord {
  const timestamp = new Date('2026-01-02T03:04:05.678Z')
  return {
    decision_id: 'd-1',
    timestamp,
    bundles: { authz: { revision: 'r1' } },
    request: { path: '/authz/allow/', transport: 'http', requestId: 'req-1', requestedBy: '127.0.0.1', traceparent: `00-${TRACE}-${SPAN}-01` },
    input: { user: 'alice' },
    ...over,
  }
}

test('a failure: OPA-shaped error, outcome error, path without slashes, no result or metrics', () => {
  const ev = JSON.parse(eventJson(eventOf(record({ error: new PortcullisError('PORTCULLIS_POLICY_CONFLICT', 'two values') })), '{"id":"x"}')) as Record<string, unknown>
  assert.deepEqual(ev.error, { code: 'internal_error', message: 'two values', portcullis_code: 'PORTCULLIS_POLICY_CONFLICT' })
  assert.equal(ev.outcome, 'error')
  assert.equal(ev.path, 'authz/allow')
  assert.equal(ev.timestamp, '2026-01-02T03:04:05.678Z')
  assert.equal(ev.trace_id, TRACE)
  assert.equal(ev.span_id, SPAN)
  assert.equal(ev.req_id, 'req-1')
  assert.equal(ev.requested_by, '127.0.0.1')
  assert.equal(Object.hasOwn(ev, 'result'), false)
  assert.equal(Object.hasOwn(ev, 'metrics'), false)
  assert.deepEqual(Object.keys(ev).slice(0, 4), ['labels', 'decision_id', 'bundles', 'path'])
})

test('an identity rejection is a denial with its code', () => {
  const ev = JSON.parse(eventJson(eventOf(record({ error: new PortcullisError('PORTCULLIS_IDENTITY_SIGNATURE', 'bad') })), '{}')) as Record<string, unknown>
  assert.equal(ev.outcome, 'deny')
  assert.equal(ev.identity_error, 'PORTCULLIS_IDENTITY_SIGNATURE')
})

test("a transport's verdict is the outcome (Envoy: the answer it gave), with dry_run", () => {
  const decision = { decision_id: 'd-1', path: 'envoy/authz/allow', defined: true, result: { allowed: false }, bundles: {}, bundle: 'b', cached: false, input: {}, timestamp: new Date(), metrics: { timer_rego_query_eval_ns: 1, timer_portcullis_identity_ns: 0, timer_portcullis_decision_ns: 2 } }
  const ev = JSON.parse(eventJson(eventOf(record({ decision, verdict: { outcome: 'deny', dryRun: true } })), '{}')) as Record<string, unknown>
  assert.equal(ev.outcome, 'deny')
  assert.equal(ev.dry_run, true)
  assert.deepEqual(ev.metrics, { timer_rego_query_eval_ns: 1, timer_portcullis_identity_ns: 0, timer_portcullis_decision_ns: 2 })
})
