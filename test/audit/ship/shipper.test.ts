/**
 * The shipper over a real audit directory (written by the real AuditLog, in this process and in
 * a child process), read by the real AuditDirReader, uploading to a real loopback collector
 * (collector.ts: no OPA-compatible collector exists here, so a small node:http server that
 * gunzips and records stands in for one).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Registry } from 'prom-client'
import { UploadClient } from '../../../src/audit/ship/client.js'
import { readCursor } from '../../../src/audit/log/ship-cursor.js'
import { shipMetrics } from '../../../src/audit/ship/index.js'
import { Shipper, type ShipperOptions } from '../../../src/audit/ship/shipper.js'
import { AuditDirReader } from '../../../src/audit/log/reader.js'
import { AuditLog, auditLogDefaults } from '../../../src/audit/log/writer.js'
import { ownerRecord, plantLock } from '../../helpers/audit.js'
import { waitFor } from '../../helpers/wait.js'
import { Collector } from './collector.js'

const cleanups: Array<() => Promise<void>> = []
after(async () => { for (const c of cleanups.reverse()) await c() })

function auditDir (): string {
  return mkdtempSync(join(tmpdir(), 'ship-audit-'))
}

function event (stream: string, i: number, pad = 0): string {
  return JSON.stringify({ decision_id: `${stream}-${i}`, path: 'authz/allow', input: { user: `u${i}`, pad: 'x'.repeat(pad) }, result: i % 2 === 0, timestamp: new Date(0).toISOString() })
}

/** Writes `count` events to `stream` with the real audit log writer (sync durability), then closes it. */
async function writeEvents (dir: string, stream: string, from: number, count: number, pad = 0): Promise<void> {
  const log = await AuditLog.open({ ...auditLogDefaults, dir, stream, durability: 'sync' })
  try {
    await Promise.all(Array.from({ length: count }, async (_, k) => { await log.append(event(stream, from + k, pad)) }))
  } finally {
    await log.close()
  }
}

/** The same from another process, as a worker writing its own stream would. */
async function writeEventsInChild (dir: string, stream: string, count: number): Promise<void> {
  const script = `
    import { AuditLog, auditLogDefaults } from ${JSON.stringify(join(process.cwd(), 'src/audit/log/writer.ts'))}
    const log = await AuditLog.open({ ...auditLogDefaults, dir: ${JSON.stringify(dir)}, stream: ${JSON.stringify(stream)}, durability: 'sync' })
    for (let i = 0; i < ${count}; i++) await log.append(JSON.stringify({ decision_id: ${JSON.stringify(stream)} + '-' + i, path: 'authz/allow', input: { i }, result: true }))
    await log.close()
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit'] })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  assert.equal(code, 0)
}

function shipper (dir: string, collector: Collector, over: Partial<ShipperOptions> = {}, registry = new Registry()): Shipper {
  const s = new Shipper({
    dir,
    client: new UploadClient({ url: collector.url }, '/logs'),
    openDirectory: async (d) => await AuditDirReader.open(d),
    minDelayMs: 20,
    maxDelayMs: 60,
    uploadSizeLimitBytes: 32_768,
    trigger: 'periodic',
    metrics: shipMetrics(registry),
    ...over,
  })
  cleanups.push(async () => { await s.stop(0) })
  return s
}

async function newCollector (): Promise<Collector> {
  const c = new Collector()
  await c.up()
  cleanups.push(async () => { await c.down() })
  return c
}

function ids (events: Array<Record<string, unknown>>): Set<string> {
  return new Set(events.map((e) => String(e.decision_id)))
}

function expectedIds (stream: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${stream}-${i}`)
}

async function counter (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l))
  return v?.value ?? 0
}

test('collector down, then up: every event delivered, at least once, cursors persisted (two streams, one written by another process)', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 120)
  await writeEventsInChild(dir, 'w1', 80)
  const collector = await newCollector()
  await collector.down() // connections refused from here on
  const registry = new Registry()
  const s = shipper(dir, collector, {}, registry)
  s.start()
  await waitFor(() => s.status().state === 'ERROR', 'a failed upload')
  await waitFor(() => collector.uploads.length === 0 && s.status().last_error !== null, 'failures recorded')
  assert.ok(await counter(registry, 'portcullis_decision_logs_upload_attempts_total', { outcome: 'network_error' }) >= 1)
  assert.equal(await counter(registry, 'portcullis_decision_logs_shipped_events_total'), 0)
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq ?? 0, 0, 'cursor never advanced without an acknowledgement')

  await collector.up()
  const want = [...expectedIds('main', 120), ...expectedIds('w1', 80)]
  await collector.until(() => want.every((id) => ids(collector.accepted).has(id)))
  assert.deepEqual([...ids(collector.accepted)].sort(), want.sort())
  assert.ok(collector.accepted.length >= want.length)
  for (const u of collector.uploads) {
    assert.equal(u.path, '/logs')
    assert.equal(u.headers['content-encoding'], 'gzip')
    assert.ok(u.events !== undefined && u.events.every((e) => typeof e.seq === 'number'), 'events are the stored records (seq included)')
  }
  await waitFor(() => s.status().lag_events === 0, 'lag 0')
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, 120)
  assert.equal((await readCursor(join(dir, 'w1')))?.next_seq, 80)
  assert.equal(s.status().state, 'OK')
  assert.ok(await counter(registry, 'portcullis_decision_logs_shipped_events_total') >= 200)
  assert.ok(await counter(registry, 'portcullis_decision_logs_last_success_timestamp_seconds') > 0)

  // Events appended while the shipper runs are shipped too.
  await writeEvents(dir, 'main', 120, 5)
  await collector.until(() => expectedIds('main', 125).every((id) => ids(collector.accepted).has(id)))
  await s.stop(2000)
  assert.equal(s.status().state, 'STOPPED')
})

test('500 answers are retried with backoff until acknowledged; nothing is skipped', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 30)
  const collector = await newCollector()
  collector.answer = (n) => (n < 3 ? 500 : 200)
  const registry = new Registry()
  const s = shipper(dir, collector, {}, registry)
  s.start()
  await collector.until(() => ids(collector.accepted).size === 30)
  assert.deepEqual(collector.uploads.slice(0, 3).map((u) => u.status), [500, 500, 500])
  assert.equal(await counter(registry, 'portcullis_decision_logs_upload_attempts_total', { outcome: 'http_error', status: '500' }), 3)
  assert.deepEqual([...ids(collector.accepted)].sort(), expectedIds('main', 30).sort())
  await s.stop(1000)
})

test('a new shipper after a partial upload continues from the cursor: nothing lost, nothing before the cursor resent', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 300, 200)
  const collector = await newCollector()
  collector.answer = (n) => (n < 2 ? 200 : 503)
  const first = shipper(dir, collector, { trigger: 'manual', uploadSizeLimitBytes: 2048 })
  first.start()
  const r = await first.trigger()
  assert.equal(r.chunks, 2)
  assert.ok(r.error !== undefined)
  const acked = collector.accepted.length
  assert.ok(acked > 0 && acked < 300)
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, acked)
  await first.stop(500)

  collector.answer = 200
  const second = shipper(dir, collector, { trigger: 'manual', uploadSizeLimitBytes: 2048 })
  const r2 = await second.trigger()
  assert.equal(r2.error, undefined)
  assert.equal(r2.events, 300 - acked)
  const seqs = collector.accepted.map((e) => e.seq as number)
  assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i), 'every event exactly once, in order')
  for (const u of collector.uploads) if (u.status === 200) assert.ok(u.bytes <= 2048)
  await second.stop(500)
})

test('stop with the collector down returns within the grace period and leaves the events for the next start', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 10)
  // A collector that accepts connections and never answers: the case that hangs OPA (#6443).
  const { createServer } = await import('node:net')
  const sockets = new Set<import('node:net').Socket>()
  const silent = createServer((sock) => { sockets.add(sock) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => { for (const x of sockets) x.destroy(); await new Promise<void>((resolve) => silent.close(() => { resolve() })) })
  const port = (silent.address() as import('node:net').AddressInfo).port
  const s = new Shipper({
    dir,
    client: new UploadClient({ url: `http://127.0.0.1:${port}`, response_header_timeout_seconds: 3600 }, '/logs'),
    openDirectory: async (d) => await AuditDirReader.open(d),
    minDelayMs: 3_600_000,
    maxDelayMs: 3_600_000,
    uploadSizeLimitBytes: 32_768,
    trigger: 'periodic',
  })
  s.start()
  await waitFor(() => sockets.size > 0, 'the upload to reach the silent collector')
  // Liveness, not speed: stop must resolve at all (a hang is the bug); the bound is far above the grace period.
  const outcome = await Promise.race([
    s.stop(300).then(() => 'stopped'),
    new Promise<string>((resolve) => { setTimeout(() => { resolve('hung') }, 15_000).unref() }),
  ])
  assert.equal(outcome, 'stopped')
  assert.equal(s.status().state, 'STOPPED')
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq ?? 0, 0)

  const collector = await newCollector()
  const next = shipper(dir, collector, { trigger: 'manual' })
  const r = await next.trigger()
  assert.equal(r.events, 10)
  assert.deepEqual([...ids(collector.accepted)].sort(), expectedIds('main', 10).sort())
})

test('one shipper per directory: a second one stands by, and takes over when the first stops', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 5)
  const collector = await newCollector()
  const a = shipper(dir, collector, { trigger: 'manual' })
  const b = shipper(dir, collector, { trigger: 'manual' })
  assert.equal((await a.trigger()).events, 5)
  const rb = await b.trigger()
  assert.equal(rb.events, 0)
  assert.ok(rb.error !== undefined)
  assert.equal(b.status().state, 'STANDBY')
  assert.equal(a.status().shipping, true)
  await writeEvents(dir, 'main', 5, 3)
  await a.stop(500)
  const rb2 = await b.trigger()
  assert.equal(rb2.error, undefined)
  assert.equal(rb2.events, 3)
  assert.deepEqual(collector.accepted.map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6, 7])
})

test('a shipping lock whose holder is proven dead (its pid now another process) is taken over at once, not after the staleness (600 s here)', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 4)
  plantLock(join(dir, '.ship.lock'), ownerRecord({ start: '1' }))
  const collector = await newCollector()
  const s = shipper(dir, collector, { trigger: 'manual', lockStaleMs: 600_000 })
  const r = await s.trigger()
  assert.equal(r.error, undefined)
  assert.equal(r.events, 4)
  assert.equal(s.status().shipping, true)
  assert.equal((JSON.parse(readFileSync(join(dir, '.ship.lock', 'owner.json'), 'utf8')) as { pid: number }).pid, process.pid, 'the lock names its new holder')
})

test('a shipping lock of a live holder elsewhere (a record that proves nothing, a fresh heartbeat) is not taken: stand by', async () => {
  const dir = auditDir()
  await writeEvents(dir, 'main', 0, 2)
  plantLock(join(dir, '.ship.lock'), ownerRecord({ host: 'elsewhere' }))
  const collector = await newCollector()
  const s = shipper(dir, collector, { trigger: 'manual', lockStaleMs: 600_000 })
  const r = await s.trigger()
  assert.equal(r.events, 0)
  assert.equal(s.status().state, 'STANDBY')
  assert.equal(collector.accepted.length, 0)
})

test('an event over the limit even alone is sent by itself and counted; refused with 413 it is skipped, counted, and the rest flows', async () => {
  const dir = auditDir()
  const log = await AuditLog.open({ ...auditLogDefaults, dir, stream: 'main', durability: 'sync' })
  await log.append(event('main', 0))
  await log.append(JSON.stringify({ decision_id: 'main-1', input: { blob: Array.from({ length: 3000 }, (_, i) => (i * 7919) % 10007).join(',') } }))
  await log.append(event('main', 2))
  await log.close()
  const collector = await newCollector()
  collector.answer = (_n, events) => (events.length === 1 && events[0]?.decision_id === 'main-1' ? 413 : 200)
  const registry = new Registry()
  const s = shipper(dir, collector, { trigger: 'manual', uploadSizeLimitBytes: 1024 }, registry)
  const r = await s.trigger()
  assert.equal(r.error, undefined)
  assert.deepEqual(collector.accepted.map((e) => e.decision_id), ['main-0', 'main-2'])
  assert.equal(await counter(registry, 'portcullis_decision_logs_oversized_events_total'), 1)
  assert.equal(await counter(registry, 'portcullis_decision_logs_undeliverable_events_total'), 1)
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, 3)
})

test('events removed by retention before they were shipped are counted and skipped; the rest is delivered', async () => {
  const dir = auditDir()
  const log = await AuditLog.open({ ...auditLogDefaults, dir, stream: 'main', durability: 'sync', segmentMaxBytes: 2048, retention: { maxBytes: 4096 }, checkpoint: { everyEvents: 5, everyMs: 60_000 } })
  for (let i = 0; i < 100; i++) await log.append(event('main', i, 100))
  await log.close()
  const collector = await newCollector()
  const registry = new Registry()
  const s = shipper(dir, collector, { trigger: 'manual' }, registry)
  const r = await s.trigger()
  assert.equal(r.error, undefined)
  const seqs = collector.accepted.map((e) => e.seq as number)
  assert.ok(seqs.length > 0 && seqs.length < 100, `retention removed some events (${seqs.length} left)`)
  const first = seqs[0] as number
  assert.deepEqual(seqs, Array.from({ length: 100 - first }, (_, i) => first + i), 'what retention kept is delivered in order')
  assert.equal(await counter(registry, 'portcullis_decision_logs_lost_to_retention_total'), first)
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, 100)
})
