import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ExactNumber, needsExact, parseExact } from '../../../src/policy/builtins/exact-json.js'

// OPA types a number by its text in places (sprintf: `100.0` is a float64, `100` an int64;
// providers.aws.sign_req refuses `-1e9`); arguments read as plain doubles forgot which it was.
test('parseExact keeps integral numbers written with a fraction or exponent as their text', () => {
  const v = parseExact('[100.0, 1e2, -1e9, 0.0, -0.0, 1.50e1, 1.5, 1e-2, 100, "1.0 in a string", {"k": 2E3}]') as unknown[]
  assert.deepEqual(v.slice(0, 6).map((x) => (x as ExactNumber).text), ['100.0', '1e2', '-1e9', '0.0', '-0.0', '1.50e1'])
  for (const x of v.slice(0, 6)) assert.ok(x instanceof ExactNumber)
  assert.deepEqual(v.slice(6, 10), [1.5, 0.01, 100, '1.0 in a string'])
  assert.ok((v[10] as { k: unknown }).k instanceof ExactNumber)
})

test('needsExact: a double must not stand in for a number whose value or form it loses', () => {
  for (const t of ['9007199254740993', '123456789123456789123', '2e308', '100.0', '1E2', '0.10000000000000000555']) assert.equal(needsExact(t), true, t)
  for (const t of ['9007199254740991', '-5', '1.5', '0.25', '1e-7', '3.14159']) assert.equal(needsExact(t), false, t)
})
