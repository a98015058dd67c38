/**
 * Tampering, table-driven, on real logs: each way of changing an audit directory is reported
 * by verify with its problem code at the right position.
 */
import { before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir, type VerifyProblemCode } from '../../../src/audit/log/verify.js'
import { formatCheckpoint, signCheckpoint, splitCheckpointNotes, parseCheckpoint } from '../../../src/audit/log/checkpoint.js'
import { CompactRange, leafHash, storedHashCount, storedHashIndex, rootFromLeaves } from '../../../src/audit/log/tree.js'
import { event, logOptions, tempAuditDir } from '../../helpers/audit.js'

let base: { dir: string, cleanup: () => void }
const N = 100

before(async () => {
  base = tempAuditDir()
  const log = await AuditLog.open(logOptions(base.dir, { durability: 'sync', segmentMaxBytes: 2000, checkpoint: { everyEvents: 25, everyMs: 600_000 } }))
  for (let i = 0; i < N; i++) await log.append(event(i))
  await log.close()
})
after(() => base.cleanup())

interface Seg { name: string, lines: string[] }
function segments (dir: string): Seg[] {
  const d = join(dir, 'main', 'segments')
  return readdirSync(d).sort().map((name) => ({ name, lines: readFileSync(join(d, name), 'utf8').split('\n').slice(0, -1) }))
}
function writeSeg (dir: string, s: Seg): void {
  writeFileSync(join(dir, 'main', 'segments', s.name), s.lines.map((l) => l + '\n').join(''))
}
/** The segment holding seq and the line index, asserting it is neither the first nor the last line there. */
function locate (dir: string, seq: number): { seg: Seg, at: number } {
  for (const seg of segments(dir)) {
    const at = seg.lines.findIndex((l) => l.startsWith(`{"seq":${seq},`))
    if (at >= 0) {
      assert.ok(at > 0 && at < seg.lines.length - 2, 'the case needs a seq inside a segment')
      return { seg, at }
    }
  }
  throw new Error(`seq ${seq} not found`)
}
function checkpointNotes (dir: string): string[] {
  return splitCheckpointNotes(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')).notes.map((n) => n.note)
}

const cases: Array<{ name: string, tamper: (dir: string) => void, code: VerifyProblemCode, at: { seq?: number | (() => number), checkpoint?: number, hashIndex?: number } }> = [
  {
    name: 'an event modified',
    tamper: (dir) => { const { seg, at } = locate(dir, 42); seg.lines[at] = (seg.lines[at] as string).replace('"result":true', '"result":false'); writeSeg(dir, seg) },
    code: 'EVENT_MODIFIED', at: { seq: 42 },
  },
  {
    name: 'an event deleted',
    tamper: (dir) => { const { seg, at } = locate(dir, 42); seg.lines.splice(at, 1); writeSeg(dir, seg) },
    code: 'EVENT_DELETED', at: { seq: 42 },
  },
  {
    name: 'an event inserted (a duplicate)',
    tamper: (dir) => { const { seg, at } = locate(dir, 42); seg.lines.splice(at + 1, 0, seg.lines[at] as string); writeSeg(dir, seg) },
    code: 'EVENT_INSERTED', at: { seq: 43 },
  },
  {
    name: 'events reordered',
    tamper: (dir) => { const { seg, at } = locate(dir, 42); const a = seg.lines[at] as string; seg.lines[at] = seg.lines[at + 1] as string; seg.lines[at + 1] = a; writeSeg(dir, seg) },
    code: 'EVENT_REORDERED', at: { seq: 42 },
  },
  {
    name: 'a line that is not a record',
    tamper: (dir) => { const { seg, at } = locate(dir, 42); seg.lines.splice(at, 0, '{"decision_id":"forged"}'); writeSeg(dir, seg) },
    code: 'RECORD_MALFORMED', at: { seq: 42 },
  },
  {
    name: 'a segment missing',
    tamper: (dir) => { unlinkSync(join(dir, 'main', 'segments', (segments(dir)[1] as Seg).name)) },
    code: 'SEGMENT_MISSING', at: { seq: () => Number((segments(base.dir)[1] as Seg).name.slice(0, 20)) },
  },
  {
    name: 'the tail truncated',
    tamper: (dir) => { const segs = segments(dir); const last = segs[segs.length - 1] as Seg; last.lines.splice(-3); writeSeg(dir, last) },
    code: 'TAIL_TRUNCATED', at: { seq: N - 3 },
  },
  {
    name: 'a stored interior hash changed',
    tamper: (dir) => {
      const p = join(dir, 'main', 'hashes')
      const h = readFileSync(p)
      const i = storedHashIndex(2, 5) // the node over leaves 20..23
      h[i * 32] = (h[i * 32] as number) ^ 1
      writeFileSync(p, h)
    },
    code: 'HASHES_TAMPERED', at: { seq: 23, hashIndex: storedHashIndex(2, 5) },
  },
  {
    name: 'the hashes file truncated',
    tamper: (dir) => {
      const p = join(dir, 'main', 'hashes')
      writeFileSync(p, readFileSync(p).subarray(0, storedHashCount(60) * 32))
    },
    code: 'HASHES_TAMPERED', at: { seq: 60, checkpoint: 2, hashIndex: storedHashCount(60) }, // checkpoint 2 is at size 75
  },
  {
    name: 'an event modified and the whole hashes file rebuilt to match',
    tamper: (dir) => {
      const { seg, at } = locate(dir, 42)
      seg.lines[at] = (seg.lines[at] as string).replace('"result":true', '"result":false')
      writeSeg(dir, seg)
      const c = new CompactRange()
      const stored: Buffer[] = []
      for (const s of segments(dir)) for (const l of s.lines) stored.push(...c.append(leafHash(Buffer.from(l))))
      writeFileSync(join(dir, 'main', 'hashes'), Buffer.concat(stored))
    },
    code: 'CHECKPOINT_ROOT_MISMATCH', at: { checkpoint: 1 }, // checkpoint 1 is at size 50, the first covering seq 42
  },
  {
    name: 'a checkpoint signature changed',
    tamper: (dir) => {
      const notes = checkpointNotes(dir)
      const n = notes[1] as string
      const sigAt = n.lastIndexOf(' ') + 1
      notes[1] = n.slice(0, sigAt) + Buffer.from(Buffer.from(n.slice(sigAt).trim(), 'base64').map((b, i) => i === 10 ? b ^ 1 : b)).toString('base64') + '\n'
      writeFileSync(join(dir, 'main', 'checkpoints'), notes.join(''))
    },
    code: 'CHECKPOINT_SIGNATURE_INVALID', at: { checkpoint: 1 },
  },
  {
    name: 'a checkpoint re-signed with another root',
    tamper: (dir) => {
      const notes = checkpointNotes(dir)
      const c = parseCheckpoint(notes[2] as string)
      const key = readFileSync(join(dir, 'checkpoint-key.pem'), 'utf8')
      notes[2] = signCheckpoint(formatCheckpoint(c.origin, c.size, rootFromLeaves([Buffer.from('forged')])), key, c.signatures[0]?.name ?? 'x')
      writeFileSync(join(dir, 'main', 'checkpoints'), notes.join(''))
    },
    code: 'CHECKPOINT_ROOT_MISMATCH', at: { checkpoint: 2 },
  },
  {
    name: 'checkpoints out of order (a later one not extending an earlier one)',
    tamper: (dir) => {
      const notes = checkpointNotes(dir)
      const [a, b] = [notes[1] as string, notes[2] as string]
      notes[1] = b
      notes[2] = a
      writeFileSync(join(dir, 'main', 'checkpoints'), notes.join(''))
    },
    code: 'CHECKPOINTS_INCONSISTENT', at: { checkpoint: 2 },
  },
]

test('the untampered log verifies, with its own key and with the pinned one', async () => {
  const report = await verifyAuditDir(base.dir, { publicKeyPem: readFileSync(join(base.dir, 'checkpoint-key.pub.pem'), 'utf8') })
  assert.equal(report.ok, true, JSON.stringify(report))
  assert.equal(report.streams[0]?.events, N)
  assert.equal(report.streams[0]?.checkpoints, 4)
  assert.ok(report.streams[0]?.segments !== undefined && report.streams[0].segments >= 4)
  const own = await verifyAuditDir(base.dir)
  assert.equal(own.key.source, 'directory')
  assert.ok(own.warnings.length > 0)
})

for (const c of cases) {
  test(`tamper: ${c.name} → ${c.code}`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-tamper-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    cpSync(base.dir, dir, { recursive: true })
    c.tamper(dir)
    const report = await verifyAuditDir(dir, { publicKeyPem: readFileSync(join(dir, 'checkpoint-key.pub.pem'), 'utf8') })
    assert.equal(report.ok, false)
    const p = report.streams[0]?.problem
    assert.equal(p?.code, c.code, JSON.stringify(p))
    if (c.at.seq !== undefined) assert.equal(p?.seq, typeof c.at.seq === 'function' ? c.at.seq() : c.at.seq)
    if (c.at.checkpoint !== undefined) assert.equal(p?.checkpoint, c.at.checkpoint)
    if (c.at.hashIndex !== undefined) assert.equal(p?.hashIndex, c.at.hashIndex)
  })
}

test('a pinned key that did not sign the checkpoints fails every one of them', async () => {
  const { generateCheckpointKey } = await import('../../../src/audit/log/checkpoint.js')
  const report = await verifyAuditDir(base.dir, { publicKeyPem: generateCheckpointKey().publicKeyPem })
  assert.equal(report.streams[0]?.problem?.code, 'CHECKPOINT_SIGNATURE_INVALID')
  assert.equal(report.streams[0]?.problem?.checkpoint, 0)
})

test('without any key the tree is verified and the checkpoints are reported unverified', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-nokey-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(base.dir, dir, { recursive: true })
  unlinkSync(join(dir, 'checkpoint-key.pub.pem'))
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, true)
  assert.equal(report.key.source, 'none')
  assert.equal(report.streams[0]?.signatures, 'unverified')
})

test('several streams are verified together', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  for (const stream of ['w1', 'w2']) {
    const log = await AuditLog.open(logOptions(dir, { stream, durability: 'async' }))
    for (let i = 0; i < 10; i++) log.append(event(i))
    await log.close()
  }
  const report = await verifyAuditDir(dir)
  assert.deepEqual(report.streams.map((s) => [s.stream, s.events, s.checkpoints]), [['w1', 10, 1], ['w2', 10, 1]])
  // one stream's segments folder removed, its checkpoints left: reported, not passed over
  rmSync(join(dir, 'w2', 'segments'), { recursive: true })
  const hidden = await verifyAuditDir(dir)
  assert.equal(hidden.ok, false)
  assert.deepEqual(hidden.streams.map((s) => [s.stream, s.problem?.code]), [['w1', undefined], ['w2', 'SEGMENT_MISSING']])
})

test('a checkpoint public key that does not parse — pinned or beside the log, not Ed25519 or not PEM — is PORTCULLIS_AUDIT_INVALID', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-verify-key-'))
  try {
    cpSync(base.dir, dir, { recursive: true })
    await assert.rejects(verifyAuditDir(dir, { publicKeyPem: 'not a key' }), { code: 'PORTCULLIS_AUDIT_INVALID' })
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
    await assert.rejects(verifyAuditDir(dir, { publicKeyPem: rsa }), { code: 'PORTCULLIS_AUDIT_INVALID' })
    writeFileSync(join(dir, 'checkpoint-key.pub.pem'), 'not a key')
    await assert.rejects(verifyAuditDir(dir), { code: 'PORTCULLIS_AUDIT_INVALID' })
    writeFileSync(join(dir, 'checkpoint-key.pub.pem'), rsa)
    await assert.rejects(verifyAuditDir(dir), { code: 'PORTCULLIS_AUDIT_INVALID' })
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
