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
  for (const t of ['1e400', '-1e400', '{"amount":1e400}', '[1,[2,{"x":1E+309}]]', '9'.repeat(400), '{"a":"1e400","b":-1e999}']) {
    assert.equal(problem(t), 'number-out-of-range', t)
  }
  assert.deepEqual(parseJsonInput('{"a":1e308,"b":"1e400","c":-1.7976931348623157e308}', 64), { a: 1e308, b: '1e400', c: -1.7976931348623157e308 })
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
