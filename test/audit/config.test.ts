/**
 * The audit configuration (config/schema.ts `audit`, `decision_logs`), `portcullis serve
 * --audit-dir/--audit-durability`, the per-process stream and where the durable log is opened.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { pino } from 'pino'
import { auditStream, openAuditTrail } from '../../src/audit/trail.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { verifyAuditDir } from '../../src/audit/log/verify.js'
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

test('checkpoint.previous_public_key_files (a key rotation): a list of files, resolved against the config file; a lone string is refused', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'audit-config-'))
  t.after(() => rmSync(d, { recursive: true, force: true }))
  const file = join(d, 'portcullis.yaml')
  writeFileSync(file, 'audit:\n  checkpoint:\n    key_file: keys/new.pem\n    previous_public_key_files: [keys/old.pub.pem, /etc/older.pub.pem]\n')
  const c = loadConfig({ file, env: {} })
  assert.deepEqual(c.audit.checkpoint.previous_public_key_files, [join(d, 'keys', 'old.pub.pem'), '/etc/older.pub.pem'])
  writeFileSync(file, 'audit:\n  checkpoint:\n    previous_public_key_files: keys/old.pub.pem\n')
  assert.throws(() => loadConfig({ file, env: {} }), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test('the stream: w<slot> in a worker of a group, main otherwise', () => {
  assert.equal(auditStream({ PORTCULLIS_WORKER_SLOT: '3' }), 'w3')
  assert.equal(auditStream({}), 'main')
  assert.equal(auditStream({ PORTCULLIS_WORKER_SLOT: '../x' }), 'main')
})

test('no sink configured: no trail, no hook (decisions cost nothing extra)', async () => {
  assert.equal(await openAuditTrail(loadConfig({ env: {} })), undefined)
})

test('audit.enabled opens the durable log before anything listens, mapped from every audit key; the log a running server writes verifies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-run-'))
  try {
    const config = loadConfig({ env: {}, overrides: { server: { addr: '127.0.0.1:0', workers: 1 }, bundles: { dir: bundlesCopy(), watch: false }, audit: { enabled: true, dir, durability: 'sync', checkpoint: { every_events: 2, every_seconds: 60, origin: 'example.org/audit/test' }, segment: { max_bytes: 4096, max_age_seconds: 3600 } } } })
    const runtime = await createRuntime(config, {}, { logger: pino({ level: 'silent' }) })
    try {
      for (let i = 0; i < 6; i++) {
        const r = await runtime.app.inject({ method: 'POST', url: '/v1/data/authz/allow', payload: JSON.stringify({ input: { i, pad: 'x'.repeat(1000) } }), headers: { 'content-type': 'application/json' } })
        assert.equal(r.statusCode, 200)
      }
    } finally { await runtime.stop() }
    const report = await verifyAuditDir(dir)
    assert.equal(report.ok, true, JSON.stringify(report))
    const main = report.streams.find((x) => x.stream === 'main')
    assert.equal(main?.events, 6)
    // segment.max_bytes and checkpoint.origin reached the log
    assert.ok((main?.segments ?? 0) > 1)
    const reader = await AuditDirReader.open(dir)
    assert.equal((await reader.stream('main').latestCheckpoint())?.origin, 'example.org/audit/test/main')
    reader.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a durable log that cannot be opened fails the start closed (runtime and serve --audit-dir); --audit-durability is checked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-cli-'))
  try {
    const notADir = join(dir, 'file')
    writeFileSync(notADir, 'not a directory')
    const config = loadConfig({ env: {}, overrides: { server: { addr: '127.0.0.1:0', workers: 1 }, bundles: { dir: bundlesCopy(), watch: false }, audit: { enabled: true, dir: notADir } } })
    await assert.rejects(createRuntime(config, {}, { logger: pino({ level: 'silent' }) }), (err: { code?: string }) => /^PORTCULLIS_AUDIT_/.test(err.code ?? ''))
    const io = captureIo()
    assert.equal(await serveCommand.run(['--bundles', bundlesCopy(), '--addr', '127.0.0.1:0', '--workers', '1', '--audit-dir', notADir, '--audit-durability', 'sync'], io), 2)
    assert.match(io.err(), /^PORTCULLIS_AUDIT_/)
    const bad = captureIo()
    assert.equal(await serveCommand.run(['--audit-durability', 'eventually'], bad), 2)
    assert.match(bad.err(), /^usage error/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
