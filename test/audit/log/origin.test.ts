/**
 * Whose log is this: every stream's checkpoints sign an origin `<prefix>/<stream>` (prefix: the
 * configured `checkpoint.origin`, else `portcullis/<hostname>`), verify reports it, the auditor
 * can pin it (`--origin`), and kept checkpoints are matched to streams by exact origin — so
 * replicas sharing one checkpoint key, worker streams sharing one configured origin, swapped
 * and deleted streams are told apart. Real logs, real keys, the real CLI.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { AuditLog, type AuditLogOptions } from '../../../src/audit/log/writer.js'
import { generateCheckpointKey, splitCheckpointNotes } from '../../../src/audit/log/checkpoint.js'
import { originMatches, verifyAuditDir } from '../../../src/audit/log/verify.js'
import { main } from '../../../src/cli/main.js'
import { captureIo } from '../../helpers/io.js'
import { event, logOptions, tempAuditDir } from '../../helpers/audit.js'

/** One checkpoint key kept outside the audit directories (as one Secret mounted by every replica). */
function sharedKey (base: string): { keyFile: string, pub: string, pubFile: string } {
  const k = generateCheckpointKey()
  const keyFile = join(base, 'key.pem')
  const pubFile = join(base, 'pub.pem')
  writeFileSync(keyFile, k.privateKeyPem, { mode: 0o600 })
  writeFileSync(pubFile, k.publicKeyPem)
  return { keyFile, pub: k.publicKeyPem, pubFile }
}

async function write (dir: string, stream: string, n: number, checkpoint: AuditLogOptions['checkpoint']): Promise<void> {
  const log = await AuditLog.open(logOptions(dir, { stream, durability: 'async', checkpoint }))
  for (let i = 0; i < n; i++) void log.append(event(i, { stream }))
  await log.close()
}

const lastNote = (dir: string, stream: string): string => splitCheckpointNotes(readFileSync(join(dir, stream, 'checkpoints'), 'utf8')).notes.at(-1)?.note ?? ''

test('the origin is <configured or portcullis/<hostname>>/<stream>, per stream, and verify reports it', async (t) => {
  const { dir: base, cleanup } = tempAuditDir()
  t.after(cleanup)
  const k = sharedKey(base)
  const dir = join(base, 'audit')
  await write(dir, 'main', 20, { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile })
  await write(dir, 'w1', 20, { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis.example/audit' })
  await write(dir, 'w2', 20, { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis.example/audit' })
  const r = await verifyAuditDir(dir, { publicKeyPem: k.pub })
  assert.equal(r.ok, true, JSON.stringify(r))
  assert.deepEqual(r.streams.map((s) => [s.stream, s.origin]), [
    ['main', `portcullis/${hostname()}/main`],
    ['w1', 'portcullis.example/audit/w1'],
    ['w2', 'portcullis.example/audit/w2'],
  ])
  const io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', k.pubFile], io), 0)
  assert.match(io.out(), /stream w1: origin portcullis\.example\/audit\/w1, 20 events/)
})

test('originMatches: exact, or a prefix ending at a /', () => {
  assert.equal(originMatches('portcullis/pod-0/main', 'portcullis/pod-0/main'), true)
  assert.equal(originMatches('portcullis/pod-0/main', 'portcullis/pod-0'), true)
  assert.equal(originMatches('portcullis/pod-0/main', 'portcullis/pod-0/'), true)
  assert.equal(originMatches('portcullis/pod-01/main', 'portcullis/pod-0'), false)
  assert.equal(originMatches('portcullis/pod-1/main', 'portcullis/pod-0'), false)
  assert.equal(originMatches('portcullis/pod-0/main', ''), false)
})

test('a replica\'s log replaced by another replica\'s (one shared key): verify shows the origin, --origin fails it (ORIGIN_UNEXPECTED, exit 1)', async (t) => {
  const { dir: base, cleanup } = tempAuditDir()
  t.after(cleanup)
  const k = sharedKey(base)
  const a = join(base, 'replica-0')
  const b = join(base, 'replica-1')
  await write(a, 'main', 50, { everyEvents: 10, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis/portcullis-0' })
  await write(b, 'main', 7, { everyEvents: 10, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis/portcullis-1' })

  let io = captureIo()
  assert.equal(await main(['audit', 'verify', a, '--key', k.pubFile, '--origin', 'portcullis/portcullis-0', '--json'], io), 0)
  assert.equal((JSON.parse(io.out()) as { streams: Array<{ origin: string }> }).streams[0]?.origin, 'portcullis/portcullis-0/main')

  // an attacker with write access to replica 0's volume puts replica 1's log there
  rmSync(join(a, 'main'), { recursive: true })
  cpSync(join(b, 'main'), join(a, 'main'), { recursive: true })
  // without an expected origin it verifies (it is a genuine log), but says whose it is
  io = captureIo()
  assert.equal(await main(['audit', 'verify', a, '--key', k.pubFile], io), 0)
  assert.match(io.out(), /origin portcullis\/portcullis-1\/main/)
  // with the auditor's expected origin (exact or the replica's prefix) it fails
  for (const expected of ['portcullis/portcullis-0', 'portcullis/portcullis-0/main']) {
    io = captureIo()
    assert.equal(await main(['audit', 'verify', a, '--key', k.pubFile, '--origin', expected, '--json'], io), 1)
    const r = JSON.parse(io.out()) as { ok: boolean, streams: Array<{ problem?: { code: string } }> }
    assert.equal(r.streams[0]?.problem?.code, 'ORIGIN_UNEXPECTED')
  }
  io = captureIo()
  assert.equal(await main(['audit', 'verify', a, '--key', k.pubFile, '--origin', ''], io), 2)
})

test('worker streams with one configured origin: a kept checkpoint of w1 matches w1 (not the last stream), and the genuine log verifies', async (t) => {
  const { dir: base, cleanup } = tempAuditDir()
  t.after(cleanup)
  const k = sharedKey(base)
  const dir = join(base, 'audit')
  const cp = { everyEvents: 10, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis.example/audit' }
  await write(dir, 'w1', 40, cp)
  const keptW1 = lastNote(dir, 'w1')
  await write(dir, 'w2', 25, cp)
  await write(dir, 'w1', 5, cp) // w1 grows past its kept checkpoint
  const keptW2 = lastNote(dir, 'w2')
  const r = await verifyAuditDir(dir, { publicKeyPem: k.pub, keptCheckpoints: [keptW1, keptW2] })
  assert.equal(r.ok, true, JSON.stringify(r))
  assert.deepEqual(r.problems, [])
})

test('a stream deleted while the auditor kept its checkpoint: KEPT_CHECKPOINT_UNMATCHED (exit 1); a swap of two streams: CHECKPOINT_ORIGIN_MISMATCH', async (t) => {
  const { dir: base, cleanup } = tempAuditDir()
  t.after(cleanup)
  const k = sharedKey(base)
  const dir = join(base, 'audit')
  await write(dir, 'w1', 30, { everyEvents: 10, everyMs: 600_000, keyFile: k.keyFile })
  await write(dir, 'w2', 20, { everyEvents: 10, everyMs: 600_000, keyFile: k.keyFile })
  const keptW2 = lastNote(dir, 'w2')
  const swapped = join(base, 'swapped')
  cpSync(dir, swapped, { recursive: true })

  rmSync(join(dir, 'w2'), { recursive: true })
  // without the kept checkpoint a deleted stream cannot be seen (the report lists one stream fewer)
  assert.equal((await verifyAuditDir(dir, { publicKeyPem: k.pub })).ok, true)
  const r = await verifyAuditDir(dir, { publicKeyPem: k.pub, keptCheckpoints: [keptW2] })
  assert.equal(r.ok, false)
  assert.deepEqual(r.problems.map((p) => [p.code, p.checkpoint]), [['KEPT_CHECKPOINT_UNMATCHED', 0]])
  const keptFile = join(base, 'w2.note')
  writeFileSync(keptFile, keptW2)
  const io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', k.pubFile, '--checkpoint', keptFile], io), 1)
  assert.match(io.out(), /^FAILED\n/)
  assert.match(io.out(), /KEPT_CHECKPOINT_UNMATCHED/)

  renameSync(join(swapped, 'w1'), join(swapped, 'tmp'))
  renameSync(join(swapped, 'w2'), join(swapped, 'w1'))
  renameSync(join(swapped, 'tmp'), join(swapped, 'w2'))
  const s = await verifyAuditDir(swapped, { publicKeyPem: k.pub })
  assert.equal(s.ok, false)
  assert.deepEqual(s.streams.map((x) => x.problem?.code), ['CHECKPOINT_ORIGIN_MISMATCH', 'CHECKPOINT_ORIGIN_MISMATCH'])
})

test('a reopened stream keeps the origin its checkpoints sign (a Pod rescheduled with its volume gets a new host name): one log, one origin, verify OK', async (t) => {
  const { dir: base, cleanup } = tempAuditDir()
  t.after(cleanup)
  const k = sharedKey(base)
  const dir = join(base, 'audit')
  await write(dir, 'main', 12, { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis/pod-a' })
  // the next run names itself otherwise (another host name, or a changed checkpoint.origin)
  const log = await AuditLog.open(logOptions(dir, { stream: 'main', durability: 'async', checkpoint: { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis/pod-b' } }))
  assert.equal(log.checkpointOrigin, 'portcullis/pod-a/main')
  for (let i = 12; i < 24; i++) void log.append(event(i, { stream: 'main' }))
  await log.close()
  const notes = splitCheckpointNotes(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')).notes
  assert.ok(notes.length >= 4)
  for (const n of notes) assert.match(n.note, /^portcullis\/pod-a\/main\n/)
  const r = await verifyAuditDir(dir, { publicKeyPem: k.pub, expectedOrigin: 'portcullis/pod-a' })
  assert.equal(r.ok, true, JSON.stringify(r))
  assert.equal(r.streams[0]?.events, 24)
  // a new stream in the same directory takes the configured origin
  await write(dir, 'w1', 3, { everyEvents: 5, everyMs: 600_000, keyFile: k.keyFile, origin: 'portcullis/pod-b' })
  assert.match(lastNote(dir, 'w1'), /^portcullis\/pod-b\/w1\n/)
})
