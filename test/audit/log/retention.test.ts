/**
 * Retention is authenticated (security review, issue 11): a real log whose writer removed its
 * oldest segments by retention verifies, with each removal covered by a signed checkpoint's
 * `retained` line; forged retention (a middle segment deleted, the oldest deleted beyond what a
 * checkpoint signs, wrong leaf hashes) and malformed retention.log lines are problems with
 * stable codes — never a loop (a malformed range once hung verify until it ran out of memory).
 */
import { before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, cpSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync, unlinkSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { parseCheckpoint, splitCheckpointNotes } from '../../../src/audit/log/checkpoint.js'
import { HASH_SIZE, storedHashIndex } from '../../../src/audit/log/tree.js'
import { Metrics } from '../../../src/metrics/index.js'
import { event, logOptions, metricValue, tempAuditDir } from '../../helpers/audit.js'

let base: { dir: string, cleanup: () => void }
let pub: string
const N = 300

before(async () => {
  base = tempAuditDir()
  const log = await AuditLog.open(logOptions(base.dir, { durability: 'sync', segmentMaxBytes: 2000, retention: { maxBytes: 6000 }, checkpoint: { everyEvents: 20, everyMs: 600_000 } }))
  for (let i = 0; i < N; i++) await log.append(event(i, { pad: 'x'.repeat(40) }))
  await log.close()
  pub = readFileSync(join(base.dir, 'checkpoint-key.pub.pem'), 'utf8')
})
after(() => base.cleanup())

function copy (): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-afix-ret-'))
  cpSync(base.dir, dir, { recursive: true })
  return dir
}
const segDir = (dir: string): string => join(dir, 'main', 'segments')
const segs = (dir: string): string[] => readdirSync(segDir(dir)).sort()
const firstOf = (name: string): number => Number(name.slice(0, 20))
function leafHex (dir: string, seq: number): string {
  const fd = openSync(join(dir, 'main', 'hashes'), 'r')
  try {
    const b = Buffer.alloc(HASH_SIZE)
    readSync(fd, b, 0, HASH_SIZE, storedHashIndex(0, seq) * HASH_SIZE)
    return b.toString('hex')
  } finally { closeSync(fd) }
}
function entry (dir: string, name: string, last: number, over: Record<string, unknown> = {}): string {
  const first = firstOf(name)
  return JSON.stringify({ segment: name, first_seq: first, last_seq: last, first_leaf_hash: leafHex(dir, first), last_leaf_hash: leafHex(dir, last), bytes: 1, removed_at: new Date().toISOString(), reason: 'bytes', ...over }) + '\n'
}
async function problemOf (dir: string): Promise<{ code?: string, seq?: number }> {
  const r = await verifyAuditDir(dir, { publicKeyPem: pub })
  return { code: r.streams[0]?.problem?.code, seq: r.streams[0]?.problem?.seq }
}

test('the writer signs its retention: every checkpoint after a removal carries `retained <first kept seq>`, and the log verifies', async () => {
  const notes = splitCheckpointNotes(readFileSync(join(base.dir, 'main', 'checkpoints'), 'utf8')).notes.map((n) => parseCheckpoint(n.note))
  const kept = firstOf(segs(base.dir)[0] as string)
  assert.ok(kept > 0)
  assert.equal(notes[notes.length - 1]?.retained, kept)
  // never decreasing, and never beyond the checkpoint's own size
  for (let i = 1; i < notes.length; i++) assert.ok((notes[i]?.retained ?? 0) >= (notes[i - 1]?.retained ?? 0))
  for (const c of notes) assert.ok((c.retained ?? 0) <= c.size)
  const r = await verifyAuditDir(base.dir, { publicKeyPem: pub })
  assert.equal(r.ok, true, JSON.stringify(r.streams[0]?.problem))
  assert.equal(r.streams[0]?.retained[r.streams[0].retained.length - 1]?.last_seq, kept - 1)
})

test('a middle segment deleted with a made-up retention line: RETENTION_INVALID (not one run from seq 0)', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const names = segs(dir)
  assert.ok(names.length >= 3)
  const mid = names[1] as string
  unlinkSync(join(segDir(dir), mid))
  // the finding: retention.log kept as it is, one line appended for the deleted middle segment
  appendFileSync(join(dir, 'main', 'retention.log'), entry(dir, mid, firstOf(names[2] as string) - 1))
  assert.deepEqual(await problemOf(dir), { code: 'RETENTION_INVALID', seq: firstOf(names[0] as string) })
})

test('the oldest kept segment deleted with a correct-looking retention line: RETENTION_UNAUTHENTICATED (no signed checkpoint covers it)', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const [oldest, next] = segs(dir) as [string, string]
  unlinkSync(join(segDir(dir), oldest))
  appendFileSync(join(dir, 'main', 'retention.log'), entry(dir, oldest, firstOf(next) - 1))
  assert.deepEqual(await problemOf(dir), { code: 'RETENTION_UNAUTHENTICATED', seq: firstOf(oldest) })
})

test('a retention line whose leaf hashes differ from the hashes file: RETENTION_INVALID', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const lines = readFileSync(join(dir, 'main', 'retention.log'), 'utf8').trimEnd().split('\n')
  const e = JSON.parse(lines[0] as string) as Record<string, unknown>
  e.last_leaf_hash = 'ab'.repeat(32)
  lines[0] = JSON.stringify(e)
  rmSync(join(dir, 'main', 'retention.log'))
  appendFileSync(join(dir, 'main', 'retention.log'), lines.map((l) => l + '\n').join(''))
  assert.deepEqual(await problemOf(dir), { code: 'RETENTION_INVALID', seq: e.last_seq as number })
})

test('a removal logged twice (a crash between logging and removing) is one removal: OK', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const lines = readFileSync(join(dir, 'main', 'retention.log'), 'utf8').trimEnd().split('\n')
  appendFileSync(join(dir, 'main', 'retention.log'), JSON.stringify({ ...JSON.parse(lines[lines.length - 1] as string) as object, removed_at: new Date().toISOString() }) + '\n')
  assert.equal((await verifyAuditDir(dir, { publicKeyPem: pub })).ok, true)
})

test('malformed retention lines are RETENTION_INVALID at once, never a loop', async (t) => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['last_seq before first_seq', { last_seq: -5 }],
    ['last_seq < first_seq (positive)', { first_seq: 10, last_seq: 3, segment: '00000000000000000010.ndjson' }],
    ['a fractional seq', { last_seq: 1.5 }],
    ['a seq as a string', { last_seq: '3' }],
    ['a seq beyond safe integers', { last_seq: 1e300 }],
    ['a range far past the tree', { last_seq: 9_000_000_000_000 }],
    ['no leaf hashes', { first_leaf_hash: undefined }],
    ['not an object', { __array: true }],
  ]
  for (const [name, over] of bad) {
    const dir = copy()
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const lines = readFileSync(join(dir, 'main', 'retention.log'), 'utf8').trimEnd().split('\n')
    const e = { ...JSON.parse(lines[0] as string) as Record<string, unknown>, ...over }
    lines[0] = over.__array === true ? '[1,2]' : JSON.stringify(e)
    rmSync(join(dir, 'main', 'retention.log'))
    appendFileSync(join(dir, 'main', 'retention.log'), lines.map((l) => l + '\n').join(''))
    assert.equal((await problemOf(dir)).code, 'RETENTION_INVALID', name)
  }
})

test('reopened, the writer reads its signed `retained` back from the last note (four body lines) and keeps signing it', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const kept = firstOf(segs(dir)[0] as string)
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', segmentMaxBytes: 2000, retention: { maxBytes: 6000 }, checkpoint: { everyEvents: 20, everyMs: 600_000 } }))
  assert.equal(log.lastCheckpoint?.retained, kept)
  assert.equal(log.size, N)
  for (let i = 0; i < 5; i++) await log.append(event(N + i))
  await log.close()
  const notes = splitCheckpointNotes(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')).notes.map((n) => parseCheckpoint(n.note))
  assert.equal(notes[notes.length - 1]?.size, N + 5)
  assert.ok((notes[notes.length - 1]?.retained ?? 0) >= kept)
  assert.equal((await verifyAuditDir(dir, { publicKeyPem: pub })).ok, true)
})

test('retention never signs a deletion it did not make: middle segments deleted by someone else stop it (ERETENTION), and verify still reports them', async (t) => {
  const dir = copy()
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const before = segs(dir)
  assert.ok(before.length >= 3, `segments: ${before.join(' ')}`)
  // someone removes the second kept segment (sealed records)
  unlinkSync(join(segDir(dir), before[1] as string))
  assert.equal((await problemOf(dir)).code, 'SEGMENT_MISSING')
  // the writer restarts with a retention that would remove everything it may
  const metrics = new Metrics({ defaultMetrics: false })
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', segmentMaxBytes: 2000, retention: { maxBytes: 4096 }, metrics, checkpoint: { everyEvents: 20, everyMs: 600_000 } }))
  for (let i = 0; i < 3; i++) await log.append(event(N + i))
  await log.applyRetention()
  await log.close()
  assert.ok(segs(dir).includes(before[0] as string), 'the segment before the hole is not removed: its range would cover the deleted records')
  assert.ok(await metricValue(metrics, 'auditWriteErrors', '', { code: 'ERETENTION' }) >= 1)
  assert.equal((await problemOf(dir)).code, 'SEGMENT_MISSING', 'the deletion is still reported, not signed as retention')
})

test('retention ages a segment by its last record\'s time, not by the file\'s mtime (anyone may set that)', async (t) => {
  for (const [recordsAgo, removed] of [[0, false], [3 * 86_400_000, true]] as const) {
    const { dir, cleanup } = tempAuditDir()
    t.after(cleanup)
    const timestamp = new Date(Date.now() - recordsAgo).toISOString()
    const opts = logOptions(dir, { durability: 'sync', segmentMaxBytes: 1500, retention: { maxAgeMs: 86_400_000 }, checkpoint: { everyEvents: 10, everyMs: 600_000 } })
    // written without retention, then reopened with it
    const log = await AuditLog.open({ ...opts, retention: {} })
    for (let i = 0; i < 60; i++) await log.append(event(i, { timestamp, pad: 'x'.repeat(30) }))
    await log.close()
    const names = segs(dir)
    assert.ok(names.length >= 3)
    // every closed segment looks ancient by its mtime
    for (const name of names.slice(0, -1)) utimesSync(join(segDir(dir), name), new Date('2000-01-01'), new Date('2000-01-01'))
    const again = await AuditLog.open(opts)
    await again.append(event(60, { timestamp: new Date().toISOString() }))
    await again.applyRetention()
    await again.close()
    assert.equal(segs(dir).length < names.length, removed, recordsAgo === 0 ? 'records of today are kept whatever the mtime' : 'records older than max_age are removed')
    assert.equal((await verifyAuditDir(dir)).ok, true)
  }
})
