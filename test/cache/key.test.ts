import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalJson, decisionCacheKey } from '../../src/cache/key.js'

test('canonical JSON sorts keys at every depth and drops undefined members', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}')
})

test('inputs differing only in key order share a key; any other difference does not', () => {
  const k = (input: unknown): string => decisionCacheKey('authz', 'r1', 'authz/allow', input)
  assert.equal(k({ a: 1, b: { c: 2, d: 3 } }), k({ b: { d: 3, c: 2 }, a: 1 }))
  assert.notEqual(k({ a: 1 }), k({ a: '1' }))
  assert.notEqual(k({ a: [1, 2] }), k({ a: [2, 1] }))
  assert.notEqual(k({ identity: { spiffe_id: 'spiffe://a/x' } }), k({ identity: { spiffe_id: 'spiffe://a/y' } }))
  assert.notEqual(k(undefined), k(null))
})

test('the key is bound to bundle, revision and path', () => {
  const input = { a: 1 }
  const base = decisionCacheKey('authz', 'r1', 'authz/allow', input)
  assert.notEqual(base, decisionCacheKey('authz', 'r2', 'authz/allow', input))
  assert.notEqual(base, decisionCacheKey('authz', 'r1', 'authz/deny', input))
  assert.notEqual(base, decisionCacheKey('other', 'r1', 'authz/allow', input))
})
