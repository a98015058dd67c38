import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import { snapshotOf } from './policy.js'
import { differentialTest } from './harness.js'
import { randGroup } from './cases/rand.js'

differentialTest(randGroup)

// node:crypto's randomInt refuses ranges of 2^48 and more, so rand.intn("k", 2^50) was a
// builtin error (undefined) where OPA's rand.Intn answers for any int64 bound.
test('rand.intn answers for bounds beyond 2^48, below the bound, and the same number for the same call within a decision', needsOpa(), async (t) => {
  const rego = 'package p\n\nr := [rand.intn("k", input.n), rand.intn("k", input.n), rand.intn("k", 0 - input.n)]\n'
  const snap = await snapshotOf(t, rego, 'p/r', ['rand_intn'])
  for (const n of [2 ** 50, Number.MAX_SAFE_INTEGER]) {
    const ev = snap.evaluate('p/r', { n }, { strictBuiltinErrors: true })
    assert.equal(ev.defined, true)
    const [a, b, c] = ev.result as number[]
    assert.ok(Number.isInteger(a) && (a as number) >= 0 && (a as number) < n, String(a))
    assert.equal(b, a)
    assert.equal(c, a)
  }
})
