/** The batch route's common_input merge (the route over the wire is in data.test.ts and client.test.ts). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ExactNumber } from '../../../src/canonical-json.js'
import { parseJsonInput } from '../../../src/json-input.js'
import { mergeCommon } from '../../../src/server/routes/batch.js'

test('mergeCommon: objects merge member by member, the item winning; anything else is the item', () => {
  assert.deepEqual(mergeCommon({ a: 1, n: { x: 1, y: 1 } }, { b: 2, n: { y: 2 } }), { a: 1, b: 2, n: { x: 1, y: 2 } })
  assert.deepEqual(mergeCommon({ a: 1 }, [1]), [1])
  assert.equal(mergeCommon({ a: 1 }, 7), 7)
  assert.deepEqual(mergeCommon({ a: 1 }, undefined), { a: 1 })
})

test('mergeCommon: a number a double cannot hold stays a number (it was merged as {"text": digits})', () => {
  const body = parseJsonInput('{"common_input":{"c":1,"n":{"m":1}},"inputs":{"big":12345678901234567890,"nested":{"n":99999999999999999999}}}', 64) as { common_input: unknown, inputs: Record<string, unknown> }
  const big = mergeCommon(body.common_input, body.inputs.big)
  assert.ok(big instanceof ExactNumber)
  assert.equal(big.text, '12345678901234567890')
  const nested = mergeCommon(body.common_input, body.inputs.nested) as { c: number, n: unknown }
  assert.equal(nested.c, 1)
  assert.ok(nested.n instanceof ExactNumber)
  // and under a common_input that is an exact number, an object item is the item
  assert.deepEqual(mergeCommon(new ExactNumber('12345678901234567890'), { d: 1 }), { d: 1 })
})
