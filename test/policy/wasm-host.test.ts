import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../src/bundles/load.js'
import { compileBundle } from '../../src/policy/engine.js'
import { PolicySnapshot } from '../../src/policy/snapshot.js'
import { ExactNumber } from '../../src/policy/builtins/exact-json.js'
import { parseRegoValue, regoValueText } from '../../src/policy/wasm-host.js'
import { RegoSet } from '../../src/policy/builtins/types.js'
import { needsOpa, runOpa } from '../helpers/opa.js'
import { buildFixture, copyFixture } from '../helpers/bundles.js'

test('parseRegoValue reads sets, set(), nested values and non-string keys; sets come out sorted', () => {
  assert.deepEqual(parseRegoValue('[{"result": {"b", "a", 3, null, ["x"]}}]'), [{ result: [null, 3, 'a', 'b', ['x']] }])
  assert.deepEqual(parseRegoValue('{"y": set(), "x": {2, 1}}'), { x: [1, 2], y: [] })
  assert.deepEqual(parseRegoValue('{1: "a", "k": {}}'), { 1: 'a', k: {} })
  assert.deepEqual(parseRegoValue('[true, false, null, -1.5e3, "\\"q\\""]'), [true, false, null, -1500, '"q"'])
  const big = parseRegoValue('[123456789012345678901234567890]', true) as unknown[]
  assert.ok(big[0] instanceof ExactNumber)
  assert.equal((big[0] as ExactNumber).text, '123456789012345678901234567890')
  assert.throws(() => parseRegoValue('{"a" 1}'))
})

test('regoValueText writes sets in Rego syntax', () => {
  assert.equal(regoValueText(RegoSet.from(['a', 'b'])), '{"a", "b"}')
  assert.equal(regoValueText(new RegoSet()), 'set()')
  assert.equal(regoValueText({ k: RegoSet.from([1]), l: [1] }), '{"k": {1}, "l": [1]}')
})

describe('sets across the wasm boundary, compared with opa eval', needsOpa(), () => {
  let dir: string
  let snapshot: PolicySnapshot
  const oracle = (rule: string): unknown => {
    const src = copyFixture('sets', dir)
    const out = JSON.parse(runOpa(['eval', '--format', 'json', '-b', src, `data.sets.${rule}`, '--stdin-input'], { input: '{"who": "test"}' })) as { result: Array<{ expressions: Array<{ value: unknown }> }> }
    return out.result[0]?.expressions[0]?.value
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sets-'))
    snapshot = new PolicySnapshot(1, [{ compiled: compileBundle(await loadBundle(buildFixture('sets', dir))), activatedAt: new Date() }])
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  for (const rule of ['names', 'nested', 'merged_is_set', 'merged']) {
    test(`${rule} is what opa eval says, in the same order`, () => {
      assert.deepEqual(snapshot.evaluate(`sets/${rule}`, { who: 'test' }).result, oracle(rule))
    })
  }

  test('a host builtin\'s set result is a real set inside the policy', () => {
    assert.equal(snapshot.evaluate('sets/merged_is_set', {}).result, true)
  })
})
