/**
 * Deleted checkpoints are detected (security review, issue 11): emptying `checkpoints` and
 * rewriting records + hashes used to verify OK with 0 checkpoints. Now records with no
 * checkpoint, or more past the latest checkpoint than allowed, are TAIL_UNSEALED; a torn last
 * note is an error; a checkpoint the auditor kept (`--checkpoint`) must verify and be a prefix
 * of the log (consistency proof); checkpoint origins must agree. Real logs, the real CLI.
 */
import { before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../../src/cli/main.js'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir, type VerifyOptions } from '../../../src/audit/log/verify.js'
import { formatCheckpoint, generateCheckpointKey, parseCheckpoint, signCheckpoint, splitCheckpointNotes } from '../../../src/audit/log/checkpoint.js'
import { CompactRange, leafHash } from '../../../src/audit/log/tree.js'
import { captureIo } from '../../helpers/io.js'
import { event, logOptions, tempAuditDir } from '../../helpers/audit.js'

let base: { dir: string, cleanup: () => void }
let pub: string
let privPem: string
const N = 100

before(async () => {
  base = tempAuditDir()
  const log = await AuditLog.open(logOptions(base.dir, { durability: 'sync', checkpoint: { everyEvents: 25, everyMs: 600_000 } }))
  for (let i = 0; i < N; i++) await log.append(event(i))
  await log.close()
  pub = readFileSync(join(base.dir, 'checkpoint-key.pub.pem'), 'utf8')
  privPem = readFileSync(join(base.dir, 'checkpoint-key.pem'), 'utf8')
})
after(() => base.cleanup())

function copy (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-afix-seal-'))
  cpSync(base.dir, dir, { recursive: true })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
const cpFile = (dir: string): string => join(dir, 'main', 'checkpoints')
const notes = (dir: string): string[] => splitCheckpointNotes(readFileSync(cpFile(dir), 'utf8')).notes.map((n) => n.note)
const segFile = (dir: string): string => join(dir, 'main', 'segments', '00000000000000000000.ndjson')
async function codeOf (dir: string, opts: VerifyOptions = {}): Promise<string | undefined> {
  const r = await verifyAuditDir(dir, { publicKeyPem: pub, ...opts })
  return r.streams[0]?.problem?.code
}

/** The attack of the finding: checkpoints emptied, record 42 rewritten, the hashes file rebuilt to match. */
function rewriteWithoutCheckpoints (dir: string): void {
  writeFileSync(cpFile(dir), '')
  const lines = readFileSync(segFile(dir), 'utf8').split('\n').slice(0, -1)
  lines[42] = (lines[42] as string).replace('"decision_id":"d-42"', '"decision_id":"d-forged"')
  writeFileSync(segFile(dir), lines.map((l) => l + '\n').join(''))
  const range = new CompactRange()
  const hashes: Buffer[] = []
  for (const l of lines) hashes.push(...range.append(leafHash(Buffer.from(l))))
  writeFileSync(join(dir, 'main', 'hashes'), Buffer.concat(hashes))
}

test('checkpoints deleted and records + hashes rewritten: TAIL_UNSEALED; with the auditor\'s kept checkpoint: KEPT_CHECKPOINT_INCONSISTENT', async (t) => {
  const dir = copy(t)
  const kept = notes(dir)[notes(dir).length - 1] as string
  assert.equal(await codeOf(dir, { keptCheckpoints: [kept] }), undefined, 'the intact log extends the kept checkpoint')
  rewriteWithoutCheckpoints(dir)
  assert.equal(await codeOf(dir), 'TAIL_UNSEALED')
  // what --allow-unsealed-tail accepts: nothing sealed, so nothing to catch the rewrite with
  assert.equal(await codeOf(dir, { allowUnsealedTail: true }), undefined)
  assert.equal(await codeOf(dir, { allowUnsealedTail: true, keptCheckpoints: [kept] }), 'KEPT_CHECKPOINT_INCONSISTENT')

  // the CLI: --checkpoint <file>, exit 1
  const keptFile = join(dir, 'kept.note')
  writeFileSync(keptFile, kept)
  const io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', join(base.dir, 'checkpoint-key.pub.pem'), '--allow-unsealed-tail', '--checkpoint', keptFile, '--json'], io), 1)
  assert.equal((JSON.parse(io.out()) as { streams: Array<{ problem?: { code: string } }> }).streams[0]?.problem?.code, 'KEPT_CHECKPOINT_INCONSISTENT')
})

test('more records past the latest checkpoint than allowed: TAIL_UNSEALED; within the bound: OK with a warning', async (t) => {
  const dir = copy(t)
  const all = notes(dir)
  writeFileSync(cpFile(dir), all.slice(0, 1).join('')) // only the checkpoint at 25 is left
  assert.equal(parseCheckpoint(all[0] as string).size, 25)
  assert.equal(await codeOf(dir, { maxUnsealed: 50 }), 'TAIL_UNSEALED')
  const r = await verifyAuditDir(dir, { publicKeyPem: pub, maxUnsealed: 75 })
  assert.equal(r.ok, true)
  assert.ok(r.warnings.some((w) => w.includes('not yet sealed')))
  const io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--max-unsealed', '10'], io), 1)
})

test('a torn last checkpoint note is CHECKPOINT_MALFORMED, not a warning', async (t) => {
  const dir = copy(t)
  const all = notes(dir)
  const last = all[all.length - 1] as string
  writeFileSync(cpFile(dir), all.slice(0, -1).join('') + last.slice(0, last.indexOf('\n\n') + 1))
  const r = await verifyAuditDir(dir, { publicKeyPem: pub })
  assert.deepEqual([r.streams[0]?.problem?.code, r.streams[0]?.problem?.checkpoint], ['CHECKPOINT_MALFORMED', all.length - 1])
})

test('a kept checkpoint that is not signed by the key, or covers more than the log holds: KEPT_CHECKPOINT_INCONSISTENT', async (t) => {
  const dir = copy(t)
  const c = parseCheckpoint(notes(dir)[0] as string)
  const other = signCheckpoint(formatCheckpoint(c.origin, c.size, c.root), generateCheckpointKey().privateKeyPem, c.signatures[0]?.name ?? 'x')
  assert.equal(await codeOf(dir, { keptCheckpoints: [other] }), 'KEPT_CHECKPOINT_INCONSISTENT')
  // a log cut back (tail and its checkpoints removed) after the auditor kept a later checkpoint
  const latest = notes(dir)[notes(dir).length - 1] as string
  const lines = readFileSync(segFile(dir), 'utf8').split('\n').slice(0, 50)
  writeFileSync(segFile(dir), lines.map((l) => l + '\n').join(''))
  writeFileSync(cpFile(dir), notes(dir).slice(0, 2).join(''))
  const range = new CompactRange()
  const hashes: Buffer[] = []
  for (const l of lines) hashes.push(...range.append(leafHash(Buffer.from(l))))
  writeFileSync(join(dir, 'main', 'hashes'), Buffer.concat(hashes))
  assert.equal(await codeOf(dir), undefined, 'without the kept checkpoint the cut is invisible')
  assert.equal(await codeOf(dir, { keptCheckpoints: [latest] }), 'KEPT_CHECKPOINT_INCONSISTENT')
})

test('a checkpoint with another origin than the stream\'s others: CHECKPOINT_ORIGIN_MISMATCH', async (t) => {
  const dir = copy(t)
  const c = parseCheckpoint(notes(dir)[1] as string)
  const forged = signCheckpoint(formatCheckpoint('portcullis/elsewhere/main', c.size, c.root), privPem, 'portcullis/elsewhere/main')
  const all = notes(dir)
  all[1] = forged
  writeFileSync(cpFile(dir), all.join(''))
  const r = await verifyAuditDir(dir, { publicKeyPem: pub })
  assert.deepEqual([r.streams[0]?.problem?.code, r.streams[0]?.problem?.checkpoint], ['CHECKPOINT_ORIGIN_MISMATCH', 1])
})
