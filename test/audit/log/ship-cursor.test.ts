/** The shipping cursor on disk: written whole, read back, a damaged one refused (never a silent restart or skip). */
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { CURSOR_FILE, readCursor, writeCursor } from '../../../src/audit/log/ship-cursor.js'

test('absent cursor reads as undefined; written cursors read back; no temporary file is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ship-cursor-'))
  assert.equal(await readCursor(dir), undefined)
  await writeCursor(dir, 42)
  assert.equal((await readCursor(dir))?.next_seq, 42)
  await writeCursor(dir, 43)
  assert.equal((await readCursor(dir))?.next_seq, 43)
  assert.deepEqual(readdirSync(dir), [CURSOR_FILE])
})

test('a damaged cursor is an error, not a restart from 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ship-cursor-'))
  writeFileSync(join(dir, CURSOR_FILE), '{"version":1,"next_seq":-3}')
  await assert.rejects(readCursor(dir))
  writeFileSync(join(dir, CURSOR_FILE), '{"vers')
  await assert.rejects(readCursor(dir))
})
