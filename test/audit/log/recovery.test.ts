/**
 * Crash recovery on real files with a real process: a sync-mode writer is killed with SIGKILL
 * under load; every acknowledged event is in the log after reopening, and torn or garbled tail
 * records are truncated with a logged note, after which the log continues and verifies.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { Metrics } from '../../../src/metrics/index.js'
import { storedHashIndex } from '../../../src/audit/log/tree.js'
import type { PortcullisError } from '../../../src/errors.js'
import { event, logOptions, metricValue, recordingLogger, tempAuditDir } from '../../helpers/audit.js'

const child = join(import.meta.dirname, '..', '..', 'fixtures', 'audit', 'writer-child.ts')

function lastSegment (dir: string): string {
  const d = join(dir, 'main', 'segments')
  return join(d, readdirSync(d).sort().at(-1) as string)
}

async function killUnderLoad (dir: string, acks: number, checkpointEvery = 50): Promise<Set<string>> {
  const p = spawn(process.execPath, ['--import', 'tsx', child, dir, 'main', String(checkpointEvery)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const acked = new Set<string>()
  let buf = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('the writer did not acknowledge enough events in 60 s')) }, 60_000)
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) if (l.startsWith('ack ')) acked.add(l.slice(4))
      if (acked.size >= acks && p.exitCode === null) {
        p.kill('SIGKILL')
        clearTimeout(timer)
      }
    })
    p.once('exit', (code, signal) => { clearTimeout(timer); signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${String(code)}`)) })
  })
  // acks still buffered in the pipe when it died were acknowledged too
  for (const l of buf.split('\n')) if (l.startsWith('ack ')) acked.add(l.slice(4))
  return acked
}

test('kill -9 under sync load: every acknowledged event survives; torn and garbled tails are truncated with a note', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const acked = await killUnderLoad(dir, 300)
  assert.ok(acked.size >= 300)

  // a torn record: bytes without a trailing newline, as a crash mid-write leaves them
  const seg = lastSegment(dir)
  const before = statSync(seg).size
  const torn = '{"seq":999999,"decision_id":"torn","pa'
  appendFileSync(seg, torn)
  const logger = recordingLogger()
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { logger, metrics }))
  const notes = logger.lines.filter((l) => l.level === 'warn' && l.obj.bytes !== undefined && l.obj.seq !== undefined)
  assert.equal(notes.length, 1)
  assert.equal(notes[0]?.obj.bytes, torn.length)
  assert.equal(statSync(seg).size, before)
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.obj.unclean === true), 'the dead writer\'s stop is recognised as unclean')
  assert.equal(await metricValue(metrics, 'auditRecoveryTruncations'), 1)
  const size = log.size
  const text = readdirSync(join(dir, 'main', 'segments')).sort().map((n) => readFileSync(join(dir, 'main', 'segments', n), 'utf8')).join('')
  for (const id of acked) assert.ok(text.includes(`"decision_id":"${id}"`), `acknowledged ${id} is in the log`)
  // it continues from the last whole event
  await log.append(event(1))
  assert.equal(log.size, size + 1)
  await log.close()
  assert.equal((await verifyAuditDir(dir)).ok, true)

  // a garbled last line (whole line, bad JSON) and one with a seq out of sequence: both truncated
  appendFileSync(lastSegment(dir), `{"seq":${size + 1},"decision_id":"garbled\n{"seq":3,"decision_id":"old"}\n`)
  const logger2 = recordingLogger()
  const again = await AuditLog.open(logOptions(dir, { logger: logger2 }))
  assert.equal(again.size, size + 1)
  assert.equal(logger2.lines.filter((l) => l.level === 'warn' && l.obj.bytes !== undefined && l.obj.seq !== undefined).length, 2)
  await again.append(event(2))
  await again.close()
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  assert.equal(report.streams[0]?.events, size + 2)
})

test('after an unclean stop, hashes after the last checkpoint are recomputed: missing or zeroed ones are written, a changed one refuses the open', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await killUnderLoad(dir, 120, 1_000_000) // no checkpoint before the kill
  const hashes = join(dir, 'main', 'hashes')
  const { writeFileSync } = await import('node:fs')
  const original = readFileSync(hashes)
  // a changed stored hash past the last checkpoint: evidence, not a crash artifact — refused, nothing rewritten.
  // The first one (record 0's leaf: 120 events were acknowledged): the file's last hashes may
  // belong to a group whose records the kill cut, which recovery drops rather than compares.
  const changed = Buffer.from(original)
  changed[0] = (changed[0] as number) ^ 0xff
  writeFileSync(hashes, changed)
  await assert.rejects(AuditLog.open(logOptions(dir)), (err: PortcullisError) => err.code === 'PORTCULLIS_AUDIT_INVALID' && typeof err.details.storedHash === 'number')
  assert.deepEqual(readFileSync(hashes), changed)
  // zeroed (space a crash allocated but never wrote) and cut-off hashes are recomputed
  const zeroed = Buffer.from(original.subarray(0, original.length - 64 * 5))
  zeroed.fill(0, zeroed.length - 64 * 3)
  writeFileSync(hashes, zeroed)
  const log = await AuditLog.open(logOptions(dir))
  await log.close()
  const now = readFileSync(hashes)
  assert.ok(now.length >= zeroed.length, 'the cut-off hashes are written again')
  // Compared where both have them: the kill may cut the group's hashes write (records without
  // their stored hashes, recomputed now) or its segment write (stored hashes of records that
  // never landed, dropped now); slots the crash left zeroed hold nothing to compare.
  const common = Math.min(now.length, original.length)
  for (let at = 0; at < common; at += 32) {
    const stored = original.subarray(at, at + 32)
    if (stored.every((b) => b === 0)) continue
    assert.ok(now.subarray(at, at + 32).equals(stored), `the recomputed hash at byte ${at} is the one the writer stored`)
  }
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
})

test('a hashes file that no longer matches the last checkpoint refuses to open (PORTCULLIS_AUDIT_INVALID)', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { durability: 'async' }))
  for (let i = 0; i < 20; i++) log.append(event(i))
  await log.close()
  const hashes = join(dir, 'main', 'hashes')
  const h = readFileSync(hashes)
  // the open checks the last checkpoint's root from the O(log n) hashes on the tree's right edge (verify checks them all)
  const at = storedHashIndex(4, 0) * 32
  h[at] = (h[at] as number) ^ 1
  const { writeFileSync } = await import('node:fs')
  writeFileSync(hashes, h)
  await assert.rejects(AuditLog.open(logOptions(dir)), { code: 'PORTCULLIS_AUDIT_INVALID' })
})
