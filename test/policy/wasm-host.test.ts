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

describe('the value bridge: sets, numbers (issue 13)', needsOpa(), () => {
  let dir: string
  let snapshot: PolicySnapshot
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-bridge-'))
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(dir, 'policy.rego'), `package bridge

subset_sets := object.subset({1, 2, 3, 4}, {1, 4})
subset_set_not := object.subset({1, 2}, {3})
subset_array_set := object.subset([1, 2, 3], {3, 1})
subset_nested := object.subset({"a": {"b", "c"}}, {"a": {"c"}})
matches := net.cidr_contains_matches({"1.1.1.0/24", "1.1.2.0/24"}, {"1.1.1.1", "1.1.2.1"})
patched := json.patch({"foo": {"a", "b", "c"}}, [{"op": "remove", "path": "foo/b"}])
patched_is_set := patched == {"foo": {"a", "c"}}
union_keeps_set := object.union({"s": {1, 2}}, {"t": 1}).s == {1, 2}
half := sprintf("%v", [.5])
steps := numbers.range_step(0, 1, .5)
big := time.parse_ns("2006-01-02T15:04:05.999999999Z07:00", "2262-04-11T23:47:16.854775807Z")
floats := [100.0, 1e3, -0.0, 2.5, 3, 3.0 + 0]
`)
    runOpa(['build', '-t', 'wasm', '-e', 'bridge', '-o', 'bundle.tar.gz', 'policy.rego'], { cwd: dir })
    const bundle = await loadBundle(join(dir, 'bundle.tar.gz'), { name: 'bridge' })
    snapshot = new PolicySnapshot(1, [{ compiled: compileBundle(bundle), activatedAt: new Date() }])
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('sets reach host builtins as sets and come back as sets', () => {
    const r = snapshot.evaluate('bridge', undefined).result as Record<string, unknown>
    assert.equal(r.subset_sets, true)
    assert.equal(r.subset_set_not, false)
    assert.equal(r.subset_array_set, true)
    assert.equal(r.subset_nested, true)
    // keyed by the set elements, not by positions
    assert.deepEqual(r.matches, [['1.1.1.0/24', '1.1.1.1'], ['1.1.2.0/24', '1.1.2.1']])
    assert.deepEqual(r.patched, { foo: ['a', 'c'] })
    assert.equal(r.patched_is_set, true)
    assert.equal(r.union_keeps_set, true)
  })

  test('numbers written .5 reach host builtins (no abort)', () => {
    const ev = snapshot.evaluate('bridge', undefined)
    const r = ev.result as Record<string, unknown>
    assert.equal(r.half, '0.5')
    // OPA: range_step takes integers only: a builtin error (undefined), not an aborted decision
    assert.equal(r.steps, undefined)
    assert.deepEqual(ev.builtinErrors.map((e) => e.builtin), ['numbers.range_step'])
  })

  test('integers beyond 2^53 are exact in resultJson; result holds the nearest doubles', () => {
    const ev = snapshot.evaluate('bridge', undefined)
    assert.ok(ev.resultJson !== undefined)
    assert.match(ev.resultJson, /"big":9223372036854775807[,}]/)
    assert.equal((ev.result as Record<string, unknown>).big, 9223372036854775807)
    // a result without such numbers has no second text
    assert.equal(snapshot.evaluate('bridge/subset_sets', undefined).resultJson, undefined)
  })

  test('integral values written as floats (policy or data literals) are answered as written, as OPA answers them; computed ones as numbers', () => {
    const ev = snapshot.evaluate('bridge/floats', undefined)
    assert.equal(ev.resultJson, '[100.0,1e3,-0.0,2.5,3,3]')
    assert.deepEqual(ev.result, [100, 1000, -0, 2.5, 3, 3])
  })
})

test('readArgument: JSON natively, Rego values (sets, .5) by the Rego parser', async () => {
  const { readArgument } = await import('../../src/policy/wasm-host.js')
  const s = readArgument('{2, 1}')
  assert.ok(s instanceof RegoSet)
  assert.deepEqual([...(s as unknown[])], [1, 2])
  assert.deepEqual(readArgument('[.5, -.25]'), [0.5, -0.25])
  assert.ok(!(readArgument('[1, 2]') instanceof RegoSet))
  const big = readArgument('[9223372036854775807]') as unknown[]
  assert.ok(big[0] instanceof ExactNumber)
})

test('parseRegoValue with exact numbers keeps a number beyond a double as its text, never Infinity', () => {
  const v = parseRegoValue('[{"result": [1e400, -2E+309, 1.5]}]', true) as Array<{ result: unknown[] }>
  const [big, negative, plain] = (v[0] as { result: unknown[] }).result
  assert.ok(big instanceof ExactNumber && negative instanceof ExactNumber)
  assert.deepEqual([big.text, negative.text, plain], ['1e400', '-2E+309', 1.5])
})

test('object keys come out in OPA\'s order (UTF-8 bytes), not UTF-16 code units: U+E000 before an astral character', () => {
  const v = parseRegoValue('[{"result": {"\u{1F600}": 1, "\uE000": 2, "b": 3}}]') as Array<{ result: Record<string, number> }>
  assert.deepEqual(Object.keys((v[0] as { result: Record<string, number> }).result), ['b', '\uE000', '\u{1F600}'])
})
