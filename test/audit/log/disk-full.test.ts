/**
 * Disk full on a real filesystem: a 1 MiB tmpfs this test mounts (the tests run as root, here and
 * in CI). With onFull 'deny' appends reject with PORTCULLIS_AUDIT_UNAVAILABLE and nothing
 * acknowledged is lost; with 'shed' the drops are counted and a gap record lands once space is
 * back; memory stays within the bound, the process does not crash, and the log verifies.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, unlinkSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, logOptions, metricValue, recordingLogger } from '../../helpers/audit.js'

function mountSmallFs (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir])
  t.after(() => {
    execFileSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** Fills the filesystem with one file until ENOSPC; returns its path. */
function fill (dir: string): string {
  const path = join(dir, 'filler')
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(4096, 1)
  try {
    for (let i = 0; i < 10_000; i++) writeSync(fd, chunk)
    throw new Error('the filesystem did not fill up')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally { closeSync(fd) }
  return path
}

function records (dir: string, stream: string): Array<Record<string, unknown>> {
  const d = join(dir, stream, 'segments')
  return readdirSync(d).sort().flatMap((n) => readFileSync(join(d, n), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>))
}

async function until (cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.ok(cond(), what)
}

test('disk full, deny (sync): appends reject with PORTCULLIS_AUDIT_UNAVAILABLE, nothing acknowledged is lost, writing resumes when space is freed', async (t) => {
  const dir = mountSmallFs(t)
  const metrics = new Metrics({ defaultMetrics: false })
  const logger = recordingLogger()
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', onFull: 'deny', maxPendingBytes: 64 * 1024, metrics, logger }))
  const filler = fill(dir)
  const acked: string[] = []
  let rejected = 0
  await Promise.all(Array.from({ length: 400 }, async (_, i) => {
    try {
      await log.append(event(i, { pad: 'z'.repeat(200) }))
      acked.push(`d-${i}`)
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
      rejected++
    }
  }))
  assert.ok(rejected > 0, 'the full disk refused appends')
  assert.ok(await metricValue(metrics, 'auditWriteErrors', '', { code: 'ENOSPC' }) > 0)
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.obj.errno === 'ENOSPC'))
  unlinkSync(filler)
  await log.append(event(1000))
  acked.push('d-1000')
  await log.close()
  const ids = new Set(records(dir, 'main').map((r) => r.decision_id))
  for (const id of acked) assert.ok(ids.has(id), `acknowledged ${id} is in the log`)
  assert.equal(ids.size, acked.length, 'only acknowledged events were kept')
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
})

test('disk full, shed (async): drops counted, accepted events retried within the bound, a gap record once space is back', async (t) => {
  const dir = mountSmallFs(t)
  const metrics = new Metrics({ defaultMetrics: false })
  const maxPendingBytes = 16 * 1024
  const log = await AuditLog.open(logOptions(dir, { durability: 'async', onFull: 'shed', maxPendingBytes, metrics, logger: recordingLogger() }))
  const filler = fill(dir)
  let maxPending = 0
  for (let i = 0; i < 400; i++) {
    assert.equal(log.append(event(i, { pad: 'z'.repeat(200) })), undefined)
    if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    maxPending = Math.max(maxPending, await metricValue(metrics, 'auditPendingBytes'))
  }
  assert.ok(maxPending <= maxPendingBytes, `pending ${maxPending} within ${maxPendingBytes}`)
  const shed = await metricValue(metrics, 'auditShed')
  assert.ok(shed > 0)
  const written = await metricValue(metrics, 'auditEventsWritten')
  unlinkSync(filler)
  // the retry writes the accepted events and the gap record
  await until(() => records(dir, 'main').some((r) => r.type === 'gap'), 'a gap record was written')
  await log.close()
  const all = records(dir, 'main')
  const gaps = all.filter((r) => r.type === 'gap')
  assert.equal(gaps.reduce((a, g) => a + (g.shed as number), 0), shed)
  assert.equal(all.length - gaps.length, 400 - shed, 'every event not shed was written')
  assert.ok(all.length > written)
  all.forEach((r, i) => assert.equal(r.seq, i))
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
})

/** The stream's writer-state as the last stop left it. */
function writerState (dir: string): { state: string, lost?: { count: number } } {
  return JSON.parse(readFileSync(join(dir, 'main', 'writer-state'), 'utf8')) as { state: string, lost?: { count: number } }
}

test('batched, disk still full at the stop: the answered events are counted lost, kept in writer-state, and their gap record is the next open\'s first write', async (t) => {
  const dir = mountSmallFs(t)
  const metrics = new Metrics({ defaultMetrics: false })
  const logger = recordingLogger()
  const log = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 20, metrics, logger }))
  for (let i = 0; i < 10; i++) assert.equal(log.append(event(i)), undefined)
  await log.flush()
  const filler = fill(dir)
  let answered = 0
  // more than the free end of the files' last pages holds
  for (let i = 10; i < 60; i++) if (log.append(event(i, { pad: 'z'.repeat(200) })) === undefined) answered++
  await until(() => logger.lines.some((l) => l.level === 'error' && l.obj.errno === 'ENOSPC'), 'the batch write failed')
  await log.close(300) // within a (short) grace period the disk stays full
  assert.equal(await metricValue(metrics, 'auditLost', '', { reason: 'unwritten_at_stop' }), answered)
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.obj.lost === answered))
  assert.deepEqual([writerState(dir).state, writerState(dir).lost?.count], ['closed', answered])

  unlinkSync(filler)
  const again = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 20, logger: recordingLogger() }))
  await again.close()
  const all = records(dir, 'main')
  const gaps = all.filter((r) => r.type === 'gap')
  assert.equal(gaps.length, 1)
  assert.deepEqual([gaps[0]?.seq, gaps[0]?.shed, gaps[0]?.cause], [10, answered, 'unwritten_at_stop'])
  assert.equal(writerState(dir).lost, undefined, 'the count is on the record: it is not carried again')
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  // the next open does not write it again
  const third = await AuditLog.open(logOptions(dir, { durability: 'batched' }))
  await third.close()
  assert.equal(records(dir, 'main').filter((r) => r.type === 'gap').length, 1)
})

test('batched, disk full at the stop but freed within the grace period: the stop retries and nothing is lost', async (t) => {
  const dir = mountSmallFs(t)
  const metrics = new Metrics({ defaultMetrics: false })
  const logger = recordingLogger()
  const log = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 20, metrics, logger }))
  await log.flush()
  const filler = fill(dir)
  for (let i = 0; i < 30; i++) assert.equal(log.append(event(i, { pad: 'z'.repeat(200) })), undefined)
  await until(() => logger.lines.some((l) => l.level === 'error' && l.obj.errno === 'ENOSPC'), 'the batch write failed')
  const closing = log.close(60_000)
  // space comes back while the stop waits
  await new Promise((resolve) => setTimeout(resolve, 200))
  unlinkSync(filler)
  await closing
  assert.equal(await metricValue(metrics, 'auditLost'), 0)
  assert.equal(records(dir, 'main').filter((r) => r.type !== 'gap').length, 30)
  assert.deepEqual([writerState(dir).state, writerState(dir).lost], ['closed', undefined])
  assert.equal((await verifyAuditDir(dir)).ok, true)
})

test('shed, disk full at the stop: the shed count not yet on the record is counted lost and becomes a gap record at the next open', async (t) => {
  const dir = mountSmallFs(t)
  const metrics = new Metrics({ defaultMetrics: false })
  const logger = recordingLogger()
  const log = await AuditLog.open(logOptions(dir, { durability: 'async', onFull: 'shed', maxPendingBytes: 4096, metrics, logger }))
  await log.flush()
  const filler = fill(dir)
  for (let i = 0; i < 100; i++) {
    assert.equal(log.append(event(i, { pad: 'z'.repeat(100) })), undefined)
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  const shed = await metricValue(metrics, 'auditShed')
  assert.ok(shed > 0)
  await log.close()
  const unwritten = await metricValue(metrics, 'auditLost', '', { reason: 'unwritten_at_stop' })
  assert.equal(await metricValue(metrics, 'auditLost', '', { reason: 'shed_unrecorded_at_stop' }), shed)
  assert.equal(writerState(dir).lost?.count, shed + unwritten)
  unlinkSync(filler)
  const again = await AuditLog.open(logOptions(dir, { durability: 'async' }))
  await again.close()
  const all = records(dir, 'main')
  const gaps = all.filter((r) => r.type === 'gap')
  assert.equal(gaps.reduce((a, g) => a + (g.shed as number), 0), shed + unwritten)
  assert.equal(all.length - gaps.length + shed + unwritten, 100, 'every event is written or counted by a gap record')
  assert.equal((await verifyAuditDir(dir)).ok, true)
})
