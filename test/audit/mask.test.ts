/**
 * Masking (src/audit/mask.ts): OPA's mask rule semantics, applied copy-on-write so frozen,
 * interned or cached values are never changed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { eventOf, type AuditEvent } from '../../src/audit/event.js'
import { EventMasker, erasePlan, parseMaskRule } from '../../src/audit/mask.js'
import { deepFreeze } from '../../src/deep-freeze.js'
import { PortcullisError } from '../../src/errors.js'

function eventWith (input: unknown, result?: unknown): AuditEvent {
  const decision = result === undefined
    ? undefined
    : { decision_id: 'd', path: 'p', defined: true, result, bundles: {}, bundle: 'b', cached: false, input, timestamp: new Date(), metrics: { timer_rego_query_eval_ns: 0, timer_portcullis_identity_ns: 0, timer_portcullis_decision_ns: 0 } }
  return eventOf({ decision_id: 'd', timestamp: new Date(), bundles: {}, request: { path: 'p' }, input, ...(decision !== undefined ? { decision } : {}) })
}

test('remove, upsert and arrays as OPA applies them; the originals (frozen) are untouched', () => {
  const input = deepFreeze({ password: 'pw', user: { name: 'n', tags: ['a', 'b', 'c'] }, keep: { x: 1 } })
  const result = deepFreeze({ allowed: true, secret: 's' })
  const ev = eventWith(input, result)
  const m = new EventMasker(ev)
  for (const r of ['/input/password', '/input/user/tags/1', '/input/absent', '/result/secret']) m.apply(parseMaskRule(r))
  m.apply(parseMaskRule({ op: 'upsert', path: '/input/user/name', value: '**' }))
  m.apply(parseMaskRule({ op: 'upsert', path: '/input/new/deep', value: 1 }))
  assert.deepEqual(ev.input, { user: { name: '**', tags: ['a', 'c'] }, keep: { x: 1 }, new: { deep: 1 } })
  assert.deepEqual(ev.result, { allowed: true })
  assert.deepEqual(ev.erased, ['/input/password', '/input/user/tags/1', '/result/secret'])
  assert.deepEqual(ev.masked, ['/input/user/name', '/input/new/deep'])
  // untouched subtrees are shared, changed ones copied
  assert.equal((ev.input as { keep: unknown }).keep, input.keep)
  assert.deepEqual(input, { password: 'pw', user: { name: 'n', tags: ['a', 'b', 'c'] }, keep: { x: 1 } })
  assert.deepEqual(result, { allowed: true, secret: 's' })
})

test('a masked result loses its exact text (it no longer describes it); an untouched one keeps it', () => {
  const ev = eventWith({}, { n: 1, secret: 's' })
  ev.resultJson = '{"n":1,"secret":"s"}'
  new EventMasker(ev).apply(parseMaskRule('/input/nothing'))
  assert.equal(ev.resultJson, '{"n":1,"secret":"s"}')
  new EventMasker(ev).apply(parseMaskRule('/result/secret'))
  assert.equal(ev.resultJson, undefined)
})

test('whole-document rules: /input erased, /result upserted', () => {
  const ev = eventWith({ a: 1 }, true)
  const m = new EventMasker(ev)
  m.apply(parseMaskRule('/input'))
  m.apply(parseMaskRule({ op: 'upsert', path: '/result', value: 'hidden' }))
  assert.equal(ev.hasInput, false)
  assert.equal(ev.result, 'hidden')
})

test('invalid rules are refused by the parser (they fail a mask policy closed)', () => {
  for (const bad of ['', 'input/x', '/data/x', '/input/%zz', 5, null, ['a'], { op: 'replace', path: '/input/x' }, { op: 'remove' }]) {
    assert.throws(() => parseMaskRule(bad), `${JSON.stringify(bad)} should be invalid`)
  }
})

test('configured header pointers also erase Envoy header_map entries of that name', () => {
  const input = deepFreeze({ attributes: { request: { http: { headers: { authorization: 'Bearer t' }, headerMap: { headers: [{ key: 'Authorization', value: 'Bearer t' }, { key: 'x-ok', value: 'v' }] } } } } })
  const ev = eventWith(input)
  const plan = erasePlan(['/input/attributes/request/http/headers/authorization'])
  const m = new EventMasker(ev)
  for (const r of plan.rules) m.apply(r)
  for (const h of plan.headers) m.eraseHeaderMapEntries(h)
  assert.equal(JSON.stringify(ev.input).includes('Bearer'), false)
  assert.deepEqual(ev.erased, ['/input/attributes/request/http/headers/authorization', '/input/attributes/request/http/headerMap/headers/0/value'])
})

test('a configured pointer that is not a mask pointer fails start-up with PORTCULLIS_CONFIG_INVALID', () => {
  assert.throws(() => erasePlan(['/headers/x']), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_CONFIG_INVALID')
})

test('fail closed erases input and result and marks the event', () => {
  const ev = eventWith({ a: 1 }, { b: 2 })
  new EventMasker(ev).eraseAll(new PortcullisError('PORTCULLIS_POLICY_CONFLICT', 'x'))
  assert.equal(ev.hasInput, false)
  assert.equal(ev.hasResult, false)
  assert.deepEqual(ev.erased, ['/input', '/result'])
  assert.equal(ev.mask_error?.code, 'PORTCULLIS_POLICY_CONFLICT')
})

/** A deny's event with reasons, as the pipeline records them (decision/reasons.ts). */
function denyWithReasons (reasons: unknown[], truncated = false): AuditEvent {
  const ev = eventWith({ user: 'bob' }, false)
  ev.outcome = 'deny'
  ev.reasonsJson = JSON.stringify(reasons)
  if (truncated) ev.reasons_truncated = true
  return ev
}

test('reasons are maskable: erase lists in erased, upsert and object remove as OPA does for the result', () => {
  const ev = denyWithReasons(['only alice may read orders', { code: 'NOT_ALICE', user: 'bob' }, 'third'])
  const m = new EventMasker(ev)
  m.apply(parseMaskRule('/reasons/1/user'))
  m.apply(parseMaskRule({ op: 'upsert', path: '/reasons/0', value: '**' }))
  m.apply(parseMaskRule({ op: 'remove', path: '/reasons/2' }))
  m.apply(parseMaskRule('/reasons/7')) // not there: not listed
  assert.deepEqual(JSON.parse(ev.reasonsJson as string), ['**', { code: 'NOT_ALICE' }])
  assert.deepEqual(ev.erased, ['/reasons/1/user', '/reasons/2'])
  assert.deepEqual(ev.masked, ['/reasons/0'])
  // input and result untouched
  assert.deepEqual(ev.input, { user: 'bob' })
  assert.equal(ev.result, false)
})

test('reasons erased by index: every rule of a set addresses the reasons as the set found them', () => {
  // the set a policy builds with `mask contains sprintf("/reasons/%d", [i]) if input.reasons[i].user`
  // is sorted as strings: /reasons/0, /reasons/1, /reasons/10, /reasons/2 (and may repeat a pointer)
  const reasons: unknown[] = Array.from({ length: 12 }, (_, i) => [0, 1, 2, 10].includes(i) ? { user: `u${i}` } : `public ${i}`)
  const ev = denyWithReasons(reasons)
  new EventMasker(ev).applySet(['/reasons/0', '/reasons/1', '/reasons/10', '/reasons/2', '/reasons/1', '/reasons/1/user'].map((p) => parseMaskRule(p)))
  assert.deepEqual(JSON.parse(ev.reasonsJson as string), reasons.filter((r) => typeof r === 'string'))
  assert.ok(!(ev.reasonsJson as string).includes('"user"'))
  // the rule below reason 1 ran before any removal (it was there); each removal is listed once
  assert.deepEqual(ev.erased, ['/reasons/1/user', '/reasons/10', '/reasons/2', '/reasons/1', '/reasons/0'])
})

test('the mask policy addresses the reasons as it saw them, after the configured erasure', () => {
  const ev = denyWithReasons(['r0', 'r1', 'r2'])
  const m = new EventMasker(ev)
  m.applySet(erasePlan(['/reasons/0']).rules)
  // the policy is shown ["r1", "r2"]: its /reasons/0 is r1
  assert.deepEqual(JSON.parse(ev.reasonsJson as string), ['r1', 'r2'])
  m.applySet([parseMaskRule('/reasons/0')])
  assert.deepEqual(JSON.parse(ev.reasonsJson as string), ['r2'])
  assert.deepEqual(ev.erased, ['/reasons/0', '/reasons/0'])
})

test('reasons erased whole: no reasons, no reasons_truncated, /reasons in erased; an event without reasons lists nothing', () => {
  const ev = denyWithReasons(['a', 'b'], true)
  new EventMasker(ev).apply(parseMaskRule('/reasons'))
  assert.equal(ev.reasonsJson, undefined)
  assert.equal(ev.reasons_truncated, undefined)
  assert.deepEqual(ev.erased, ['/reasons'])
  const none = eventWith({ user: 'alice' }, true)
  new EventMasker(none).apply(parseMaskRule('/reasons'))
  assert.deepEqual(none.erased, [])
  assert.equal(none.reasonsJson, undefined)
})

test('configured erase pointers may name /reasons (and below); other roots stay refused', () => {
  const plan = erasePlan(['/reasons/0', '/reasons/1/user'])
  const ev = denyWithReasons(['secret account 42', { code: 'X', user: 'bob' }])
  new EventMasker(ev).applySet(plan.rules)
  // each pointer names the reason at that index when the set began: erasing /reasons/0 does not shift /reasons/1
  assert.deepEqual(JSON.parse(ev.reasonsJson as string), [{ code: 'X' }])
  assert.deepEqual(ev.erased, ['/reasons/1/user', '/reasons/0'])
  for (const bad of ['/reason', '/reasonsx', '/identity']) {
    assert.throws(() => erasePlan([bad]), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_CONFIG_INVALID', bad)
  }
})

test('fail closed erases the reasons with the input (they name what the input held)', () => {
  const ev = denyWithReasons(['why'])
  new EventMasker(ev).eraseAll(new PortcullisError('PORTCULLIS_POLICY_CONFLICT', 'x'))
  assert.equal(ev.reasonsJson, undefined)
  assert.deepEqual(ev.erased, ['/input', '/result', '/reasons'])
})
