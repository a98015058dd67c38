import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../src/bundles/load.js'
import { compileBundle } from '../../src/policy/engine.js'
import { PolicySnapshot } from '../../src/policy/snapshot.js'
import { createEvalContext } from '../../src/policy/builtins/index.js'
import { BundleManager } from '../../src/bundles/activate.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture, capabilitiesWithUnknownBuiltin } from '../helpers/bundles.js'

describe('policy engine over opa-wasm', needsOpa(), () => {
  let dir: string
  let basic: string
  let snapshot: PolicySnapshot

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-engine-'))
    basic = buildFixture('basic', dir)
    snapshot = new PolicySnapshot(1, [{ compiled: compileBundle(await loadBundle(basic)), activatedAt: new Date() }])
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('reports the host builtins a module calls and whether it is cacheable', async () => {
    const compiled = compileBundle(await loadBundle(basic))
    assert.ok(compiled.builtins.includes('time.now_ns'))
    // time.now_ns is non-deterministic: decisions of this bundle must not be cached
    assert.equal(compiled.cacheable, false)
    assert.deepEqual([...compiled.entrypointModule.keys()].sort(), ['basic/allow', 'basic/clock', 'basic/conflict', 'basic/echo', 'basic/info'])
  })

  test('evaluates entrypoints with input and bundle data', () => {
    assert.equal(snapshot.evaluate('basic/allow', { user: 'alice' }).result, true)
    assert.equal(snapshot.evaluate('basic/allow', { user: 'eve' }).result, false)
    assert.deepEqual(snapshot.evaluate('basic/info', { user: 'eve' }).result, { user: 'eve', level: 3, flag: true })
  })

  test('an undefined document is reported as undefined, not as a value', () => {
    const e = snapshot.evaluate('basic/conflict', {})
    assert.equal(e.defined, false)
    assert.equal(Object.hasOwn(e, 'result'), false)
  })

  test('falsy inputs reach the policy as themselves', () => {
    for (const input of [false, 0, '', null, [], {}]) {
      assert.deepEqual(snapshot.evaluate('basic/echo', input).result, input, JSON.stringify(input))
    }
    // no input at all: input is undefined in the policy
    assert.equal(snapshot.evaluate('basic/echo', undefined).defined, false)
  })

  test('a complete-rule conflict is PORTCULLIS_POLICY_CONFLICT (OPA eval_conflict_error)', () => {
    assert.throws(() => snapshot.evaluate('basic/conflict', { conflict: true }), (err: { code: string, details: { opa_code: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_POLICY_CONFLICT')
      assert.equal(err.details.opa_code, 'eval_conflict_error')
      return true
    })
    // the instance keeps serving after an error
    assert.equal(snapshot.evaluate('basic/allow', { user: 'bob' }).result, true)
  })

  test('time.now_ns is read once per decision and comes from the decision clock', () => {
    let reads = 0
    const ctx = createEvalContext({ clock: () => { reads++; return 1_700_000_000_123_456_789n } })
    const e = snapshot.evaluate('basic/clock', {}, { context: ctx })
    assert.deepEqual(e.result, { same: true, t: 1_700_000_000_123_456_789 })
    assert.equal(reads, 1)
  })

  test('time.now_ns reads the real clock by default', () => {
    const before = Date.now() * 1e6
    const t = (snapshot.evaluate('basic/clock', {}).result as { t: number }).t
    assert.ok(t >= before - 1e9 && t <= Date.now() * 1e6 + 1e9, `${t} near ${before}`)
  })

  test('memory exhaustion aborts the evaluation with a code and the next evaluation still works', async () => {
    const small = new PolicySnapshot(1, [{ compiled: compileBundle(await loadBundle(basic), { memory: { initialPages: 5, maxPages: 16 } }), activatedAt: new Date() }])
    assert.throws(() => small.evaluate('basic/echo', { big: 'x'.repeat(4 * 1024 * 1024) }), { code: 'PORTCULLIS_POLICY_EVAL_FAILED' })
    assert.equal(small.evaluate('basic/allow', { user: 'alice' }).result, true)
  })

  test('a bundle calling a builtin nobody implements is rejected at load, naming the builtin', async () => {
    const caps = capabilitiesWithUnknownBuiltin(dir)
    const weird = buildFixture('unknown-builtin', dir, { extraArgs: ['--capabilities', caps] })
    const loaded = await loadBundle(weird)
    assert.throws(() => compileBundle(loaded), (err: { code: string, details: { builtin: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED')
      assert.equal(err.details.builtin, 'portcullis_test.never_implemented')
      return true
    })
    const manager = new BundleManager()
    assert.equal(await manager.load(weird), false)
    assert.equal(manager.status()[0]?.last_error?.code, 'PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED')
    assert.equal(manager.snapshot.bundles.size, 0)
  })
})
