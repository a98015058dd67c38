/**
 * `batched` never stays unsynced past the batch interval (security review, issue 11): the early
 * write at half the memory bound writes without fdatasync, and the batch timer must then sync
 * it even when no event is pending any more. Checked through the fsync metric on a real log.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, logOptions, metricValue, tempAuditDir } from '../../helpers/audit.js'
import { waitFor } from '../../helpers/wait.js'

test('batched: an early (unsynced) write is fdatasync\'d by the next batch tick although nothing is pending', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'batched', batchIntervalMs: 20, maxPendingBytes: 4096, metrics }))
  t.after(async () => { await log.close() })
  // one synchronous burst past half the bound: one early write takes all of it, unsynced
  let n = 0
  for (let bytes = 0; bytes < 2600; n++) {
    const e = event(n, { pad: 'p'.repeat(100) })
    bytes += Buffer.byteLength(e) + 96
    assert.equal(log.append(e), undefined)
  }
  await waitFor(() => log.size === n, 'the early write')
  // the writes so far did not sync; nothing is pending; the timer must sync anyway
  let synced = 0
  for (let i = 0; i < 250 && synced === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    synced = await metricValue(metrics, 'auditFsyncDuration', '_count')
  }
  assert.ok(synced >= 1, 'the batch tick fdatasyncs the early write')
  assert.equal(log.size, n)
})
