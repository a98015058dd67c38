import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import { differentialTest } from './harness.js'
import { regexGroup } from './cases/regex.js'
import type { TableResult } from './differential.js'
import { goRegexp, regexCacheSize, REGEX_CACHE_MAX_ENTRIES } from '../../../src/policy/builtins/regex.js'
import { BuiltinError } from '../../../src/policy/builtins/types.js'
import { isStrictBuiltinError, opaStrictErrorCode, snapshotOf } from './policy.js'

differentialTest(regexGroup)

// Before RE2 (re2js), regex.replace(s, "^(a+)+$", "x") with 34 a's and a "!" ran for minutes in a
// backtracking JavaScript RegExp and froze the worker; opa eval answers in milliseconds. A frozen
// evaluation cannot be interrupted in-process, so the group runs in a child killed after a generous
// bound (opa eval and opa build run inside it too): the point is that it ends, with opa's answers.
test('ReDoS: catastrophic-backtracking patterns answer in every regex builtin, as opa eval does', needsOpa(), () => {
  const script = fileURLToPath(new URL('./run-group.ts', import.meta.url))
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, 'regex-redos'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 26 })
  assert.equal(r.signal, null, 'the evaluation did not finish within the bound')
  assert.equal(r.status, 0, r.stderr)
  const results = JSON.parse(r.stdout) as TableResult[]
  assert.deepEqual(results.map((t) => t.builtin).sort(),
    ['regex.find_all_string_submatch_n', 'regex.find_n', 'regex.match', 'regex.replace', 'regex.split', 'regex.template_match'])
  for (const t of results) assert.deepEqual(t.mismatches.map((m) => m.index), [], `${t.builtin}: ${t.agreeing}/${t.cases} agree`)
})

test('compiled patterns are cached within the bound, and an invalid pattern is a builtin error each time', () => {
  for (let i = 0; i < REGEX_CACHE_MAX_ENTRIES + 200; i++) goRegexp('regex.match', `x${i}`)
  assert.ok(regexCacheSize() <= REGEX_CACHE_MAX_ENTRIES)
  assert.equal(goRegexp('regex.match', 'a+'), goRegexp('regex.match', 'a+'))
  for (let i = 0; i < 2; i++) assert.throws(() => goRegexp('regex.match', '(a)\\1'), BuiltinError)
})

// gintersect rejects these patterns and OPA raises the rejection as a builtin error; the
// tokenizer once read a stray `]` (and `[a-]`, `[-a]`) as characters and answered false, so
// strict mode passed where opa fails the decision.
test('regex.globs_match: an invalid glob is a builtin error that fails a strict decision, as in opa eval --strict-builtin-errors', needsOpa(), async (t) => {
  const rego = 'package p\n\nr := regex.globs_match(input.a, input.b)\n'
  const snap = await snapshotOf(t, rego, 'p/r')
  for (const [a, b] of [['pqrs]', '[a-b]+'], ['[a-]', 'a'], ['[-a]', 'a'], ['a', '[a--b]'], ['*a', 'a'], ['[ab', 'a'], ['a\\', 'a']]) {
    assert.equal(opaStrictErrorCode(t, rego, 'p/r', { a, b }), 'eval_builtin_error', `opa: ${a} ${b}`)
    assert.throws(() => snap.evaluate('p/r', { a, b }, { strictBuiltinErrors: true }), isStrictBuiltinError, `${a} ${b}`)
    assert.equal(snap.evaluate('p/r', { a, b }).defined, false)
  }
  assert.equal(opaStrictErrorCode(t, rego, 'p/r', { a: '[a-c]+', b: 'b' }), undefined)
  assert.deepEqual(snap.evaluate('p/r', { a: '[a-c]+', b: 'b' }, { strictBuiltinErrors: true }).result, true)
})
