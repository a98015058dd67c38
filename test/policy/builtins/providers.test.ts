import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import { isStrictBuiltinError, opaStrictErrorCode, snapshotOf } from './policy.js'
import { differentialTest } from './harness.js'
import { providersGroup } from './cases/providers.js'

differentialTest(providersGroup)

// OPA fails a strict decision on a signing time written -1e9 (ast.Number.Int64 parses the
// text); Portcullis read the value, -1000000000, and signed.
test('providers.aws.sign_req: a timestamp that is not an integer literal fails a strict decision, as in opa eval --strict-builtin-errors', needsOpa(), async (t) => {
  const rego = 'package p\n\ncfg := {"aws_access_key": "A", "aws_secret_access_key": "S", "aws_service": "s3", "aws_region": "us-east-1"}\n\nr := providers.aws.sign_req({"method": "get", "url": "http://example.com"}, cfg, -1e9)\n'
  assert.equal(opaStrictErrorCode(t, rego, 'p/r'), 'eval_type_error')
  const snap = await snapshotOf(t, rego, 'p/r')
  assert.throws(() => snap.evaluate('p/r', undefined, { strictBuiltinErrors: true }), isStrictBuiltinError)
  assert.equal(snap.evaluate('p/r', undefined).defined, false)
})
