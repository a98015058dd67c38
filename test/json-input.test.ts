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
import { canonicalJson, ExactNumber } from '../src/canonical-json.js'
import { runBounded } from './helpers/bounded.js'

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
  // 1e-400 is not 0 (OPA keeps it as written; a double would make it 0): it keeps its text
  assert.deepEqual(parseJsonInput('{"a":1e308,"b":"1e400","c":-1.7976931348623157e308,"d":1e-400}', 64), { a: 1e308, b: '1e400', c: -1.7976931348623157e308, d: new ExactNumber('1e-400') })
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

/** A parsed value with every ExactNumber read as a double, as JSON.parse would have read it. */
function asDoubles (v: unknown): unknown {
  if (v instanceof ExactNumber) return Number(v.text)
  if (Array.isArray(v)) return v.map(asDoubles)
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asDoubles(x)]))
  return v
}

test('property: any JSON value a caller can send comes back as JSON.parse reads it, but for numbers a double would change (kept exact)', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
    const text = JSON.stringify(v)
    const parsed = parseJsonInput(text, 64)
    assert.deepEqual(asDoubles(parsed), asDoubles(JSON.parse(text)))
    // and what is kept exact is exactly what the caller wrote
    const exact: string[] = []
    const collect = (x: unknown): void => { if (x instanceof ExactNumber) exact.push(x.text); else if (x !== null && typeof x === 'object') Object.values(x).forEach(collect) }
    collect(parsed)
    for (const t of exact) assert.ok(text.includes(t), t)
  }), { numRuns: 500 })
})

test('numbers a double cannot hold keep their digits (ExactNumber), and the canonical text writes them', () => {
  const v = parseJsonInput('{"id":12345678901234567891,"neg":-98765432109876543210,"frac":1234567890123456789.5,"safe":9007199254740991,"ts":1700000000000000000,"small":0.30000000000000004,"s":"12345678901234567891"}', 64) as Record<string, unknown>
  assert.deepEqual(v.id, new ExactNumber('12345678901234567891'))
  assert.deepEqual(v.neg, new ExactNumber('-98765432109876543210'))
  assert.deepEqual(v.frac, new ExactNumber('1234567890123456789.5'))
  assert.equal(v.safe, 9007199254740991)
  assert.equal(v.small, 0.30000000000000004) // a double's own shortest text loses nothing
  assert.equal(v.s, '12345678901234567891') // strings stay strings
  assert.equal(canonicalJson(v), '{"frac":1234567890123456789.5,"id":12345678901234567891,"neg":-98765432109876543210,"s":"12345678901234567891","safe":9007199254740991,"small":0.30000000000000004,"ts":1700000000000000000}')
  // two ids that differ only past a double's precision never share a canonical text (cache key, evaluation input)
  assert.notEqual(canonicalJson(parseJsonInput('{"id":12345678901234567890}', 64)), canonicalJson(parseJsonInput('{"id":12345678901234567891}', 64)))
})

test('a text holding the first markers still keeps its digits; one holding every marker is refused, never rounded', () => {
  const first16 = Array.from({ length: 16 }, (_, i) => String.fromCharCode(0xE000 + i)).join('')
  const v = parseJsonInput(JSON.stringify({ s: first16 }).slice(0, -1) + ',"id":9007199254740993}', 64) as Record<string, unknown>
  assert.deepEqual(v.id, new ExactNumber('9007199254740993'))
  // an integer a double holds exactly but writes back with other digits (2^60 → 1152921504606847000)
  // keeps its digits: two account ids never compare (or cache) as one
  for (const id of ['1152921504606846976', '12345678901234567168', '-1152921504606846976']) {
    assert.deepEqual((parseJsonInput(`{"account":${id}}`, 64) as Record<string, unknown>).account, new ExactNumber(id), id)
  }
  assert.equal((parseJsonInput('{"account":1152921504606847000}', 64) as Record<string, unknown>).account, 1152921504606847000)
  // a number that would underflow to 0 keeps its digits whatever else the text holds
  assert.deepEqual(parseJsonInput('{"b":1e-400}', 64), { b: new ExactNumber('1e-400') })
  assert.deepEqual(parseJsonInput('{"b":-2.5E-0330}', 64), { b: new ExactNumber('-2.5E-0330') })
  assert.equal(v.s, first16)
  const all = Array.from({ length: 0xF8FF - 0xE000 + 1 }, (_, i) => String.fromCharCode(0xE000 + i)).join('')
  assert.equal(problem(`{"s":"${all}","id":9007199254740993}`), 'syntax')
  // without a number a double would change, nothing needs a marker
  assert.equal(problem(`{"s":"${all}","id":12}`), undefined)
})

test('a caller string that looks like a marked number stays a string, raw or escaped', () => {
  for (const text of ['{"a":"\ue000123","id":12345678901234567891}', '{"a":"\uE000123","id":12345678901234567891}', `{"a":"${String.fromCharCode(0xE000)}123","id":12345678901234567891}`]) {
    const v = parseJsonInput(text, 64) as Record<string, unknown>
    assert.equal(typeof v.a, 'string', text)
    assert.deepEqual(v.id, new ExactNumber('12345678901234567891'), text)
  }
})

// Hostile sizes: a quadratic trailing-zero trim held the event loop for 334 s on a 1 MiB number.
test('a number with a long run of inner zeros is read in one pass, digits kept', () => {
  // within a bound, in a child process (test/helpers/bounded.ts): the quadratic trim took 334 s
  const r = runBounded(`import { parseJsonInput } from './src/json-input.ts'
    const v = parseJsonInput('{"a":1.' + '0'.repeat(1_000_000) + '1}', 64)
    process.stdout.write(String(v.a.text.length))`)
  assert.deepEqual(r, { ok: true, stdout: String(1_000_003) })
  const digits = '1.' + '0'.repeat(1_000_000) + '1'
  const v = parseJsonInput(`{"a":${digits}}`, 64) as { a: ExactNumber }
  assert.ok(v.a instanceof ExactNumber)
  assert.equal(v.a.text, digits)
  // all zeros after the 1: the value is 1e300, which a double holds digit for digit
  assert.deepEqual(parseJsonInput(`[1${'0'.repeat(300)}.${'0'.repeat(500_000)}]`, 64), [1e300])
})
