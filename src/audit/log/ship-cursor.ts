/**
 * The shipping cursor of one audit stream: the first sequence number the collector has not
 * acknowledged. Kept beside the stream's segments in `<audit dir>/<stream>/ship-cursor.json`
 * and written only after a 2xx, atomically (temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves the old or the new cursor, never a torn one: events after the
 * cursor are sent again (at least once), none before it is skipped.
 */
import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

export const CURSOR_FILE = 'ship-cursor.json'

export interface ShipCursor {
  version: 1
  /** First sequence number not yet acknowledged by the collector. */
  next_seq: number
  /** When it was last advanced (RFC 3339). */
  updated_at: string
}

/** The stream's cursor, or undefined when it has none yet. A damaged file is an error (never a silent restart from 0 or a skip). */
export async function readCursor (streamDir: string): Promise<ShipCursor | undefined> {
  let text: string
  try {
    text = await readFile(join(streamDir, CURSOR_FILE), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const v = JSON.parse(text) as Partial<ShipCursor>
  if (v.version !== 1 || typeof v.next_seq !== 'number' || !Number.isSafeInteger(v.next_seq) || v.next_seq < 0) {
    throw new Error(`${join(streamDir, CURSOR_FILE)}: not a shipping cursor`)
  }
  return { version: 1, next_seq: v.next_seq, updated_at: String(v.updated_at ?? '') }
}

export async function writeCursor (streamDir: string, nextSeq: number, now: Date = new Date()): Promise<void> {
  const file = join(streamDir, CURSOR_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  const cursor: ShipCursor = { version: 1, next_seq: nextSeq, updated_at: now.toISOString() }
  const fh = await open(tmp, 'w', 0o644)
  try {
    await fh.writeFile(JSON.stringify(cursor) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  // The rename is durable once the directory entry is.
  const dir = await open(streamDir, 'r')
  try { await dir.sync() } catch { /* some file systems refuse fsync on directories */ } finally { await dir.close() }
}
