/**
 * The writer on real files: group commit, what each durability mode promises, the memory bound,
 * rotation, retention, locking, and proofs from the reader against signed checkpoints.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { AuditDirReader } from '../../../src/audit/log/reader.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { verifyCheckpoint } from '../../../src/audit/log/checkpoint.js'
import { leafHash, verifyConsistency, verifyInclusion } from '../../../src/audit/log/tree.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, logOptions, metricValue, recordingLogger, tempAuditDir } from '../../helpers/audit.js'

function segmentText (dir: string, stream = 'main'): string {
  const segDir = join(dir, stream, 'segments')
  return readdirSync(segDir).sort().map((n) => readFileSync(join(segDir, n), 'utf8')).join('')
}

test('sync: concurrent appends share fdatasyncs (group commit) and each resolves only after one', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', metrics }))
  const n = 300
  // count fdatasyncs synchronously as the writer records them (a spy on the real histogram)
  let syncsDone = 0
  const observe = metrics.auditFsyncDuration.observe.bind(metrics.auditFsyncDuration)
  metrics.auditFsyncDuration.observe = ((...args: Parameters<typeof observe>) => { syncsDone++; observe(...args) }) as typeof observe
  const resolvedAfter: number[] = []
  const syncsAtAppend: number[] = []
  const all = []
  for (let i = 0; i < n; i++) {
    if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve)) // let groups form across turns
    syncsAtAppend.push(syncsDone)
    const p = log.append(event(i))
    assert.ok(p instanceof Promise)
    all.push(p.then(async () => {
      resolvedAfter[i] = syncsDone
      // the record is in the file when the promise resolves
      assert.match(segmentText(dir), new RegExp(`"decision_id":"d-${i}"`))
    }))
  }
  await Promise.all(all)
  const syncs = await metricValue(metrics, 'auditFsyncDuration', '_count')
  assert.ok(syncs >= 1 && syncs < n, `${syncs} fdatasyncs for ${n} appends`)
  assert.equal(await metricValue(metrics, 'auditGroupSize', '_sum'), n)
  assert.ok(await metricValue(metrics, 'auditGroupSize', '_count') < n)
  for (let i = 0; i < n; i++) assert.ok((resolvedAfter[i] as number) > (syncsAtAppend[i] as number), `append ${i} resolved before an fdatasync completed`)
  assert.equal(log.size, n)
  await log.close()
  const lines = segmentText(dir).trimEnd().split('\n')
  assert.equal(lines.length, n)
  lines.forEach((l, i) => assert.ok(l.startsWith(`{"seq":${i},"decision_id":`)))
  assert.equal((await verifyAuditDir(dir)).ok, true)
})

test('batched: append returns undefined and nothing is written before the interval or a flush', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 600_000, metrics }))
  for (let i = 0; i < 10; i++) assert.equal(log.append(event(i)), undefined)
  assert.equal(segmentText(dir), '')
  assert.ok(await metricValue(metrics, 'auditPendingBytes') > 0)
  await log.flush()
  assert.equal(segmentText(dir).split('\n').length - 1, 10)
  assert.ok(await metricValue(metrics, 'auditFsyncDuration', '_count') >= 1)
  assert.equal(await metricValue(metrics, 'auditPendingBytes'), 0)
  await log.close()
})

test('batched: the interval timer writes and syncs on its own', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 5, metrics }))
  log.append(event(1))
  for (let i = 0; i < 2000 && log.size === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(log.size, 1)
  assert.ok(await metricValue(metrics, 'auditFsyncDuration', '_count') >= 1)
  await log.close()
})

test('async: written soon without fdatasync; fdatasync only at checkpoint/close', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'async', metrics }))
  for (let i = 0; i < 50; i++) assert.equal(log.append(event(i)), undefined)
  for (let i = 0; i < 2000 && log.size < 50; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  assert.equal(log.size, 50)
  assert.equal(segmentText(dir).split('\n').length - 1, 50)
  assert.equal(await metricValue(metrics, 'auditFsyncDuration', '_count'), 0)
  const cp = await log.checkpointNow()
  assert.equal(cp.size, 50)
  await log.close()
  assert.equal((await verifyAuditDir(dir)).ok, true)
})

test('the pending bound: deny rejects with PORTCULLIS_AUDIT_UNAVAILABLE, shed drops with a counter and a gap record', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const deny = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 600_000, maxPendingBytes: 2000, onFull: 'deny', metrics }))
  let rejected = 0
  for (let i = 0; i < 40; i++) {
    const r = deny.append(event(i))
    if (r !== undefined) await assert.rejects(r, { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' }).then(() => rejected++)
  }
  assert.ok(rejected > 0 && rejected < 40)
  assert.ok(await metricValue(metrics, 'auditPendingBytes') <= 2000)
  assert.equal(await metricValue(metrics, 'auditRejected', '', { reason: 'full' }), rejected)
  await deny.close()
  assert.equal(segmentText(dir).split('\n').length - 1, 40 - rejected, 'every accepted event is written')

  const logger = recordingLogger()
  const shed = await AuditLog.open(logOptions(dir, { stream: 's', durability: 'batched', batchIntervalMs: 600_000, maxPendingBytes: 2000, onFull: 'shed', metrics, logger }))
  for (let i = 0; i < 40; i++) assert.equal(shed.append(event(i)), undefined)
  const shedCount = await metricValue(metrics, 'auditShed', '', { stream: 's' })
  assert.ok(shedCount > 0)
  assert.ok(await metricValue(metrics, 'auditPendingBytes', '', { stream: 's' }) <= 2000)
  await shed.close()
  const lines = segmentText(dir, 's').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  const gaps = lines.filter((l) => l.type === 'gap')
  assert.equal(gaps.length, 1)
  assert.equal(gaps[0]?.shed, shedCount)
  assert.equal(typeof gaps[0]?.first_shed_at, 'string')
  assert.equal(lines.length, 40 - shedCount + 1)
  lines.forEach((l, i) => assert.equal(l.seq, i))
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.obj.shed !== undefined))
  assert.equal((await verifyAuditDir(dir)).ok, true)
})

test('bad events are refused with PORTCULLIS_AUDIT_INVALID, never thrown', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { durability: 'async' }))
  for (const bad of ['[]', 'x', '{"a":1}\n{"b":2}', '{"seq":5}', '']) {
    const r = log.append(bad)
    assert.ok(r !== undefined)
    await assert.rejects(r, { code: 'PORTCULLIS_AUDIT_INVALID' })
  }
  await log.append('{}')
  await log.close()
  assert.equal(segmentText(dir), '{"seq":0}\n')
})

test('rotation by size, retention by bytes, recorded in retention.log; verify reports the range and old checkpoints still verify', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', segmentMaxBytes: 2000, retention: { maxBytes: 6000 }, checkpoint: { everyEvents: 20, everyMs: 600_000 } }))
  for (let i = 0; i < 300; i++) await log.append(event(i, { pad: 'x'.repeat(40) }))
  await log.close()
  const segs = readdirSync(join(dir, 'main', 'segments')).sort()
  assert.ok(segs.length >= 3)
  assert.notEqual(segs[0], '00000000000000000000.ndjson')
  const total = segs.reduce((a, s) => a + statSync(join(dir, 'main', 'segments', s)).size, 0)
  assert.ok(total <= 6000 + 2200, `${total} bytes kept`)
  const removed = readFileSync(join(dir, 'main', 'retention.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { first_seq: number, last_seq: number, segment: string, first_leaf_hash: string })
  assert.equal(removed[0]?.first_seq, 0)
  for (let i = 1; i < removed.length; i++) assert.equal(removed[i]?.first_seq, (removed[i - 1]?.last_seq ?? 0) + 1)
  assert.equal(Number(segs[0]?.slice(0, 20)), (removed[removed.length - 1]?.last_seq ?? 0) + 1)
  const pub = readFileSync(join(dir, 'checkpoint-key.pub.pem'), 'utf8')
  const report = await verifyAuditDir(dir, { publicKeyPem: pub })
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  const s = report.streams[0]
  assert.equal(s?.events, 300)
  assert.deepEqual(s?.retained.map((r) => [r.first_seq, r.last_seq]), removed.map((r) => [r.first_seq, r.last_seq]))
  assert.ok((s?.checkpoints ?? 0) >= 15)
  assert.equal(s?.signatures, 'pinned')

  // the reader: records of the kept range stream; proofs against every signed checkpoint verify
  const dr = await AuditDirReader.open(dir)
  const sr = dr.stream('main')
  const cps = await sr.checkpoints()
  const latest = await sr.latestCheckpoint()
  assert.deepEqual(latest, cps[cps.length - 1])
  assert.equal(latest?.size, 300)
  assert.ok(verifyCheckpoint(latest?.note ?? '', pub))
  const first = Number(segs[0]?.slice(0, 20))
  let count = 0
  for await (const r of sr.records(first + 3, first + 13)) {
    assert.equal(r.seq, first + 3 + count)
    const proof = await sr.inclusionProof(r.seq, 300)
    assert.ok(verifyInclusion(r.seq, 300, leafHash(r.bytes), proof, latest?.root ?? Buffer.alloc(0)))
    count++
  }
  assert.equal(count, 10)
  for (const old of cps) {
    assert.ok(verifyCheckpoint(old.note, pub))
    assert.deepEqual(await sr.rootAt(old.size), old.root)
    assert.ok(verifyConsistency(old.size, 300, old.root, latest?.root ?? Buffer.alloc(0), await sr.consistencyProof(old.size, 300)))
  }
  // a record removed by retention is gone, but its inclusion in old checkpoints is still provable from the hashes
  for await (const r of sr.records(0, 2)) assert.fail(`seq ${r.seq} should have been removed`)
  await assert.rejects(sr.inclusionProof(5, 301), { code: 'PORTCULLIS_AUDIT_INVALID' })
  dr.close()
})

test('one writer per stream in a process: a second open is refused at once; the lock is released on close', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir))
  assert.equal(existsSync(join(dir, 'main', 'writer.lock')), true)
  await assert.rejects(AuditLog.open(logOptions(dir)), { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  await log.close()
  assert.equal(existsSync(join(dir, 'main', 'writer.lock')), false)
  // across processes and containers: test/audit/log/lock.test.ts
})

test('reader.findSeqAt starts at the segment before a time, never after its first record', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { durability: 'async', segmentMaxBytes: 1500 }))
  const t0 = Date.parse('2026-01-01T00:00:00Z')
  for (let i = 0; i < 200; i++) {
    log.append(event(i, { timestamp: new Date(t0 + i * 60_000).toISOString() }))
    if (i % 10 === 9) await log.flush()
  }
  await log.close()
  const sr = (await AuditDirReader.open(dir)).stream('main')
  const segFirsts = readdirSync(join(dir, 'main', 'segments')).sort().map((n) => Number(n.slice(0, 20)))
  assert.ok(segFirsts.length > 5)
  for (const target of [0, 17, 100, 150, 199]) {
    const seq = await sr.findSeqAt(new Date(t0 + target * 60_000), 0)
    assert.ok(segFirsts.includes(seq))
    assert.ok(seq <= target, `start ${seq} is not after record ${target}`)
    const next = segFirsts.find((f) => f > seq)
    assert.ok(next === undefined || next > target, `start ${seq} is the last segment before record ${target}`)
  }
  assert.equal(await sr.findSeqAt(new Date(t0 - 1)), 0)
})
