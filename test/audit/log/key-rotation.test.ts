/**
 * A checkpoint key rotation (docs/audit.md "Keys"): a writer configured with a new key refuses a
 * log whose last checkpoint another key signed — unless that key's public half is named in
 * `previousPublicKeyFiles` (checkpoint.previous_public_key_files); then the log is sealed under
 * the new key at once, at its current size, and grows under it. Verify needs every key: each
 * checkpoint signed by one of the pinned keys (`--key` repeated); with one key only, the first
 * checkpoint of the other is reported. An export made after the rotation verifies offline with
 * the new key. Real files, real Ed25519 keys.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { generateCheckpointKey, splitCheckpointNotes, verifyCheckpoint } from '../../../src/audit/log/checkpoint.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { main } from '../../../src/cli/main.js'
import type { PortcullisError } from '../../../src/errors.js'
import { captureIo } from '../../helpers/io.js'
import { event, logOptions, recordingLogger, tempAuditDir } from '../../helpers/audit.js'

function keyFiles (dir: string, name: string): { priv: string, pub: string, pubPem: string } {
  const k = generateCheckpointKey()
  const priv = join(dir, `${name}.pem`)
  const pub = join(dir, `${name}.pub.pem`)
  writeFileSync(priv, k.privateKeyPem, { mode: 0o600 })
  writeFileSync(pub, k.publicKeyPem)
  return { priv, pub, pubPem: k.publicKeyPem }
}

function checkpointNotes (dir: string): string[] {
  return splitCheckpointNotes(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')).notes.map((n) => n.note)
}

test('checkpoint key rotation: refused without the previous key; with it, sealed under the new key at once; verify and export need the right keys', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const keys = mkdtempSync(join(tmpdir(), 'portcullis-keys-'))
  t.after(() => rmSync(keys, { recursive: true, force: true }))
  const a = keyFiles(keys, 'a')
  const b = keyFiles(keys, 'b')
  const c = keyFiles(keys, 'c')

  // the log so far, signed by key a (checkpoints every 4 events, and one at the stop)
  const first = await AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: a.priv } }))
  for (let i = 0; i < 10; i++) await first.append(event(i))
  await first.close()
  const byA = checkpointNotes(dir)
  assert.ok(byA.length >= 3 && byA.every((n) => verifyCheckpoint(n, a.pubPem)))

  // key b alone: the writer does not extend a log it cannot vouch for; nor with a wrong previous key
  await assert.rejects(AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: b.priv } })), { code: 'PORTCULLIS_AUDIT_INVALID' })
  await assert.rejects(AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: b.priv, previousPublicKeyFiles: [c.pub] } })), { code: 'PORTCULLIS_AUDIT_INVALID' })
  // a previous key file that is not an Ed25519 key names the file
  const junk = join(keys, 'junk.pem')
  writeFileSync(junk, 'not a key\n')
  await assert.rejects(AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: b.priv, previousPublicKeyFiles: [c.pub, junk] } })),
    (err: PortcullisError) => err.code === 'PORTCULLIS_AUDIT_INVALID' && err.message.includes(junk))
  assert.deepEqual(checkpointNotes(dir), byA, 'a refused open writes no checkpoint')

  // key b with a's public half named as previous: opened, sealed under b at the same size at once
  const logger = recordingLogger()
  const second = await AuditLog.open(logOptions(dir, { logger, checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: b.priv, previousPublicKeyFiles: [c.pub, a.pub] } }))
  assert.ok(logger.lines.some((l) => l.level === 'warn' && l.obj.previousKey === a.pub), 'the rotation is logged with the key that signed the log')
  const sealed = checkpointNotes(dir)
  assert.equal(sealed.length, byA.length + 1)
  const handover = sealed.at(-1) as string
  assert.ok(verifyCheckpoint(handover, b.pubPem) && !verifyCheckpoint(handover, a.pubPem), 'the new checkpoint is signed by the new key')
  assert.equal(second.lastCheckpoint?.size, 10)
  for (let i = 10; i < 15; i++) await second.append(event(i))
  await second.close()
  // the next open needs no previous key: the last checkpoint is b's
  const third = await AuditLog.open(logOptions(dir, { checkpoint: { everyEvents: 4, everyMs: 600_000, keyFile: b.priv } }))
  await third.append(event(15))
  await third.close()

  // verify: every checkpoint signed by one of the pinned keys
  const both = await verifyAuditDir(dir, { publicKeyPem: [a.pubPem, b.pubPem] })
  assert.equal(both.ok, true, JSON.stringify(both.streams[0]?.problem))
  assert.equal(both.streams[0]?.events, 16)
  const onlyB = await verifyAuditDir(dir, { publicKeyPem: b.pubPem })
  assert.deepEqual([onlyB.ok, onlyB.streams[0]?.problem?.code, onlyB.streams[0]?.problem?.checkpoint], [false, 'CHECKPOINT_SIGNATURE_INVALID', 0])
  const onlyA = await verifyAuditDir(dir, { publicKeyPem: a.pubPem })
  assert.deepEqual([onlyA.ok, onlyA.streams[0]?.problem?.code, onlyA.streams[0]?.problem?.checkpoint], [false, 'CHECKPOINT_SIGNATURE_INVALID', byA.length])

  // the CLI: --key repeated
  let io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', a.pub, '--key', b.pub], io), 0, io.out() + io.err())
  assert.match(io.out(), /^OK\n/)
  assert.match(io.out(), /pinned \(--key, 2 keys\)/)
  io = captureIo()
  assert.equal(await main(['audit', 'verify', dir, '--key', b.pub], io), 1)
  assert.match(io.out(), /CHECKPOINT_SIGNATURE_INVALID at checkpoint 0/)

  // an export made now proves against the latest checkpoint: b's
  const out = join(keys, 'export.ndjson')
  io = captureIo()
  assert.equal(await main(['audit', 'export', dir, '--format', 'ndjson', '--out', out], io), 0, io.err())
  io = captureIo()
  assert.equal(await main(['audit', 'verify', out, '--key', b.pub], io), 0, io.out())
  io = captureIo()
  assert.equal(await main(['audit', 'verify', out, '--key', a.pub], io), 1)
  assert.match(io.out(), /CHECKPOINT_SIGNATURE_INVALID/)
  io = captureIo()
  assert.equal(await main(['audit', 'verify', out, '--key', a.pub, '--key', b.pub], io), 0, io.out())
})
