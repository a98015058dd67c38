/**
 * The file work of opening a stream after a crash (writer.ts `recover`, docs/audit.md): the last
 * whole checkpoint note, the torn records at the end of the active segment, and the hashes of
 * the records after the last checkpoint recomputed and compared with the stored ones. Bytes
 * recovery cuts are first copied to `<stream>/quarantine/`. Nothing at or below the last
 * checkpoint is ever cut or rewritten: damage there refuses the open (PORTCULLIS_AUDIT_INVALID)
 * and is for `portcullis audit verify` to report.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../log.js'
import type { Metrics } from '../../metrics/index.js'
import { lastNoteInTail, parseCheckpoint, type Checkpoint } from './checkpoint.js'
import { invalid } from './errors.js'
import { fsyncDir, isJson, readLastLines, writeFully } from './files.js'
import { recordSeq, segmentLineBatches, type SegmentRef } from './layout.js'
import { HASH_SIZE, leafHash, type CompactRange } from './tree.js'

/** Bad last lines truncated on open before the tail counts as corruption rather than a torn write. */
const MAX_TORN_LINES = 16

/** The stream being recovered, for names, quarantine, logs and metrics. */
export interface RecoveryContext {
  stream: string
  /** The stream's directory. */
  root: string
  now: () => number
  logger: Logger
  metrics?: Metrics
}

/** Copies bytes [from, to) of a file recovery is about to cut to `<stream>/quarantine/`, durably; returns the copy's path. */
async function quarantine (ctx: RecoveryContext, what: string, fh: FileHandle, from: number, to: number): Promise<string> {
  const dir = join(ctx.root, 'quarantine')
  await mkdir(dir, { recursive: true })
  const buf = Buffer.alloc(to - from)
  await fh.read(buf, 0, buf.length, from)
  const file = join(dir, `${new Date(ctx.now()).toISOString().replace(/:/g, '-')}-${what}.bin`)
  const out = await open(file, 'a')
  try {
    await out.write(buf)
    await out.datasync()
  } finally { await out.close() }
  await fsyncDir(dir)
  return file
}

/**
 * Reads the last complete note from the tail of the checkpoints file (`fh`, `len` bytes, at
 * `path`); truncates a torn one. Returns it and the file's length afterwards.
 */
export async function recoverLastCheckpoint (ctx: RecoveryContext, fh: FileHandle, len: number, path: string): Promise<{ checkpoint: Checkpoint | undefined, bytes: number }> {
  if (len === 0) return { checkpoint: undefined, bytes: 0 }
  const window = Math.min(len, 64 * 1024)
  const buf = Buffer.alloc(window)
  await fh.read(buf, 0, window, len - window)
  const found = lastNoteInTail(buf.toString('latin1'))
  if (found === undefined) {
    if (window < len) throw invalid(`audit checkpoints file ${path} has no complete note in its last ${window} bytes`)
    const file = await quarantine(ctx, 'checkpoints', fh, 0, len)
    ctx.logger.warn({ stream: ctx.stream, bytes: len, quarantine: file }, 'audit checkpoints file holds only a torn note; truncated')
    await fh.truncate(0)
    return { checkpoint: undefined, bytes: 0 }
  }
  const keep = len - window + found.end
  if (keep < len) {
    const file = await quarantine(ctx, 'checkpoints', fh, keep, len)
    ctx.logger.warn({ stream: ctx.stream, bytes: len - keep, quarantine: file }, 'audit checkpoints file ended in a torn note; truncated')
    await fh.truncate(keep)
  }
  const parsed = parseCheckpoint(found.note)
  return { checkpoint: { origin: parsed.origin, size: parsed.size, root: parsed.root, note: parsed.note, ...(parsed.retained !== undefined ? { retained: parsed.retained } : {}) }, bytes: keep }
}

/**
 * Drops torn records at the end of the active segment (`seg`, `fileSize` bytes: no newline,
 * unparsable, or a seq that does not follow the previous line) and returns the number of records
 * in the log and the segment's length afterwards. The cut point is found first and nothing is
 * cut below `sealed` (the last checkpoint's size): a bad record there is corruption or tampering
 * of sealed records — the open is refused naming the seq and the files are left as they are.
 * Bytes that are cut go to `<stream>/quarantine/<time>-segment.bin` first.
 */
export async function recoverTail (ctx: RecoveryContext, seg: FileHandle, segRef: SegmentRef, fileSize: number, sealed: number): Promise<{ records: number, bytes: number }> {
  const first = segRef.first
  let end = fileSize
  let records = first
  const drops: Array<{ bytes: number, seq: number, reason: string }> = []
  for (;;) {
    if (end === 0) break
    const lines = await readLastLines(seg, end)
    const lastLine = lines.last
    const torn = !lines.endsWithNewline
    let ok = !torn
    let seq = -1
    if (ok) {
      seq = recordSeq(lastLine.bytes)
      const expected = lines.prev === undefined ? first : recordSeq(lines.prev.bytes) + 1
      ok = seq >= 0 && seq === expected && isJson(lastLine.bytes)
    }
    if (ok) { records = seq + 1; break }
    if (drops.length >= MAX_TORN_LINES) throw invalid(`audit segment ${segRef.name} ends in more than ${MAX_TORN_LINES} bad records: corruption, not a torn write; run portcullis audit verify`, { segment: segRef.name })
    const tornSeq = lines.prev === undefined ? first : recordSeq(lines.prev.bytes) + 1
    drops.push({ bytes: end - lastLine.offset, seq: tornSeq, reason: torn ? 'no trailing newline' : 'unparsable or out-of-sequence record' })
    end = lastLine.offset
  }
  if (records < sealed) {
    throw invalid(`audit stream ${ctx.stream}: record ${records} in segment ${segRef.name} is damaged, but the last checkpoint seals ${sealed} records: recovery does not cut sealed records; run portcullis audit verify`, { stream: ctx.stream, segment: segRef.name, seq: records, checkpoint: sealed })
  }
  if (end < fileSize) {
    const file = await quarantine(ctx, 'segment', seg, end, fileSize)
    for (const d of drops) {
      ctx.logger.warn({ stream: ctx.stream, segment: segRef.name, bytes: d.bytes, seq: d.seq, reason: d.reason, quarantine: file },
        `audit recovery: truncated a torn record of ${d.bytes} bytes at seq ${d.seq}`)
      ctx.metrics?.auditRecoveryTruncations.inc({ stream: ctx.stream })
    }
    await seg.truncate(end)
    await seg.datasync()
  }
  return { records, bytes: end }
}

/** Where recomputed hashes go: the tree they extend and the hashes file they are written to from `offset`. */
export interface RehashTarget {
  range: CompactRange
  hashes: FileHandle
  offset: number
  /** Bytes of the hashes file that already held hashes before recovery. */
  storedLen: number
}

/**
 * Recomputes the stored hashes of records [from, to) from the segments (`segs` in the folder
 * `segmentsDir`) into `target`, and returns the hashes file's length afterwards. Where the file
 * already holds a hash (its first `storedLen` bytes; an all-zero hash is space a crash allocated
 * but never wrote) it must equal the recomputed one: otherwise the record or the hash was
 * changed, and the open is refused before anything is written.
 */
export async function rehashTail (ctx: RecoveryContext, segs: SegmentRef[], segmentsDir: string, from: number, to: number, target: RehashTarget): Promise<number> {
  let i = segs.length - 1
  while (i > 0 && (segs[i] as SegmentRef).first > from) i--
  let seq = (segs[i] as SegmentRef).first
  if (seq > from) throw invalid(`audit stream ${ctx.stream}: records from seq ${from} (after the last checkpoint) are missing; run portcullis audit verify`, { stream: ctx.stream, seq: from })
  let offset = target.offset
  const out: Buffer[] = []
  const write = async (): Promise<void> => {
    const buf = Buffer.concat(out.splice(0))
    await compareStored(ctx, target.hashes, buf, offset, target.storedLen)
    await writeFully(target.hashes, buf, offset)
    offset += buf.length
  }
  for (; i < segs.length && seq < to; i++) {
    const s = segs[i] as SegmentRef
    if (s.first !== seq) throw invalid(`audit segment ${s.name} does not continue at seq ${seq}; run portcullis audit verify`, { segment: s.name })
    for await (const batch of segmentLineBatches(join(segmentsDir, s.name))) {
      for (const line of batch.lines) {
        if (seq >= to) break
        if (recordSeq(line) !== seq) throw invalid(`audit segment ${s.name}: expected seq ${seq}; run portcullis audit verify`, { segment: s.name, seq })
        if (seq >= from) out.push(...target.range.append(leafHash(line)))
        seq++
      }
      if (out.length >= 8192) await write()
    }
  }
  if (seq !== to) throw invalid(`audit stream ${ctx.stream}: found ${seq} records where ${to} were expected`)
  await write()
  return offset
}

/** Refuses the open when a recomputed hash differs from a (non-zero) stored one at the same place. */
async function compareStored (ctx: RecoveryContext, hashes: FileHandle, computed: Buffer, offset: number, storedLen: number): Promise<void> {
  const n = Math.max(0, Math.min(computed.length, storedLen - offset))
  if (n === 0) return
  const stored = Buffer.alloc(n)
  await hashes.read(stored, 0, n, offset)
  for (let at = 0; at + HASH_SIZE <= n; at += HASH_SIZE) {
    const h = stored.subarray(at, at + HASH_SIZE)
    if (h.every((b) => b === 0) || h.equals(computed.subarray(at, at + HASH_SIZE))) continue
    const index = (offset + at) / HASH_SIZE
    throw invalid(`audit stream ${ctx.stream}: a record after the last checkpoint no longer matches its stored hash (stored hash ${index}): a record or the hashes file was changed; the writer does not reseal it and leaves every file as it is — run portcullis audit verify`, { stream: ctx.stream, storedHash: index })
  }
}
