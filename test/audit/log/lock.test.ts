/**
 * One writer per stream across processes — and across containers, where every writer can be
 * pid 1, so no pid decides: the lock is proper-lockfile's (a directory whose mtime the holder
 * refreshes). Real processes on real files: a second writer is refused while the first runs;
 * once the first is killed with SIGKILL its lock turns stale and is taken over, the stop counted
 * as unclean. Beside the lock, a writer stops (fail closed) when its segment changes under it or
 * it loses the lock, and cuts nothing.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, eventsById, logOptions, metricValue, recordingLogger, tempAuditDir } from '../../helpers/audit.js'

const holder = join(import.meta.dirname, '..', '..', 'fixtures', 'audit', 'lock-holder.ts')

/** Starts a writer process; resolves with its first line (`opened` or `refused <code>`). */
async function startWriter (dir: string, tag: string): Promise<{ p: ChildProcessWithoutNullStreams, first: string, acks: () => number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', holder, dir, 'main', '2000', tag], { stdio: 'pipe' })
  let buf = ''
  let acks = 0
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`writer ${tag} said nothing in 60 s`)) }, 60_000)
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) {
        if (l.startsWith('ack ')) acks++
        else { clearTimeout(timer); resolve(l) }
      }
    })
    p.once('exit', () => { clearTimeout(timer); resolve(buf.trim()) })
  })
  return { p, first, acks: () => acks }
}

async function until (cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.ok(cond(), what)
}

test('two processes on one stream: the second is refused while the first runs; after SIGKILL the lock turns stale and is taken over', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const a = await startWriter(dir, 'A')
  t.after(() => a.p.kill('SIGKILL'))
  assert.equal(a.first, 'opened')
  await until(() => a.acks() >= 5, 'the first writer writes')

  const b = await startWriter(dir, 'B')
  assert.equal(b.first, 'refused PORTCULLIS_AUDIT_UNAVAILABLE')
  await assert.rejects(AuditLog.open(logOptions(dir)), { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  assert.equal(a.p.exitCode, null, 'the first writer still runs')

  a.p.kill('SIGKILL')
  await new Promise((resolve) => a.p.once('exit', resolve))
  // a pid file as earlier versions left it, naming this very process: no pid decides any more
  writeFileSync(join(dir, 'main', 'lock'), `${process.pid}\n`)
  const logger = recordingLogger()
  const log = await AuditLog.open(logOptions(dir, { logger }))
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.obj.unclean === true), 'the killed writer\'s stop is recognised as unclean')
  assert.equal(existsSync(join(dir, 'main', 'lock')), false, 'the legacy pid file is removed')
  await log.append(event(1))
  await log.close()
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  const ids = await eventsById(dir)
  assert.ok(ids.has('A-0') && ids.has('d-1'))
  assert.equal([...ids.keys()].some((k) => k.startsWith('B-')), false)

  // a clean stop is not unclean at the next open
  const logger2 = recordingLogger()
  const again = await AuditLog.open(logOptions(dir, { logger: logger2 }))
  assert.equal(logger2.lines.some((l) => l.obj.unclean === true), false)
  await again.close()
})

test('a segment that changes under its writer stops the writer: appends refused, counted ESEGCHANGED, the foreign bytes kept', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', metrics }))
  for (let i = 0; i < 5; i++) await log.append(event(i))
  const seg = join(dir, 'main', 'segments', readdirSync(join(dir, 'main', 'segments'))[0] as string)
  const foreign = '{"seq":5,"decision_id":"other-writer"}\n'
  appendFileSync(seg, foreign)
  const size = statSync(seg).size
  await assert.rejects(log.append(event(5)) as Promise<void>, { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  await assert.rejects(log.append(event(6)) as Promise<void>, { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  assert.equal(await metricValue(metrics, 'auditWriteErrors', '', { code: 'ESEGCHANGED' }), 1)
  await log.close()
  assert.equal(statSync(seg).size, size)
  assert.ok(readFileSync(seg, 'utf8').endsWith(foreign))
})

test('a writer that loses its lock stops writing (fail closed) and does not write the stream\'s state', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', metrics }))
  await log.append(event(0))
  rmSync(join(dir, 'main', 'writer.lock'), { recursive: true })
  // the heartbeat (every second at the shortest staleness) finds the lock gone
  for (let i = 0; i < 500 && await metricValue(metrics, 'auditWriteErrors', '', { code: 'ELOCKLOST' }) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.equal(await metricValue(metrics, 'auditWriteErrors', '', { code: 'ELOCKLOST' }), 1, 'the lost lock is noticed')
  await assert.rejects(log.append(event(1)) as Promise<void>, { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
  const state = readFileSync(join(dir, 'main', 'writer-state'), 'utf8')
  await log.close()
  assert.equal(readFileSync(join(dir, 'main', 'writer-state'), 'utf8'), state)
})
