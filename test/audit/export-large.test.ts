/**
 * A large export streams: `portcullis audit export` runs as a real child process whose V8 old
 * generation is capped below the size of the export; it completes (a buffering exporter
 * would die of heap exhaustion), through a pipe too, and the result verifies offline. And a
 * time-bounded export does not read the log from its start: whole segments before `from` are
 * skipped by their first record's timestamp.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createWriteStream, statSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { AuditLog } from '../../src/audit/log/writer.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { listSegments, streamPaths } from '../../src/audit/log/layout.js'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { verifyExport } from '../../src/audit/export/verify.js'
import { ExportFilter } from '../../src/audit/export/filter.js'
import { TIME_SLACK_MS } from '../../src/audit/export/write.js'
import { logOptions, tempAuditDir } from '../helpers/audit.js'
import { writeFileSync } from 'node:fs'

const EVENTS = 25_000
const HEAP_MB = 96
const T0 = Date.parse('2026-11-01T00:00:00Z')
/** Events are 30 s apart: the log spans about nine days, far more than the time slack. */
const STEP_MS = 30_000

function run (args: string[], stdoutFile?: string): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', join(process.cwd(), 'src/cli/main.ts'), ...args], { stdio: ['ignore', stdoutFile === undefined ? 'ignore' : 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  if (stdoutFile !== undefined) child.stdout?.pipe(createWriteStream(stdoutFile))
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  return once(child, 'close').then(([code]) => { clearTimeout(timer); return { code: code as number | null, stderr } })
}

describe('a large export streams', () => {
  const { dir, cleanup } = tempAuditDir()
  const key = generateCheckpointKey()
  const pad = 'x'.repeat(5500)

  before(async () => {
    writeFileSync(join(dir, 'key.pem'), key.privateKeyPem, { mode: 0o600 })
    const log = await AuditLog.open(logOptions(dir, { durability: 'sync', segmentMaxBytes: 8 * 1024 * 1024, checkpoint: { everyEvents: 10_000, everyMs: 600_000, keyFile: join(dir, 'key.pem') } }))
    for (let i = 0; i < EVENTS; i += 1000) {
      const batch = []
      for (let j = i; j < i + 1000; j++) {
        batch.push(log.append(JSON.stringify({ decision_id: `d-${j}`, path: 'authz/allow', input: { pad }, timestamp: new Date(T0 + j * STEP_MS).toISOString(), outcome: j % 2 === 0 ? 'allow' : 'deny', transport: 'http', cached: false })))
      }
      await Promise.all(batch)
    }
    await log.close()
  })
  after(() => { cleanup() })

  test(`an export half again larger than a ${HEAP_MB} MB heap cap completes, to a file and through a pipe, and verifies`, async () => {
    const out = join(dir, 'all.ndjson')
    const r = await run(['audit', 'export', dir, '--out', out])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(statSync(out).size > 1.5 * HEAP_MB * 1024 * 1024, `export is ${statSync(out).size} bytes`)
    const piped = join(dir, 'piped.csv')
    const p = await run(['audit', 'export', dir, '--format', 'csv'], piped)
    assert.equal(p.code, 0, p.stderr)
    assert.ok(statSync(piped).size > 1.5 * HEAP_MB * 1024 * 1024)
    for (const file of [out, piped]) {
      const report = await verifyExport(file, key.publicKeyPem)
      assert.equal(report.ok, true, JSON.stringify(report.problem))
      assert.equal(report.events, EVENTS)
    }
  })

  test('a time slice skips the segments before it and stops after it, and still holds every event of the slice', async () => {
    const segs = await listSegments(streamPaths(dir, 'main').segments)
    const reader = await AuditDirReader.open(dir)
    const main = reader.stream('main')
    assert.ok(segs.length >= 10, `${segs.length} segments`)
    // the last quarter of the log, and a day in the middle
    const fromIdx = Math.floor(EVENTS * 3 / 4)
    const from = new Date(T0 + fromIdx * STEP_MS).toISOString()
    const [start, end] = await main.seqRange(new ExportFilter({ from }), EVENTS)
    assert.ok(start > EVENTS / 2, `reading starts at seq ${start}`)
    assert.ok(start <= fromIdx - TIME_SLACK_MS / STEP_MS)
    assert.equal(end, EVENTS)
    const dayFrom = Math.floor(EVENTS / 2)
    const dayTo = dayFrom + (24 * 3600 * 1000) / STEP_MS
    const window = new ExportFilter({ from: new Date(T0 + dayFrom * STEP_MS).toISOString(), to: new Date(T0 + dayTo * STEP_MS).toISOString() })
    const [s2, e2] = await main.seqRange(window, EVENTS)
    assert.ok(s2 > 0 && s2 <= dayFrom && e2 >= dayTo && e2 < EVENTS, `[${s2}, ${e2})`)
    const file = join(dir, 'day.ndjson')
    const r = await run(['audit', 'export', dir, '--from', new Date(T0 + dayFrom * STEP_MS).toISOString(), '--to', new Date(T0 + dayTo * STEP_MS).toISOString(), '--out', file])
    assert.equal(r.code, 0, r.stderr)
    const report = await verifyExport(file, key.publicKeyPem)
    assert.equal(report.ok, true)
    assert.equal(report.events, dayTo - dayFrom)
    reader.close()
  })
})
