import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { differentialTest } from './harness.js'
import { httpGroup } from './cases/http.js'
import { compileWith } from './policy.js'
import { needsOpa } from '../../helpers/opa.js'
import { stopHttpHelper } from '../../../src/policy/builtins/http.js'
import { BundleError } from '../../../src/errors.js'

after(async () => { await stopHttpHelper() })

differentialTest(httpGroup)

test('http.send is rejected at bundle load unless the http_send switch is on', needsOpa(), async (t) => {
  const policy = 'package p\n\nr := http.send({"method": "GET", "url": input.url}).status_code\n'
  await assert.rejects(compileWith(t, policy, 'p/r', []), (err: unknown) => err instanceof BundleError && err.code === 'PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED')
  const compiled = await compileWith(t, policy, 'p/r', ['http_send'])
  assert.equal(compiled.cacheable, false)
})
