import assert from 'node:assert/strict'
import { test } from 'node:test'
import { argumentNumber, ExactNumber, needsExact, NumberText, numberTextArguments, parseExact } from '../../../src/policy/builtins/exact-json.js'
import { runGroup } from './differential.js'
import { table } from './cases/types.js'
import { needsOpa } from '../../helpers/opa.js'

// OPA types a number by its text in places (sprintf: `100.0` is a float64, `100` an int64;
// providers.aws.sign_req refuses `-1e9`); arguments read as plain doubles forgot which it was.
test('parseExact keeps integral numbers written with a fraction or exponent as NumberText with their text', () => {
  const v = parseExact('[100.0, 1e2, -1e9, 0.0, -0.0, 1.50e1, 1.5, 1e-2, 100, "1.0 in a string", {"k": 2E3}, 123456789012345678.0]') as unknown[]
  assert.deepEqual(v.slice(0, 6).map((x) => (x as ExactNumber).text), ['100.0', '1e2', '-1e9', '0.0', '-0.0', '1.50e1'])
  for (const x of v.slice(0, 6)) assert.ok(x instanceof NumberText)
  assert.deepEqual(v.slice(6, 10), [1.5, 0.01, 100, '1.0 in a string'])
  assert.ok((v[10] as { k: unknown }).k instanceof NumberText)
  // a value a double cannot hold stays ExactNumber for every builtin
  assert.ok(v[11] instanceof ExactNumber && !(v[11] instanceof NumberText))
})

// Bundle data under 1 MiB and builtin arguments are read by parseExact: a decimal with more than
// 15 significant digits split by its point was parsed as a double unless something else in the
// text (an exponent anywhere, a long digit run) sent the text through the exact reader.
test('parseExact keeps a decimal with more than 15 significant digits, whatever else the text holds', () => {
  for (const text of ['{"max":1234567.1234567891}', '[0.1234567890123456789]', '{"a":12345678.12345678}']) {
    const v = Object.values(parseExact(text) as Record<string, unknown>)[0] as unknown
    assert.ok(v instanceof ExactNumber, text)
    assert.equal(v.text, /:(.*)}|\[(.*)\]/.exec(text)?.slice(1).find((x) => x !== undefined))
  }
  // 15 digits or fewer: a plain number
  assert.deepEqual(parseExact('{"a":1234567.12345678}'), { a: 1234567.12345678 })
})

test('numberTextArguments: only builtins that read numbers by their text see NumberText', () => {
  const kept = numberTextArguments([parseExact('[1.0, {"a": 2e0}]')], true) as unknown[][]
  assert.ok(kept[0]?.[0] instanceof NumberText)
  const plain = numberTextArguments([parseExact('[1.0, {"a": 2e0}, 123456789012345678.0]')], false) as unknown[][]
  assert.deepEqual(plain[0]?.slice(0, 2), [1, { a: 2 }])
  assert.ok(plain[0]?.[2] instanceof ExactNumber)
})

test('needsExact: a double must not stand in for a number whose value or form it loses', () => {
  for (const t of ['9007199254740993', '123456789123456789123', '2e308', '100.0', '1E2', '0.10000000000000000555']) assert.equal(needsExact(t), true, t)
  for (const t of ['9007199254740991', '-5', '1.5', '0.25', '1e-7', '3.14159']) assert.equal(needsExact(t), false, t)
})

// Rego compares numbers by value: 1.0 == 1. Builtins that compare their arguments must still
// see equal numbers however they were written.
test('numbers written 1.0 or 1e0 still equal 1 in builtins that compare values, as in opa eval', needsOpa(), async () => {
  const n = (t: string): ExactNumber => new ExactNumber(t)
  const results = await runGroup({
    name: 'number-text',
    tables: [
      table('object.subset', [[{ a: 1 }, { a: n('1.0') }], [[1, 2], [n('2.0')]], [{ a: n('1e0') }, { a: 1 }]]),
      table('json.patch', [[{ a: 1 }, [{ op: 'test', path: '/a', value: n('1.0') }]], [{ a: n('1.0') }, [{ op: 'test', path: '/a', value: 1 }]]]),
      table('strings.render_template', [['{{.a}} {{.b}} {{.c}}', { a: n('100.0'), b: n('1e2'), c: 100 }]]),
      table('yaml.marshal', [[[n('100.0'), n('1e2'), n('1234567.0'), 1234567]]]),
    ],
  })
  for (const r of results) assert.deepEqual(r.mismatches, [], r.builtin)
})

test('argumentNumber reads one token as parseExact does', () => {
  assert.equal(argumentNumber('1.5'), 1.5)
  assert.ok(argumentNumber('0.0') instanceof NumberText)
  assert.equal((argumentNumber('123456789123456789123') as ExactNumber).text, '123456789123456789123')
  assert.deepEqual(numberTextArguments([argumentNumber('2e0')], false), [2])
})

test('parseExact: a string that looks like a marked number stays a string (the marker is one the text does not hold)', () => {
  const v = parseExact('["\\ue000#n:12345678901234567890","\uE000#n:5",12345678901234567890]') as unknown[]
  assert.equal(v[0], '\uE000#n:12345678901234567890')
  assert.equal(v[1], '\uE000#n:5')
  assert.ok(v[2] instanceof ExactNumber && v[2].text === '12345678901234567890')
})
