/**
 * The registry as the engine meets it: strict and non-strict builtin errors, deny-by-default
 * switches, non-deterministic builtins and cacheability, trace, opa.runtime, exact integers.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { needsOpa, findOpa, tempDir } from '../../helpers/opa.js'
import { BundleError, PolicyError } from '../../../src/errors.js'
import {
  builtinAvailability, configureBuiltins, createEvalContext, getBuiltin, NATIVE_JS_BUILTINS, registeredBuiltins,
} from '../../../src/policy/builtins/index.js'
import { compileWith, snapshotOf } from './policy.js'

const FAILING = 'package p\n\nr := time.parse_rfc3339_ns(input.t)\n'

test('a builtin error makes the expression undefined and is recorded', needsOpa(), async (t) => {
  const snap = await snapshotOf(t, FAILING, 'p/r')
  const ev = snap.evaluate('p/r', { t: 'not a time' })
  assert.equal(ev.defined, false)
  assert.equal(ev.builtinErrors.length, 1)
  assert.equal(ev.builtinErrors[0]?.builtin, 'time.parse_rfc3339_ns')
  const ok = snap.evaluate('p/r', { t: '2024-02-29T00:00:00Z' })
  assert.deepEqual([ok.defined, ok.result], [true, 1709164800000000000])
})

test('strict builtin errors fail the decision with eval_builtin_error, as opa eval --strict-builtin-errors does', needsOpa(), async (t) => {
  const snap = await snapshotOf(t, FAILING, 'p/r')
  assert.throws(() => snap.evaluate('p/r', { t: 'nope' }, { strictBuiltinErrors: true }), (err: unknown) =>
    err instanceof PolicyError && err.code === 'PORTCULLIS_POLICY_BUILTIN_ERROR' && (err.details as { opa_code?: string }).opa_code === 'eval_builtin_error')
  const dir = tempDir(t)
  writeFileSync(join(dir, 'p.rego'), FAILING)
  writeFileSync(join(dir, 'input.json'), '{"t":"nope"}')
  let out = ''
  try {
    execFileSync(findOpa() as string, ['eval', '--strict-builtin-errors', '--format', 'json', '-d', 'p.rego', '-i', 'input.json', 'data.p.r'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    out = String((err as { stdout?: string }).stdout)
  }
  assert.equal((JSON.parse(out) as { errors: Array<{ code: string }> }).errors[0]?.code, 'eval_builtin_error')
})

test('switch-guarded builtins are rejected at bundle load unless switched on', needsOpa(), async (t) => {
  for (const [policy, sw] of [
    ['package p\n\nr := rand.intn("k", 10)\n', 'rand_intn'],
    ['package p\n\nr := net.lookup_ip_addr("localhost")\n', 'net_lookup_ip_addr'],
  ] as const) {
    await assert.rejects(compileWith(t, policy, 'p/r', []), (err: unknown) => err instanceof BundleError && err.code === 'PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED')
    const c = await compileWith(t, policy, 'p/r', [sw])
    assert.equal(c.cacheable, false)
  }
  assert.deepEqual(builtinAvailability('http.send'), { available: false, reason: 'disabled', switch: 'http_send' })
})

test('rand.intn gives one value per key and bound within a decision', needsOpa(), async (t) => {
  const snap = await snapshotOf(t, 'package p\n\nr := [rand.intn("a", 1000), rand.intn("a", 1000), rand.intn("a", -5), rand.intn("a", 0)]\n', 'p/r', ['rand_intn'])
  const { result } = snap.evaluate('p/r', {}) as { result: number[] }
  assert.equal(result[0], result[1])
  assert.ok(result[0] as number >= 0 && (result[0] as number) < 1000)
  assert.ok(result[2] as number >= 0 && (result[2] as number) < 5)
  assert.equal(result[3], 0)
})

test('policies calling only deterministic host builtins stay cacheable; clock and randomness do not', needsOpa(), async (t) => {
  assert.equal((await compileWith(t, 'package p\n\nr := semver.compare(input.a, input.b)\n', 'p/r', [])).cacheable, true)
  assert.equal((await compileWith(t, 'package p\n\nr := time.now_ns()\n', 'p/r', [])).cacheable, false)
  assert.equal((await compileWith(t, 'package p\n\nr := uuid.rfc4122("x")\n', 'p/r', [])).cacheable, false)
})

test('time.now_ns is read once per decision from the injected clock, exactly beyond 2^53', needsOpa(), async (t) => {
  const snap = await snapshotOf(t, 'package p\n\nr := [time.now_ns(), time.now_ns(), time.add_date(time.now_ns(), 0, 0, 1)]\n', 'p/r')
  let calls = 0
  const ctx = createEvalContext({ clock: () => { calls++; return 1700000000123456789n }, exactNumbers: true })
  const ev = snap.evaluate('p/r', {}, { context: ctx })
  assert.equal(calls, 1)
  assert.deepEqual((ev.result as Array<{ text: string }>).map((x) => x.text), ['1700000000123456789', '1700000000123456789', '1700086400123456789'])
})

test('trace writes to the decision context; opa.runtime reports configuration only', needsOpa(), async (t) => {
  const snap = await snapshotOf(t, 'package p\n\nr := x if {\n\ttrace(sprintf("user=%v", [input.u]))\n\tx := opa.runtime()\n}\n', 'p/r')
  configureBuiltins({ runtime: { config: { labels: { app: 'portcullis' } } }, env: { REGION: 'eu' } })
  t.after(() => configureBuiltins({}))
  const ctx = createEvalContext()
  const ev = snap.evaluate('p/r', { u: 'alice' }, { context: ctx })
  assert.deepEqual(ctx.trace, ['user=alice'])
  assert.deepEqual(ev.result, { config: { labels: { app: 'portcullis' } }, env: { REGION: 'eu' } })
})

test('every builtin opa build -t wasm leaves to the host is registered or native, except the documented gaps', () => {
  const unsupported = new Set(['rego.parse_module'])
  for (const name of registeredBuiltins()) assert.ok(getBuiltin(name) !== undefined)
  for (const name of NATIVE_JS_BUILTINS) assert.equal(builtinAvailability(name).available, true, name)
  for (const name of unsupported) assert.equal(getBuiltin(name), undefined, name)
})
