import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { main } from '../../src/cli/main.js'
import { AuditLog } from '../../src/audit/log/writer.js'
import { captureIo } from '../helpers/io.js'
import { event, logOptions, tempAuditDir } from '../helpers/audit.js'

async function writeLog (dir: string): Promise<void> {
  for (const stream of ['w1', 'w2']) {
    const log = await AuditLog.open(logOptions(dir, { stream, durability: 'async', checkpoint: { everyEvents: 10, everyMs: 600_000 } }))
    for (let i = 0; i < 30; i++) log.append(event(i))
    await log.close()
  }
}

test('audit verify: OK with counts per stream (exit 0), the first problem with its code (exit 1), usage (exit 2)', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await writeLog(dir)
  const pub = join(dir, 'checkpoint-key.pub.pem')
  let io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', pub], io), 0)
  assert.match(io.out(), /^OK\n/)
  assert.match(io.out(), /stream w1: origin portcullis\/[^ ]+\/w1, 30 events, 30 records, 1 segments, \d+ checkpoints \(signatures pinned\)/)
  assert.match(io.out(), /stream w2: origin portcullis\/[^ ]+\/w2, 30 events/)

  io = captureIo()
  assert.equal(await main(['audit', 'verify', dir], io), 0)
  assert.match(io.out(), /not pinned/)
  assert.match(io.out(), /warning: /)

  const seg = join(dir, 'w2', 'segments', readdirSync(join(dir, 'w2', 'segments'))[0] as string)
  writeFileSync(seg, readFileSync(seg, 'utf8').replace('"decision_id":"d-7"', '"decision_id":"d-X"'))
  io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', pub, '--json'], io), 1)
  const report = JSON.parse(io.out()) as { ok: boolean, streams: Array<{ stream: string, problem?: { code: string, seq: number } }> }
  assert.equal(report.ok, false)
  assert.equal(report.streams[0]?.problem, undefined)
  assert.deepEqual([report.streams[1]?.problem?.code, report.streams[1]?.problem?.seq], ['EVENT_MODIFIED', 7])

  io = captureIo()
  assert.equal(await main(['audit', 'verify'], io), 2)
})

test('audit verify runs as a command of the portcullis binary', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  await writeLog(dir)
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts'), 'audit', 'verify', dir, '--key', join(dir, 'checkpoint-key.pub.pem')], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^OK\n/)
})
