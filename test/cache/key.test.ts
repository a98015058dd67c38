import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { canonicalJson, decisionCacheKey, decisionCacheKeyOf, hashInput, internInput, keysSorted, withoutPaths, type DecisionKeyParts } from '../../src/cache/key.js'
import { ExactNumber } from '../../src/canonical-json.js'
import { parseJsonInput } from '../../src/json-input.js'

const sha = (text: string): string => createHash('sha256').update(text).digest('base64url')

test('canonical JSON sorts keys at every depth and drops undefined members', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}')
})

test('inputs differing only in key order share a key; any other difference does not', () => {
  const k = (input: unknown): string => decisionCacheKey({ generation: 1, strict: false, bundle: 'authz', revision: 'r1', path: 'authz/allow' }, input)
  assert.equal(k({ a: 1, b: { c: 2, d: 3 } }), k({ b: { d: 3, c: 2 }, a: 1 }))
  assert.notEqual(k({ a: 1 }), k({ a: '1' }))
  assert.notEqual(k({ a: [1, 2] }), k({ a: [2, 1] }))
  assert.notEqual(k({ identity: { spiffe_id: 'spiffe://a/x' } }), k({ identity: { spiffe_id: 'spiffe://a/y' } }))
  assert.notEqual(k(undefined), k(null))
})

test('the key is bound to generation, strictness, bundle, revision and path', () => {
  const input = { a: 1 }
  const parts = { generation: 1, strict: false, bundle: 'authz', revision: 'r1', path: 'authz/allow' }
  const base = decisionCacheKey(parts, input)
  assert.notEqual(base, decisionCacheKey({ ...parts, generation: 2 }, input))
  assert.notEqual(base, decisionCacheKey({ ...parts, strict: true }, input))
  assert.notEqual(base, decisionCacheKey({ ...parts, revision: 'r2' }, input))
  assert.notEqual(base, decisionCacheKey({ ...parts, path: 'authz/deny' }, input))
  assert.notEqual(base, decisionCacheKey({ ...parts, bundle: 'other' }, input))
  // a manifest without a revision ('') is still told apart by the generation
  assert.notEqual(decisionCacheKey({ ...parts, revision: '', generation: 1 }, input), decisionCacheKey({ ...parts, revision: '', generation: 2 }, input))
})

// Regression: cache poisoning through an encoded NUL. The key once joined its parts with NUL and
// marked strict mode as path + "\0strict", so the non-strict path `allow\0strict` wrote the entry
// the strict `allow` read.
test('cache poisoning through an encoded NUL: a path cannot impersonate the strict flag', () => {
  const parts = { generation: 1, bundle: 'authz', revision: 'r1', inputSha: 'x', path: 'p', strict: false }
  assert.notEqual(
    decisionCacheKeyOf({ ...parts, path: 'authz/decision/allow\0strict', strict: false }),
    decisionCacheKeyOf({ ...parts, path: 'authz/decision/allow', strict: true }))
  assert.notEqual(
    decisionCacheKeyOf({ ...parts, bundle: 'a\0b', revision: 'c' }),
    decisionCacheKeyOf({ ...parts, bundle: 'a', revision: 'b\0c' }))
})

// The class of bug: any two different tuples of parts give different keys, whatever bytes the
// parts hold (control characters 0x00-0x1f, separators, quotes, lone surrogates).
test('property: the key is injective in every part', () => {
  const text = fc.string({ unit: fc.oneof(fc.constantFrom('\0', '\x01', '\x1f', '/', '"', '\\', ',', '[', ']', ':', '\uD800', '\uFFFD', 'a', 'strict'), fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c))), maxLength: 8 })
  const parts = fc.record({ generation: fc.nat(3), strict: fc.boolean(), bundle: text, revision: text, path: text, inputSha: text })
  fc.assert(fc.property(parts, parts, (a: DecisionKeyParts, b: DecisionKeyParts) => {
    const same = a.generation === b.generation && a.strict === b.strict && a.bundle === b.bundle && a.revision === b.revision && a.path === b.path && a.inputSha === b.inputSha
    assert.equal(decisionCacheKeyOf(a) === decisionCacheKeyOf(b), same)
  }), { numRuns: 5000 })
  // adjacent parts that trade characters are the dangerous pairs; check them directly too
  fc.assert(fc.property(text, text, text, (x, y, z) => {
    const base = { generation: 0, strict: false, inputSha: 'h' }
    const k1 = decisionCacheKeyOf({ ...base, bundle: x, revision: y + z, path: '' })
    const k2 = decisionCacheKeyOf({ ...base, bundle: x + y, revision: z, path: '' })
    assert.equal(k1 === k2, y === '')
  }), { numRuns: 2000 })
})

test('the input hash is SHA-256 of the canonical JSON, whether or not the keys arrive sorted', () => {
  const inputs: unknown[] = [
    { a: 1, b: { c: [1, { d: null, e: 'x' }], f: true } },
    { b: { f: true, c: [1, { e: 'x', d: null }] }, a: 1 },
    { 10: 'ten', 9: 'nine', b: 1 }, // integer-like keys: Object.keys order is numeric, not sorted
    { 'é': 1, e: 2, Z: 3, '': 4 },
    [3, 'x', { b: 1, a: 2 }],
    'text', 42, null, { nested: { deep: { deeper: [{ z: 1, a: 2 }] } } },
  ]
  for (const input of inputs) {
    const h = hashInput(input)
    assert.equal(h.hash, sha(canonicalJson(input)), JSON.stringify(input))
    // the text handed to the evaluation is the canonical text: the same value, keys sorted
    assert.equal(h.json, canonicalJson(input))
    assert.deepEqual(JSON.parse(h.json as string), JSON.parse(JSON.stringify(input)))
    // sorted keys: the plain JSON text is the canonical text
    if (keysSorted(input)) assert.equal(JSON.stringify(input), canonicalJson(input))
  }
  assert.equal(keysSorted({ 10: 'ten', 9: 'nine' }), false)
  assert.equal(keysSorted({ a: { c: 1, b: 2 } }), false)
  assert.equal(keysSorted({ a: [{ b: 1, c: 2 }] }), true)
  assert.equal(hashInput({ b: 1, a: 2 }).hash, hashInput({ a: 2, b: 1 }).hash)
})

test('an interned input is frozen to the bottom and hashed once', () => {
  const input = internInput({ identity: { spiffe_id: 'spiffe://example.org/x' }, path: ['a', 'b'] })
  assert.equal(Object.isFrozen(input.identity), true)
  assert.equal(Object.isFrozen(input.path), true)
  const first = hashInput(input)
  assert.equal(first.hash, sha(canonicalJson(input)))
  assert.equal(first.json, canonicalJson(input))
  // second time: remembered, nothing serialized
  const again = hashInput(input)
  assert.equal(again.hash, first.hash)
  assert.equal(again.json, undefined)
  assert.throws(() => { (input.identity as { spiffe_id: string }).spiffe_id = 'spiffe://example.org/y' }, TypeError)
})

test('withoutPaths: a pruned copy for the key; the input itself is untouched', () => {
  const input = { attributes: { request: { http: { id: 'x', method: 'GET' }, time: { seconds: 1 } }, source: { address: 'a' } }, parsed_path: ['a'] }
  const frozen = JSON.stringify(input)
  const pruned = withoutPaths(input, [['attributes', 'request', 'http', 'id'], ['attributes', 'request', 'time'], ['missing', 'path'], ['parsed_path', '0']])
  assert.deepEqual(pruned, { attributes: { request: { http: { method: 'GET' } }, source: { address: 'a' } }, parsed_path: ['a'] })
  assert.equal(JSON.stringify(input), frozen)
  // inputs differing only in left-out paths hash alike; any other difference does not
  const other = { ...input, attributes: { ...input.attributes, request: { http: { id: 'y', method: 'GET' }, time: { seconds: 2 } } } }
  const paths = [['attributes', 'request', 'http', 'id'], ['attributes', 'request', 'time']]
  assert.equal(hashInput(withoutPaths(input, paths)).hash, hashInput(withoutPaths(other, paths)).hash)
  assert.notEqual(hashInput(withoutPaths(input, [['attributes', 'request', 'time']])).hash, hashInput(withoutPaths(other, [['attributes', 'request', 'time']])).hash)
  assert.equal(withoutPaths('scalar', paths), 'scalar')
})

test('withoutPaths: an exact number is a scalar, never an object a path reaches into', () => {
  // 12345678901234567890 and 99999999999999999999 keep their digits as ExactNumber { text }:
  // a left-out `parsed_body.text` must not turn both (and `{}`) into one key
  const a = parseJsonInput('{"parsed_body":12345678901234567890}', 64)
  const b = parseJsonInput('{"parsed_body":99999999999999999999}', 64)
  const empty = parseJsonInput('{"parsed_body":{}}', 64)
  const paths = [['parsed_body', 'text']]
  assert.ok((a as { parsed_body: unknown }).parsed_body instanceof ExactNumber)
  assert.equal((withoutPaths(a, paths) as { parsed_body: unknown }).parsed_body, (a as { parsed_body: unknown }).parsed_body)
  const keys = [a, b, empty].map((v) => hashInput(withoutPaths(v, paths)).hash)
  assert.equal(new Set(keys).size, 3)
  // an object's own `text` member is still left out
  assert.deepEqual(withoutPaths({ parsed_body: { text: 'x', n: 1 } }, paths), { parsed_body: { n: 1 } })
})
