import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalJson, compareUtf8, ExactNumber, goCanonicalJson, goJsonString, keysSorted } from '../src/canonical-json.js'

test('json dialect: keys sorted at every depth, undefined members dropped, lone surrogates stay escaped (injective)', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }, undefined], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":2,"z":1},null]},"b":1}')
  assert.notEqual(canonicalJson({ s: '\uD800' }), canonicalJson({ s: '\uFFFD' }))
  assert.equal(keysSorted({ a: 1, b: { c: 1, d: 2 } }), true)
  assert.equal(keysSorted({ a: 1, b: { d: 1, c: 2 } }), false)
})

test('go dialect: byte-order keys, Go string escapes, exact numbers', () => {
  // U+FF61 sorts before U+1F600 in UTF-16 code units, after it in UTF-8 bytes (Go's order)
  assert.equal(goCanonicalJson({ '\u{1F600}': 1, '\uFF61': 2, a: 3 }, { escapeHtml: false }), '{"a":3,"\uFF61":2,"\u{1F600}":1}')
  assert.ok(compareUtf8('\uFF61', '\u{1F600}') < 0)
  assert.equal(goJsonString('<a&b>', true), '"\\u003ca\\u0026b\\u003e"')
  assert.equal(goJsonString('<a&b>', false), '"<a&b>"')
  assert.equal(goJsonString('\u2028', false), '"\\u2028"')
  assert.equal(goCanonicalJson({ n: new ExactNumber('1.0e+400'), b: 12345678901234567890n }, { escapeHtml: true }), '{"b":12345678901234567890,"n":1.0e+400}')
  assert.equal(goCanonicalJson({ b: [1], a: 'x' }, { escapeHtml: true, indent: '  ', prefix: '>' }), '>{\n>  "a": "x",\n>  "b": [\n>    1\n>  ]\n>}')
})
