/**
 * The writer never reseals history it cannot vouch for (finding: a restart used to re-sign a
 * rewritten log). On open the last checkpoint must carry the writer's own signature, records
 * after it must match their stored hashes, and no more may follow it than a crash can leave
 * (maxUnsealedTail); otherwise the open is refused (PORTCULLIS_AUDIT_INVALID) and every file
 * is left as it was. A genuine long tail is sealed only by the operator's `audit accept-tail`,
 * behind a gap record that says so. Real files, real keys, real (killed) writer processes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { generateCheckpointKey, parseCheckpoint, signCheckpoint, splitCheckpointNotes } from '../../../src/audit/log/checkpoint.js'
import { maxUnsealedTail } from '../../../src/audit/log/contract.js'
import type { PortcullisError } from '../../../src/errors.js'
import { logOptions, tempAuditDir } from '../../helpers/audit.js'

const crashWriter = join(import.meta.dirname, '..', '..', 'fixtures', 'audit', 'crash-writer.ts')
const cli = join(import.meta.dirname, '..', '..', '..', 'src', 'cli', 'main.ts')

async function crash (dir: string, everyEvents: number, count: number): Promise<void> {
  const p = spawn(process.execPath, ['--import', 'tsx', crashWriter, dir, String(everyEvents), String(count)], { stdio: ['ignore', 'ignore', 'inherit'] })
  const signal = await new Promise((resolve) => p.once('exit', (_code, sig) => { resolve(sig) }))
  assert.equal(signal, 'SIGKILL')
}

function segmentFile (dir: string): string {
  const d = join(dir, 'main', 'segments')
  return join(d, readdirSync(d).sort()[0] as string)
}

/** Every file of the stream, to show a refused open changed nothing. */
function snapshot (dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of ['hashes', 'checkpoints']) out[f] = readFileSync(join(dir, 'main', f)).toString('base64')
  out.segment = readFileSync(segmentFile(dir)).toString('base64')
  return out
}

async function runCli (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

test('sealed records rewritten and the checkpoints emptied: the open is refused (tail bound), nothing rewritten, verify still fails', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 100, everyMs: 600_000 } }))
  for (let i = 0; i < 1000; i += 25) await Promise.all(Array.from({ length: 25 }, async (_, j) => await log.append(JSON.stringify({ decision_id: `d-${i + j}`, result: true, outcome: 'allow' }))))
  await log.close()
  const lines = readFileSync(segmentFile(dir), 'utf8').split('\n').slice(0, -1)
  lines[4] = (lines[4] as string).replace('"result":true', '"result":false').replace('"outcome":"allow"', '"outcome":"deny"')
  lines.splice(7, 1)
  for (let i = 7; i < lines.length; i++) lines[i] = (lines[i] as string).replace(/^\{"seq":\d+,/, `{"seq":${i},`)
  writeFileSync(segmentFile(dir), lines.map((l) => l + '\n').join(''))
  truncateSync(join(dir, 'main', 'checkpoints'), 0)
  const before = snapshot(dir)
  await assert.rejects(AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 100, everyMs: 600_000 } })), (err: PortcullisError) =>
    err.code === 'PORTCULLIS_AUDIT_INVALID' && err.details.records === 999 && err.details.max === maxUnsealedTail(100))
  assert.deepEqual(snapshot(dir), before)
  assert.equal((await verifyAuditDir(dir)).ok, false)
})

test('a record after the last checkpoint edited after a crash: the open is refused (stored hash differs), the evidence stays for verify', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await crash(dir, 100, 130) // checkpoint at 100, 30 unsealed records
  const lines = readFileSync(segmentFile(dir), 'utf8').split('\n').slice(0, -1)
  assert.equal(lines.length, 130)
  lines[120] = (lines[120] as string).replace('"outcome":"allow"', '"outcome":"deny"')
  writeFileSync(segmentFile(dir), lines.map((l) => l + '\n').join(''))
  const reportBefore = await verifyAuditDir(dir, { allowUnsealedTail: true })
  assert.equal(reportBefore.streams[0]?.problem?.code, 'EVENT_MODIFIED')
  const before = snapshot(dir)
  await assert.rejects(AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 100, everyMs: 600_000 } })), (err: PortcullisError) =>
    err.code === 'PORTCULLIS_AUDIT_INVALID' && typeof err.details.storedHash === 'number')
  assert.deepEqual(snapshot(dir), before)
  assert.equal((await verifyAuditDir(dir, { allowUnsealedTail: true })).streams[0]?.problem?.code, 'EVENT_MODIFIED')
})

test('a last checkpoint not signed by the writer\'s key (hashes and root consistent) is refused', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir))
  for (let i = 0; i < 10; i++) await log.append(JSON.stringify({ decision_id: `d-${i}` }))
  await log.close()
  const text = readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')
  const last = parseCheckpoint((splitCheckpointNotes(text).notes.at(-1) as { note: string }).note)
  const forged = signCheckpoint(last.body, generateCheckpointKey().privateKeyPem, 'forger')
  writeFileSync(join(dir, 'main', 'checkpoints'), forged)
  await assert.rejects(AuditLog.open(logOptions(dir)), (err: PortcullisError) => err.code === 'PORTCULLIS_AUDIT_INVALID' && err.details.checkpoint === 10)
  assert.equal(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8'), forged)
})

test('a genuine tail longer than a crash leaves: refused, then sealed only by `audit accept-tail` with the exact count, behind a recorded gap', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await crash(dir, 1_000_000, 300) // no checkpoint at all; then checkpoint.every_events is lowered to 100
  const config = join(dir, '..', `${dir.split('/').at(-1) as string}.yaml`)
  writeFileSync(config, `audit:\n  enabled: true\n  dir: ${dir}\n  checkpoint: {every_events: 100, every_seconds: 600}\n`)
  t.after(() => { rmSync(config, { force: true }) })
  const opts = logOptions(dir, { checkpoint: { everyEvents: 100, everyMs: 600_000 } })
  await assert.rejects(AuditLog.open(opts), (err: PortcullisError) => err.code === 'PORTCULLIS_AUDIT_INVALID' && err.details.records === 300 && err.details.checkpoint === 0)

  // the wrong count does nothing
  const wrong = await runCli(['audit', 'accept-tail', '--config', config, '--stream', 'main', '--records', '299'])
  assert.equal(wrong.code, 2)
  assert.match(wrong.stderr, /^PORTCULLIS_AUDIT_INVALID/)
  assert.equal(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8'), '')

  const ok = await runCli(['audit', 'accept-tail', '--config', config, '--stream', 'main', '--records', '300', '--reason', 'INC-42: checkpointing failed'])
  assert.equal(ok.code, 0, ok.stderr)
  const lines = readFileSync(segmentFile(dir), 'utf8').split('\n').slice(0, -1)
  assert.equal(lines.length, 301)
  const gap = JSON.parse(lines[300] as string) as Record<string, unknown>
  assert.deepEqual([gap.seq, gap.type, gap.cause, gap.records, gap.first_seq, gap.last_seq, gap.reason], [300, 'gap', 'unsealed_tail_accepted', 300, 0, 299, 'INC-42: checkpointing failed'])
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true, JSON.stringify(report.streams[0]?.problem))
  assert.equal(report.streams[0]?.checkpoints, 1)
  // the writer opens normally now
  const log = await AuditLog.open(opts)
  assert.equal(log.size, 301)
  await log.close()
})
