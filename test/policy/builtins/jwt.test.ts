import assert from 'node:assert/strict'
import { test } from 'node:test'
import { differentialTest } from './harness.js'
import { jwtGroup } from './cases/jwt.js'
import { BuiltinError, getBuiltin, RawJson, type EvalContext } from '../../../src/policy/builtins/index.js'

differentialTest(jwtGroup)

const ctx: EvalContext = { nowNs: () => 0n, strictBuiltinErrors: true, builtinErrors: [], trace: [] }
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
const token = (claims: Record<string, unknown>): string => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.${Buffer.from('sig').toString('base64url')}`

test('io.jwt.decode: memoized results are the results of decoding, through eviction', () => {
  const decode = getBuiltin('io.jwt.decode')
  assert.ok(decode !== undefined)
  const run = (t: unknown): string => {
    const out = decode.impl(ctx, [t])
    assert.ok(out instanceof RawJson)
    return out.text
  }
  const first = token({ sub: 'u0', n: 12345678901234567890 })
  const firstText = run(first)
  assert.deepEqual(JSON.parse(firstText)[1], { sub: 'u0', n: 12345678901234567000 })
  assert.equal(run(first), firstText)
  // more distinct tokens than the memo holds: each still decodes to its own claims
  for (let i = 1; i < 700; i++) assert.equal(JSON.parse(run(token({ sub: `u${i}` })))[1].sub, `u${i}`)
  assert.equal(run(first), firstText)
  // errors are raised on every call, never remembered as a value
  for (let i = 0; i < 2; i++) assert.throws(() => run('not.a.jwt!'), BuiltinError)
  assert.throws(() => run(1), BuiltinError)
})
