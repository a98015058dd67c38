/**
 * src/json-input.ts: caller JSON into policy input without JavaScript's silent changes — a number
 * beyond a double (which JSON.parse makes Infinity and JSON.stringify `null`, below every number in
 * Rego: `{"amount": 1e400}` would pass `input.amount < 1000`) is refused; lone surrogate escapes
 * become U+FFFD as Go decodes them; nesting is bounded.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { JsonInputError, parseJsonInput } from '../src/json-input.js'

const problem = (text: string, depth = 64): string | undefined => {
  try {
    parseJsonInput(text, depth)
    return undefined
  } catch (err) {
    assert.ok(err instanceof JsonInputError)
    return err.problem
  }
}

test('numbers beyond a double are refused wherever they stand; large but finite ones pass', () => {
  const longMantissa = '1' + '0'.repeat(249) + 'e99' // 1e348 with a two-digit exponent
  const longFraction = '9'.repeat(309) + '.5'
  for (const t of ['1e400', '-1e400', '{"amount":1e400}', '[1,[2,{"x":1E+309}]]', '9'.repeat(400), '{"a":"1e400","b":-1e999}', `{"amount":${longMantissa}}`, `[${longFraction}]`, `[2.${'0'.repeat(300)}e308]`]) {
    assert.equal(problem(t), 'number-out-of-range', t)
  }
  assert.deepEqual(parseJsonInput('{"a":1e308,"b":"1e400","c":-1.7976931348623157e308,"d":1e-400}', 64), { a: 1e308, b: '1e400', c: -1.7976931348623157e308, d: 0 })
  // property: any number text JSON.parse makes infinite is refused, whatever its shape
  fc.assert(fc.property(fc.stringMatching(/^-?[1-9]\d{0,400}(\.\d{1,50})?([eE][+-]?\d{1,4})?$/), (n) => {
    const infinite = !Number.isFinite(JSON.parse(n))
    assert.equal(problem(`{"n":${n}}`) === 'number-out-of-range', infinite, n.slice(0, 40))
  }), { numRuns: 2000 })
})

test('lone surrogate escapes become U+FFFD in strings and keys; pairs stay pairs', () => {
  assert.deepEqual(parseJsonInput('{"x":"a\\ud800b","\\udc00":["\\ud83d\\ude00"]}', 64), { x: 'a\ufffdb', '\ufffd': ['\u{1F600}'] })
  assert.deepEqual(parseJsonInput('{"__proto__":"\\ud800"}', 64), JSON.parse('{"__proto__":"\ufffd"}'))
})

test('nesting past the limit and bad syntax are refused with their own problem', () => {
  assert.equal(problem('[[[1]]]', 2), 'too-deep')
  assert.equal(problem('[[1]]', 2), undefined)
  assert.equal(problem('{"a":'), 'syntax')
})

test('property: any JSON value a caller can send comes back as JSON.parse reads it', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
    const text = JSON.stringify(v)
    assert.deepEqual(parseJsonInput(text, 64), JSON.parse(text))
  }), { numRuns: 500 })
})
