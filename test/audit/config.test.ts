/**
 * The audit configuration (config/schema.ts `audit`, `decision_logs`), `portcullis serve
 * --audit-dir/--audit-durability`, the per-process stream and where the durable log is opened.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { pino } from 'pino'
import { auditStream, openAuditTrail } from '../../src/audit/trail.js'
import { DEFAULT_ERASE } from '../../src/audit/mask.js'
import { serveCommand } from '../../src/cli/serve.js'
import { loadConfig } from '../../src/config/load.js'
import { createRuntime } from '../../src/server/runtime.js'
import { captureIo } from '../helpers/io.js'
import { bundlesCopy } from '../helpers/runtime.js'

test('defaults: audit off, batched, fail closed, credentials erased; OPA decision_logs defaults', () => {
  const c = loadConfig({ env: {} })
  assert.equal(c.audit.enabled, false)
  assert.equal(c.audit.durability, 'batched')
  assert.equal(c.audit.on_full, 'deny')
  assert.deepEqual(c.audit.erase, [...DEFAULT_ERASE])
  assert.ok(isAbsolute(c.audit.dir))
  // the shipping keys' defaults (reporting) are the shipper's: test/config/decision-logs.test.ts
  const { console: consoleOn, mask_decision: mask, drop_decision: drop } = c.decision_logs
  assert.deepEqual({ console: consoleOn, mask_decision: mask, drop_decision: drop }, { console: false, mask_decision: '/system/log/mask', drop_decision: '/system/log/drop' })
  assert.equal(c.decision_logs.service, undefined)
})

test('an erase entry that is not a mask pointer, or an unknown durability, is PORTCULLIS_CONFIG_INVALID', () => {
  assert.throws(() => loadConfig({ env: {}, overrides: { audit: { erase: ['/headers/authorization'] } } }), { code: 'PORTCULLIS_CONFIG_INVALID' })
  assert.throws(() => loadConfig({ env: {}, overrides: { audit: { durability: 'eventually' as never } } }), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test('the stream: w<slot> in a worker of a group, main otherwise', () => {
  assert.equal(auditStream({ PORTCULLIS_WORKER_SLOT: '3' }), 'w3')
  assert.equal(auditStream({}), 'main')
  assert.equal(auditStream({ PORTCULLIS_WORKER_SLOT: '../x' }), 'main')
})

test('no sink configured: no trail, no hook (decisions cost nothing extra)', async () => {
  assert.equal(await openAuditTrail(loadConfig({ env: {} })), undefined)
})

// The durable log (src/audit/log/) is built by another part of this work; until it is wired into
// openDurableSink(), turning audit on refuses to start rather than run without the log it asked for.
test('audit.enabled opens the durable log before anything listens: until it is built, the start fails closed with PORTCULLIS_CONFIG_INVALID', async () => {
  const config = loadConfig({ env: {}, overrides: { server: { addr: '127.0.0.1:0', workers: 1 }, bundles: { dir: bundlesCopy(), watch: false }, audit: { enabled: true } } })
  await assert.rejects(createRuntime(config, {}, { logger: pino({ level: 'silent' }) }), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test('serve --audit-dir turns audit on (and so, for now, refuses to start); --audit-durability is checked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-cli-'))
  try {
    const io = captureIo()
    assert.equal(await serveCommand.run(['--bundles', bundlesCopy(), '--addr', '127.0.0.1:0', '--workers', '1', '--audit-dir', dir, '--audit-durability', 'sync'], io), 2)
    assert.match(io.err(), /^PORTCULLIS_CONFIG_INVALID:/)
    const bad = captureIo()
    assert.equal(await serveCommand.run(['--audit-durability', 'eventually'], bad), 2)
    assert.match(bad.err(), /^usage error/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
