/**
 * `sync` has a write deadline (security review, issue 11): when the disk hangs, an append
 * rejects with PORTCULLIS_AUDIT_UNAVAILABLE after sync_timeout_ms instead of holding the
 * decision until Envoy's own timeout, and the event may still land later.
 *
 * The hang is real, not mocked, but it is not a hung disk (none can be made here without
 * root): Node does file I/O on the libuv thread pool, and the test occupies every pool thread
 * with open(2) calls on FIFOs that have no writer, which block in the kernel — so the log's
 * write and fdatasync wait exactly as they do behind a hung disk (a stuck NFS mount shows up in
 * Node the same way). Opening the FIFOs' other ends releases them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { PortcullisError } from '../../../src/errors.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, logOptions, metricValue, tempAuditDir } from '../../helpers/audit.js'

test('I/O that hangs: every waiting sync append rejects with AUDIT_UNAVAILABLE (reason timeout), counted; the events land once I/O resumes', { timeout: 30_000 }, async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', syncTimeoutMs: 150, metrics }))
  // block every thread of the pool in open(2) on a FIFO without a writer
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const fifos = Array.from({ length: threads }, (_, i) => join(dir, `hang-${i}`))
  for (const f of fifos) execFileSync('mkfifo', [f])
  const blocked = fifos.map(async (f) => { await (await open(f, 'r')).close() })
  try {
    const waits = Array.from({ length: 21 }, (_, i) => log.append(event(i)))
    const outcomes = await Promise.allSettled(waits)
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected')
      const err = (o as PromiseRejectedResult).reason as PortcullisError
      assert.equal(err.code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
      assert.equal(err.details.reason, 'timeout')
    }
    assert.equal(await metricValue(metrics, 'auditRejected', '', { reason: 'timeout' }), 21)
  } finally {
    // release the pool: a writer for each FIFO (opened on the main thread, not the pool)
    // (non-blocking: ENXIO while a reader's open has not reached the kernel yet, then retried)
    for (const f of fifos) {
      for (let i = 0; ; i++) {
        try { closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK)); break } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || i >= 500) throw err
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
    }
    await Promise.all(blocked)
  }
  // the denied decisions' events were still queued and are written once I/O works again
  await log.close()
  assert.equal(log.size, 21)
})
