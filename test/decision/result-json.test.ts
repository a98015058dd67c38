/**
 * src/decision/result-json.ts: exact result texts replace their placeholders, and a string in the
 * body that looks like a placeholder (a result echoing caller input) is never replaced.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ResultSlots } from '../../src/decision/result-json.js'

test('an exact result replaces its placeholder; a look-alike string in the same body stays a string', () => {
  const slots = new ResultSlots()
  const exact = slots.valueOf({ result: 1.2345678901234568e29, resultJson: '123456789012345678901234567890' })
  const plain = slots.valueOf({ result: 'x' })
  const text = slots.stringify({ exact, plain, echo: '\u0000portcullis-result-0', nested: [exact] })
  assert.deepEqual(JSON.parse(text.replaceAll('123456789012345678901234567890', '"EXACT"')), { exact: 'EXACT', plain: 'x', echo: '\u0000portcullis-result-0', nested: ['EXACT'] })
  assert.equal(new ResultSlots().stringify({ a: 1 }), '{"a":1}')
})
