/**
 * The shipper sends only what the log holds: a record edited after it was written (while the
 * collector was down) is never sent — shipping of that stream stops at it, counted and logged
 * with PORTCULLIS_AUDIT_INVALID, retried each round — and a hole in the seqs passes as "lost to
 * retention" only where retention.log records the removal. The real AuditLog, AuditDirReader
 * and Shipper; a real loopback collector (collector.ts stands in for an OPA-protocol collector).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { Registry } from 'prom-client'
import { UploadClient } from '../../../src/audit/ship/client.js'
import { readCursor } from '../../../src/audit/log/ship-cursor.js'
import { shipMetrics } from '../../../src/audit/ship/index.js'
import { Shipper } from '../../../src/audit/ship/shipper.js'
import { AuditDirReader } from '../../../src/audit/log/reader.js'
import { segmentName } from '../../../src/audit/log/layout.js'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { event, logOptions, recordingLogger, tempAuditDir } from '../../helpers/audit.js'
import { Collector } from './collector.js'

async function counter (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)
  return m?.values.filter((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l)).reduce((n, x) => n + x.value, 0) ?? 0
}

async function append (dir: string, stream: string, from: number, n: number): Promise<void> {
  const log = await AuditLog.open(logOptions(dir, { stream, durability: 'sync', checkpoint: { everyEvents: 10, everyMs: 600_000 } }))
  for (let i = from; i < from + n; i++) await log.append(event(i, { stream }))
  await log.close()
}

function segmentFile (dir: string, stream: string): string {
  const d = join(dir, stream, 'segments')
  return join(d, readdirSync(d).sort()[0] as string)
}

/** A collector up on loopback and a manually triggered shipper of `dir` to it, both stopped after the test. */
async function startShipping (t: TestContext, dir: string): Promise<{ collector: Collector, registry: Registry, logger: ReturnType<typeof recordingLogger>, shipper: Shipper }> {
  const collector = new Collector()
  await collector.up()
  const registry = new Registry()
  const logger = recordingLogger()
  const shipper = new Shipper({ dir, client: new UploadClient({ url: collector.url }, '/logs'), openDirectory: async (d) => await AuditDirReader.open(d), minDelayMs: 20, maxDelayMs: 60, uploadSizeLimitBytes: 32_768, trigger: 'manual', metrics: shipMetrics(registry), logger })
  t.after(async () => { await shipper.stop(0); await collector.down() })
  return { collector, registry, logger, shipper }
}

test('a record edited while the collector was down is never sent: the stream stops before it (counted, logged, retried), the records before it and the other streams are delivered', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await append(dir, 'main', 0, 10)
  await append(dir, 'w1', 0, 10)
  const { collector, registry, logger, shipper } = await startShipping(t, dir)
  assert.equal((await shipper.trigger()).error, undefined)
  assert.equal(collector.accepted.length, 20)

  // the collector goes down; decisions go on; someone with write access edits an unshipped one
  await collector.down()
  await append(dir, 'main', 10, 20)
  await append(dir, 'w1', 10, 5)
  assert.notEqual((await shipper.trigger()).error, undefined, 'nothing can be sent while the collector is down')
  const seg = segmentFile(dir, 'main')
  const text = readFileSync(seg, 'utf8')
  const forged = text.replace(/("seq":17,[^\n]*"result":)false/, '$1true')
  assert.notEqual(forged, text)
  writeFileSync(seg, forged)

  await collector.up()
  const r = await shipper.trigger()
  assert.notEqual(r.error, undefined, 'the round reports the stopped stream')
  const main = collector.accepted.filter((e) => e.stream === 'main').map((e) => e.seq)
  assert.deepEqual(main, Array.from({ length: 17 }, (_, i) => i), 'main: the records before the edited one, not it, nothing after it')
  assert.equal(collector.accepted.filter((e) => e.stream === 'w1').length, 15, 'the other stream is delivered')
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, 17)
  assert.equal(await counter(registry, 'portcullis_decision_logs_integrity_failures_total', { problem: 'EVENT_MODIFIED' }), 1)
  const line = logger.lines.find((l) => l.level === 'error' && l.obj.code === 'PORTCULLIS_AUDIT_INVALID')
  assert.deepEqual([line?.obj.problem, line?.obj.stream, line?.obj.seq], ['EVENT_MODIFIED', 'main', 17])

  // retried each round, and each round refuses it again
  const uploads = collector.uploads.length
  assert.notEqual((await shipper.trigger()).error, undefined)
  assert.equal(collector.uploads.length, uploads, 'nothing more is sent')
  assert.equal(await counter(registry, 'portcullis_decision_logs_integrity_failures_total', { problem: 'EVENT_MODIFIED' }), 2)
  assert.equal(collector.accepted.some((e) => e.stream === 'main' && e.seq === 17), false)

  // the record put back as written: shipping goes on from it
  writeFileSync(seg, text)
  assert.equal((await shipper.trigger()).error, undefined)
  assert.deepEqual(collector.accepted.filter((e) => e.stream === 'main').map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i))
})

test('records deleted from a segment (no retention.log entry) are not "lost to retention": shipping stops there (EVENT_DELETED); a retention.log entry explains a hole', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await append(dir, 'main', 0, 20)
  const seg = segmentFile(dir, 'main')
  const lines = readFileSync(seg, 'utf8').split('\n')
  writeFileSync(seg, [...lines.slice(0, 5), ...lines.slice(8)].join('\n')) // seqs 5..7 deleted
  const { collector, registry, logger, shipper } = await startShipping(t, dir)
  assert.notEqual((await shipper.trigger()).error, undefined)
  assert.deepEqual(collector.accepted.map((e) => e.seq), [0, 1, 2, 3, 4])
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, 5)
  assert.equal(await counter(registry, 'portcullis_decision_logs_lost_to_retention_total'), 0)
  assert.equal(await counter(registry, 'portcullis_decision_logs_integrity_failures_total', { problem: 'EVENT_DELETED' }), 1)
  assert.equal(logger.lines.some((l) => l.obj.code === 'PORTCULLIS_AUDIT_INVALID' && l.obj.problem === 'EVENT_DELETED' && l.obj.seq === 5), true)

  // the same hole recorded by retention.log (as the writer records a removed segment): lost to retention, skipped
  const entry = { segment: segmentName(5), first_seq: 5, last_seq: 7, first_leaf_hash: '00'.repeat(32), last_leaf_hash: '00'.repeat(32), bytes: 1, removed_at: new Date(0).toISOString(), reason: 'bytes' }
  writeFileSync(join(dir, 'main', 'retention.log'), JSON.stringify(entry) + '\n')
  assert.equal((await shipper.trigger()).error, undefined)
  assert.deepEqual(collector.accepted.map((e) => e.seq), [0, 1, 2, 3, 4, ...Array.from({ length: 12 }, (_, i) => 8 + i)])
  assert.equal(await counter(registry, 'portcullis_decision_logs_lost_to_retention_total'), 3)
})
