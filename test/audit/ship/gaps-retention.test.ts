/**
 * Shipping and the log's own records (security review, issue 11):
 * - a gap record (events shed under on_full: shed) is not shipped to an OPA collector as a
 *   decision event: skipped, counted and logged, the cursor moves past it;
 * - retention never removes a segment holding events the shipper has not had acknowledged
 *   (keepUnshipped, the default when shipping is configured).
 * The real AuditLog, the real AuditDirReader and Shipper, a real loopback collector
 * (collector.ts stands in for an OPA-protocol collector).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { UploadClient } from '../../../src/audit/ship/client.js'
import { readCursor, writeCursor } from '../../../src/audit/log/ship-cursor.js'
import { shipMetrics } from '../../../src/audit/ship/index.js'
import { Shipper } from '../../../src/audit/ship/shipper.js'
import { AuditDirReader } from '../../../src/audit/log/reader.js'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { event, logOptions, recordingLogger, tempAuditDir } from '../../helpers/audit.js'
import { Collector } from './collector.js'

test('a gap record is not shipped as an event: skipped, counted, logged; every decision event arrives', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  // a real gap: async mode, a bound that holds one event; a synchronous burst sheds the rest
  const log = await AuditLog.open(logOptions(dir, { durability: 'async', maxPendingBytes: 300, onFull: 'shed' }))
  for (let i = 0; i < 10; i++) log.append(event(i))
  await log.flush()
  for (let i = 10; i < 15; i++) log.append(event(i))
  await log.close()
  const lines = readFileSync(join(dir, 'main', 'segments', readdirSync(join(dir, 'main', 'segments'))[0] as string), 'utf8').trimEnd().split('\n')
  assert.equal(lines.filter((l) => l.includes('"type":"gap"')).length >= 1, true, 'the log holds a gap record')
  const decisions = lines.filter((l) => l.includes('"decision_id"')).length

  const collector = new Collector()
  await collector.up()
  t.after(async () => { await collector.down() })
  const registry = new Registry()
  const logger = recordingLogger()
  const shipper = new Shipper({ dir, client: new UploadClient({ url: collector.url }, '/logs'), openDirectory: async (d) => await AuditDirReader.open(d), minDelayMs: 20, maxDelayMs: 60, uploadSizeLimitBytes: 32_768, trigger: 'manual', metrics: shipMetrics(registry), logger })
  t.after(async () => { await shipper.stop(0) })
  const r = await shipper.trigger()
  assert.equal(r.error, undefined)
  assert.equal(collector.accepted.length, decisions)
  assert.equal(collector.accepted.some((e) => e.type === 'gap'), false)
  const gaps = lines.filter((l) => l.includes('"type":"gap"')).length
  assert.equal((await shipMetrics(registry).gapsSkipped.get()).values[0]?.value, gaps)
  assert.equal(logger.lines.filter((l) => l.level === 'warn' && typeof l.obj.record === 'string').length, gaps)
  assert.equal((await readCursor(join(dir, 'main')))?.next_seq, lines.length)
})

test('retention keeps segments with events not yet shipped (keepUnshipped); removes them once the cursor passed them', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const opts = logOptions(dir, { durability: 'sync', segmentMaxBytes: 2000, retention: { maxBytes: 6000, keepUnshipped: true }, checkpoint: { everyEvents: 20, everyMs: 600_000 } })
  let log = await AuditLog.open(opts)
  for (let i = 0; i < 200; i++) await log.append(event(i, { pad: 'x'.repeat(40) }))
  await log.close()
  // no cursor: nothing was shipped, nothing is removed although the log is over max_bytes
  assert.equal(readdirSync(join(dir, 'main', 'segments'))[0], '00000000000000000000.ndjson')
  // the collector acknowledged up to seq 120: segments wholly below it may go, none at or past it
  await writeCursor(join(dir, 'main'), 120)
  log = await AuditLog.open(opts)
  for (let i = 200; i < 260; i++) await log.append(event(i, { pad: 'x'.repeat(40) }))
  await log.close()
  const segs = readdirSync(join(dir, 'main', 'segments')).sort()
  const firstKept = Number(segs[0]?.slice(0, 20))
  assert.ok(firstKept > 0, 'shipped segments were removed')
  assert.ok(firstKept <= 120, `no unshipped event was removed (first kept seq ${firstKept})`)
  assert.equal((await verifyAuditDir(dir)).ok, true)
})
