/**
 * The console's configuration: on by default only when the Data API listens on loopback, and
 * when off its routes (API and UI) do not exist.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../src/config/load.js'
import { consoleEnabled } from '../../src/server/runtime-options.js'
import { startRuntime } from '../helpers/runtime.js'

test('console.enabled defaults to on only for a loopback listener; an explicit value wins', () => {
  const cases: Array<[string, boolean | undefined, boolean]> = [
    ['127.0.0.1:8181', undefined, true],
    ['localhost:8181', undefined, true],
    ['[::1]:8181', undefined, true],
    [':8181', undefined, true], // an empty host listens on 127.0.0.1
    ['[0:0:0:0:0:0:0:1]:8181', undefined, true],
    ['0.0.0.0:8181', undefined, false],
    ['10.1.2.3:8181', undefined, false],
    ['[::]:8181', undefined, false],
    ['0.0.0.0:8181', true, true],
    ['127.0.0.1:8181', false, false],
  ]
  for (const [addr, enabled, want] of cases) {
    const c = loadConfig({ env: {}, overrides: { server: { addr }, ...(enabled !== undefined ? { console: { enabled } } : {}) } as never })
    assert.equal(consoleEnabled(c), want, `${addr} ${String(enabled)}`)
    assert.equal(c.console.grants_path, 'system/console/grants')
  }
})

test('with console.enabled false the console routes and the UI are not served', async () => {
  const { url, close } = await startRuntime({ console: { enabled: false } } as never)
  try {
    for (const p of ['/v1/console/decisions', '/v1/console/integrity', '/ui/']) {
      const r = await fetch(`${url}${p}`)
      assert.equal(r.status, 404, p)
      assert.equal((await r.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
    }
    // on by default for this loopback listener: the same server with the console answers
  } finally { await close() }
  const on = await startRuntime({})
  try {
    const r = await fetch(`${on.url}/v1/console/integrity`)
    assert.equal(r.status, 503)
    assert.equal((await r.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
  } finally { await on.close() }
})
