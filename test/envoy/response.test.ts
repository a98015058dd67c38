/**
 * response.ts: opa-envoy-plugin's result interpretation (envoyauth/response.go): what is
 * accepted, what is PORTCULLIS_ENVOY_RESULT_INVALID (never an allow).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkResponseOf, verdictOf } from '../../src/envoy/response.js'
import { isPortcullisError } from '../../src/errors.js'

const invalidResult = (err: unknown): boolean => isPortcullisError(err) && err.code === 'PORTCULLIS_ENVOY_RESULT_INVALID'

test('booleans and objects with a boolean allowed', () => {
  assert.equal(verdictOf(true).allowed, true)
  assert.equal(verdictOf(false).allowed, false)
  assert.equal(verdictOf({ allowed: true }).allowed, true)
  const deny = verdictOf({ allowed: false })
  assert.deepEqual([deny.allowed, deny.deniedResponse], [false, { status: 403, body: '' }])
})

test('malformed results are errors', () => {
  for (const bad of [null, 1, 'yes', [], {}, { allowed: 'true' }, { allowed: 1 },
    { allowed: true, headers: 'x' }, { allowed: true, headers: { a: 1 } }, { allowed: true, headers: { a: ['b', 2] } }, { allowed: true, headers: [{ a: 'b' }, 'c'] },
    { allowed: true, dynamic_metadata: [] }, { allowed: true, request_headers_to_remove: 'x' }, { allowed: true, request_headers_to_remove: [1] },
    { allowed: true, query_parameters_to_set: { a: 1 } }, { allowed: true, query_parameters_to_remove: [null] }, { allowed: true, response_headers_to_add: 5 },
    { allowed: false, body: 1 }, { allowed: false, http_status: 'x' }, { allowed: false, http_status: 418 }, { allowed: false, http_status: 99 }, { allowed: false, http_status: 403.5 }]) {
    assert.throws(() => verdictOf(bad), invalidResult, JSON.stringify(bad))
  }
})

test('allow-only fields are not read on a deny, deny-only fields not on an allow (as opa-envoy-plugin)', () => {
  assert.equal(verdictOf({ allowed: false, request_headers_to_remove: 5 }).allowed, false)
  assert.equal(verdictOf({ allowed: true, http_status: 'x', body: 1 }).allowed, true)
})

test('CheckResponse: decision_id in dynamic metadata', () => {
  const v = verdictOf({ allowed: false, http_status: 401, body: 'no', headers: { a: ['1', '2'] }, dynamic_metadata: { k: 'v' } })
  const real = checkResponseOf(v, 'id-1', { structured: true })
  assert.deepEqual(real.status, { code: 7 })
  assert.deepEqual(real.deniedResponse, { status: { code: 401 }, headers: [{ header: { key: 'a', value: '1' } }, { header: { key: 'a', value: '2' } }], body: 'no' })
  assert.deepEqual(real.dynamicMetadata, { fields: { k: { stringValue: 'v' }, decision_id: { stringValue: 'id-1' } } })
})

test('headers: a name that is not an RFC 9110 token or a value with CR, LF or NUL is PORTCULLIS_ENVOY_RESULT_INVALID on an allow, dropped on a deny (the class, not one input)', () => {
  const badNames = ['', 'x y', 'x:y', ':path', 'a\r\nb', 'x(y)', 'x"y', 'ä', 'x\0', 'x/y', 'x@y', 'x{y}', 'x\ty']
  const badValues = ['a\rb', 'a\nb', 'a\0b', '\r\n', 'alice\r\nx-admin: true', 'x\n']
  const cases: Array<[string, string]> = [...badNames.map((k): [string, string] => [k, 'v']), ...badValues.map((v): [string, string] => ['x-user', v])]
  for (const [key, value] of cases) {
    const what = JSON.stringify([key, value])
    assert.throws(() => verdictOf({ allowed: true, headers: { [key]: value } }), invalidResult, what)
    assert.throws(() => verdictOf({ allowed: true, headers: [{ ok: 'fine' }, { [key]: [value] }] }), invalidResult, what)
    assert.throws(() => verdictOf({ allowed: true, response_headers_to_add: { [key]: value } }), invalidResult, what)
    const deny = verdictOf({ allowed: false, headers: [{ 'x-kept': '1' }, { [key]: value }, { 'x-also': '2' }] })
    assert.deepEqual(deny.headers, [{ key: 'x-kept', value: '1' }, { key: 'x-also', value: '2' }], what)
    assert.deepEqual(deny.dropped?.map((d) => [d.field, d.key]), [['headers', key]], what)
  }
  for (const name of badNames) {
    assert.throws(() => verdictOf({ allowed: true, request_headers_to_remove: ['x-ok', name] }), invalidResult, JSON.stringify(name))
  }
  // every tchar is a name; tabs, spaces, obs-text and any other character are values
  const good = verdictOf({ allowed: true, headers: { "!#$%&'*+-.^_`|~09azAZ": 'a\tb c é' }, request_headers_to_remove: ['x-secret'] })
  assert.deepEqual([good.headers.length, good.dropped], [1, undefined])
})

test('connection and framing headers (transfer-encoding, content-length, connection, ...) are not the policy\'s: RESULT_INVALID on an allow, dropped on a deny', () => {
  for (const name of ['transfer-encoding', 'Content-Length', 'connection', 'Keep-Alive', 'upgrade', 'TE', 'trailer', 'proxy-connection']) {
    assert.throws(() => verdictOf({ allowed: true, headers: { [name]: 'chunked' } }), invalidResult, name)
    assert.throws(() => verdictOf({ allowed: true, response_headers_to_add: { [name]: 'x' } }), invalidResult, name)
    const deny = verdictOf({ allowed: false, headers: { [name]: 'chunked', 'x-kept': '1' } })
    assert.deepEqual(deny.headers, [{ key: 'x-kept', value: '1' }], name)
    assert.deepEqual(deny.dropped, [{ field: 'headers', key: name, reason: 'hop-by-hop' }], name)
  }
  // names that only start like one are ordinary headers
  assert.equal(verdictOf({ allowed: true, headers: { 'content-length-x': '1', 'x-connection': 'a', tea: 'b' } }).headers.length, 3)
})
