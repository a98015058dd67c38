/**
 * Crash recovery never cuts sealed records and keeps what it cuts (security review, issue 11):
 * a damaged record at or below the last checkpoint's size makes the open fail with
 * PORTCULLIS_AUDIT_INVALID naming the seq, leaving every file as it was (verify reports it);
 * a torn record past the checkpoint is cut, its bytes copied to <stream>/quarantine/ first.
 * Real logs in temp directories.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../../src/audit/log/writer.js'
import { verifyAuditDir } from '../../../src/audit/log/verify.js'
import { PortcullisError } from '../../../src/errors.js'
import { event, logOptions, recordingLogger, tempAuditDir } from '../../helpers/audit.js'

const segment = (dir: string): string => join(dir, 'main', 'segments', '00000000000000000000.ndjson')

test('a damaged record 8 of 10 with a checkpoint at 10: the open is refused naming seq 8, nothing is cut; verify finds it', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir))
  for (let i = 0; i < 10; i++) await log.append(event(i))
  await log.close() // the final checkpoint seals 10 records
  const seg = segment(dir)
  const text = readFileSync(seg, 'utf8')
  assert.ok(text.includes('{"seq":8,'))
  const damaged = text.replace('{"seq":8,', '{"sex":8,') // one changed byte in record 8
  writeFileSync(seg, damaged)
  await assert.rejects(AuditLog.open(logOptions(dir)), (err: PortcullisError) => {
    assert.equal(err.code, 'PORTCULLIS_AUDIT_INVALID')
    assert.equal(err.details.seq, 8)
    return true
  })
  assert.equal(readFileSync(seg, 'utf8'), damaged, 'no record was cut')
  assert.equal(existsSync(join(dir, 'main', 'quarantine')), false)
  const report = await verifyAuditDir(dir)
  assert.equal(report.ok, false)
  assert.equal(report.streams[0]?.problem?.seq, 8)
})

test('a torn record past the last checkpoint is cut after its bytes are copied to quarantine/', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir))
  for (let i = 0; i < 10; i++) await log.append(event(i))
  await log.close()
  const torn = '{"seq":10,"decision_id":"torn","pa'
  const garbled = '{"seq":10,"decision_id":"garbled\n'
  const seg = segment(dir)
  const good = readFileSync(seg)
  appendFileSync(seg, garbled + torn)
  const logger = recordingLogger()
  const again = await AuditLog.open(logOptions(dir, { logger }))
  assert.equal(again.size, 10)
  assert.deepEqual(readFileSync(seg), good)
  const q = readdirSync(join(dir, 'main', 'quarantine'))
  assert.equal(q.length, 1)
  assert.equal(readFileSync(join(dir, 'main', 'quarantine', q[0] as string), 'utf8'), garbled + torn)
  const notes = logger.lines.filter((l) => l.obj.quarantine !== undefined && l.obj.seq !== undefined)
  assert.equal(notes.length, 2)
  await again.append(event(10))
  await again.close()
  assert.equal((await verifyAuditDir(dir)).ok, true)
})
