import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import { isStrictBuiltinError, opaStrictErrorCode, snapshotOf } from './policy.js'
import { differentialTest } from './harness.js'
import { graphqlGroup } from './cases/graphql.js'

differentialTest(graphqlGroup)

// OPA's fuzzer case 02: a malformed query must never parse (a parsed AST could let a policy
// that inspects it allow the request). Strict mode fails the decision, as opa does.
test('graphql.parse_query: malformed queries fail a strict decision, as in opa eval --strict-builtin-errors', needsOpa(), async (t) => {
  const rego = 'package p\n\nr := graphql.parse_query(input.q)\n'
  const snap = await snapshotOf(t, rego, 'p/r')
  for (const q of ['{...{__typename{...{}}}}', '{__typename{...}}', '{...{}}', '{ a { } }']) {
    assert.equal(opaStrictErrorCode(t, rego, 'p/r', { q }), 'eval_builtin_error', q)
    assert.throws(() => snap.evaluate('p/r', { q }, { strictBuiltinErrors: true }), isStrictBuiltinError, q)
    assert.equal(snap.evaluate('p/r', { q }).defined, false, q)
  }
})
