/**
 * The audit directory's locks name their holder (src/audit/lock.ts): a holder the record proves
 * dead — same host, boot and pid namespace, and the pid gone or now another process — loses its
 * lock at once, though its heartbeat is fresh; any other record (another host, garbage) leaves
 * the mtime rule to decide, and a live holder keeps its lock. Real processes on real files; the
 * staleness is set to 600 s where a takeover must not have waited for it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, utimesSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../src/audit/log/verify.js'
import { eventsById, event, logOptions, ownerRecord, plantLock, recordingLogger, tempAuditDir } from '../helpers/audit.js'

const holder = join(import.meta.dirname, '..', 'fixtures', 'audit', 'lock-holder.ts')
const NEVER_STALE = 600_000

/** Resolves with the open, or rejects after `ms` (the open's own retries would take far longer). */
async function openWithin (dir: string, ms: number, stale: number): Promise<AuditLog> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      AuditLog.open(logOptions(dir, { lockStaleMs: stale, logger: recordingLogger() })),
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`the open did not take the lock within ${ms} ms`)) }, ms) }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

test('a writer killed with SIGKILL loses its lock at once: the next open does not wait for the staleness (600 s here)', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const p = spawn(process.execPath, ['--import', 'tsx', holder, dir, 'main', String(NEVER_STALE), 'A'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => p.kill('SIGKILL'))
  let out = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the writer did not write in 60 s')) }, 60_000)
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ack A-2')) { clearTimeout(timer); resolve() }
    })
  })
  assert.ok(out.startsWith('opened\n'))
  const owner = JSON.parse(readFileSync(join(dir, 'main', 'writer.lock', 'owner.json'), 'utf8')) as { pid: number, host: string }
  assert.equal(owner.pid, p.pid, 'the lock names its holder')
  assert.equal(owner.host, hostname())

  p.kill('SIGKILL')
  await new Promise((resolve) => p.once('exit', resolve))
  const log = await openWithin(dir, 30_000, NEVER_STALE)
  const mine = JSON.parse(readFileSync(join(dir, 'main', 'writer.lock', 'owner.json'), 'utf8')) as { pid: number }
  assert.equal(mine.pid, process.pid, 'the lock now names the new holder')
  await log.append(event(1))
  await log.close()
  assert.equal(existsSync(join(dir, 'main', 'writer.lock')), false, 'a release removes the lock with its record')
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  const ids = await eventsById(dir)
  assert.ok(ids.has('A-0') && ids.has('d-1'))
})

test('a live holder keeps its lock though it is on the same host: the second writer is refused', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const p = spawn(process.execPath, ['--import', 'tsx', holder, dir, 'main', '2000', 'A'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => p.kill('SIGKILL'))
  await new Promise<void>((resolve) => { p.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ack A-')) resolve() }) })
  // the shortest staleness: the open retries for about 3 s, while the holder refreshes its lock
  await assert.rejects(AuditLog.open(logOptions(dir, { lockStaleMs: 2000 })), { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  assert.equal(p.exitCode, null)
  assert.equal((JSON.parse(readFileSync(join(dir, 'main', 'writer.lock', 'owner.json'), 'utf8')) as { pid: number }).pid, p.pid, 'the holder\'s record is left in place')
})

test('a record whose pid now names another process (pid reuse) proves its holder dead: taken over at once', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  // this very process's pid with another start time: the pid was reused since the holder died
  plantLock(join(dir, 'main', 'writer.lock'), ownerRecord({ start: '1' }))
  const log = await openWithin(dir, 30_000, NEVER_STALE)
  await log.append(event(0))
  await log.close()
})

test('a record that proves nothing (another host, another pid namespace, garbage, none) leaves the mtime rule: refused while fresh, taken once stale', async (t) => {
  const cases = [
    ['another host', ownerRecord({ host: 'elsewhere', pid: 999_999 })],
    ['another pid namespace', ownerRecord({ pidns: 'pid:[1]', pid: 999_999 })],
    ['garbage', '{"v":1,"pid":"x"'],
    ['none', undefined],
  ] as const
  // the cases side by side, each in its own directory (each waits for the staleness)
  await Promise.all(cases.map(async ([what, record]) => {
    const { dir, cleanup } = tempAuditDir()
    t.after(cleanup)
    const lockDir = join(dir, 'main', 'writer.lock')
    plantLock(lockDir, record)
    // a heartbeat as a live holder elsewhere would keep
    const beat = setInterval(() => { const now = new Date(); utimesSync(lockDir, now, now) }, 200)
    try {
      await assert.rejects(AuditLog.open(logOptions(dir, { lockStaleMs: 2000 })), { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' }, what)
    } finally {
      clearInterval(beat)
    }
    // no heartbeat any more: stale after 2 s, then taken over as before
    const log = await openWithin(dir, 30_000, 2000)
    await log.close()
  }))
})
