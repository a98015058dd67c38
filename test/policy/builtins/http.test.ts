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

test('http.send follows a redirect only to an allowed host: each hop is checked as the first URL is (OPA CheckRedirect)', needsOpa(), async (t) => {
  const { configureBuiltins } = await import('../../../src/policy/builtins/config.js')
  const { snapshotOf } = await import('./policy.js')
  const { httpServer } = await import('./cases/http-server.js')
  const port = await httpServer()
  t.after(() => { configureBuiltins({}) })
  configureBuiltins({ http: { allowedHosts: ['127.0.0.1'] } })
  const snap = await snapshotOf(t, 'package p\n\nr := http.send({"method": "GET", "url": input.url, "enable_redirect": true, "raise_error": false})\n', 'p/r', ['http_send'])
  const send = (url: string): Record<string, unknown> => snap.evaluate('p/r', { url }).result as Record<string, unknown>
  // a redirect to another host: not followed; an error that says why, not that host's answer
  const blocked = send(`http://127.0.0.1:${port}/to?u=${encodeURIComponent(`http://localhost:${port}/json`)}`)
  assert.equal(blocked.status_code, 0)
  assert.match(String((blocked.error as { message?: string } | undefined)?.message), /allowed hosts/)
  // a redirect within the allowed hosts is followed
  assert.deepEqual(send(`http://127.0.0.1:${port}/to?u=${encodeURIComponent(`http://127.0.0.1:${port}/json`)}`).body, { ok: true, n: 1, method: 'GET' })
})
