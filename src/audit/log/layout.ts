/**
 * The on-disk layout of an audit directory, shared by the writer, the reader and verify
 * (docs/audit.md "Storage"):
 *
 *   <dir>/checkpoint-key.pem, checkpoint-key.pub.pem   generated key (when none is configured)
 *   <dir>/<stream>/writer.lock/                          the one writer's lock (proper-lockfile: a directory, mtime heartbeat)
 *   <dir>/<stream>/writer-state                          clean-close marker and events lost at the last stop (JSON, fixed size)
 *   <dir>/<stream>/segments/<first seq, 20 digits>.ndjson  records, one per line
 *   <dir>/<stream>/hashes                                stored Merkle hashes, tlog order, 32 bytes each
 *   <dir>/<stream>/checkpoints                           signed checkpoint notes, appended
 *   <dir>/<stream>/retention.log                         one JSON line per segment removed by retention
 */
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises'
import { readSync } from 'node:fs'
import { join } from 'node:path'
import { PortcullisError } from '../../errors.js'
import { HASH_SIZE, type HashReader } from './tree.js'

export const SEGMENT_SUFFIX = '.ndjson'
const SEGMENT_RE = /^([0-9]{20})\.ndjson$/
/** Stream ids are directory names: letters, digits, '-', '_', '.', not starting with '.'. */
export const STREAM_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/

export interface StreamPaths {
  root: string
  segments: string
  hashes: string
  checkpoints: string
  retention: string
  /** The writer's lock directory (proper-lockfile). */
  writerLock: string
  /** The writer's state: open/closed (an unclean stop) and events it could not write at its last stop. */
  state: string
  /** The pid file earlier versions locked with; removed by a writer holding `writerLock`. */
  legacyLock: string
}

export function streamPaths (dir: string, stream: string): StreamPaths {
  if (!STREAM_RE.test(stream)) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `audit stream id ${JSON.stringify(stream)} must match ${String(STREAM_RE)}`)
  const root = join(dir, stream)
  return {
    root,
    segments: join(root, 'segments'),
    hashes: join(root, 'hashes'),
    checkpoints: join(root, 'checkpoints'),
    retention: join(root, 'retention.log'),
    writerLock: join(root, 'writer.lock'),
    state: join(root, 'writer-state'),
    legacyLock: join(root, 'lock'),
  }
}

export function segmentName (firstSeq: number): string {
  return String(firstSeq).padStart(20, '0') + SEGMENT_SUFFIX
}

export interface SegmentRef { name: string, first: number }

/** Segment files of a stream, in seq order. */
export async function listSegments (segmentsDir: string): Promise<SegmentRef[]> {
  let names: string[]
  try { names = await readdir(segmentsDir) } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: SegmentRef[] = []
  for (const name of names) {
    const m = SEGMENT_RE.exec(name)
    if (m !== null) out.push({ name, first: Number(m[1]) })
  }
  return out.sort((a, b) => a.first - b.first)
}

const PREFIX = Buffer.from('{"seq":')

/**
 * The seq of a record from its fixed `{"seq":N,` (or `{"seq":N}`) prefix, without parsing the
 * rest; -1 when the line does not start that way. N is canonical decimal (no sign, no leading 0).
 */
export function recordSeq (line: Uint8Array): number {
  if (line.length < PREFIX.length + 2) return -1
  for (let i = 0; i < PREFIX.length; i++) if (line[i] !== PREFIX[i]) return -1
  let n = 0
  let i = PREFIX.length
  const start = i
  while (i < line.length && i - start < 16) {
    const c = line[i] as number
    if (c < 48 || c > 57) break
    n = n * 10 + (c - 48)
    i++
  }
  if (i === start || (line[start] === 48 && i - start > 1)) return -1
  const end = line[i]
  if (end === 0x2c /* , */ || (end === 0x7d /* } */ && i === line.length - 1)) return n
  return -1
}

/** The record bytes (without newline) the log stores for an event. */
export function recordText (seq: number, eventJson: string): string {
  return eventJson === '{}' ? `{"seq":${seq}}` : `{"seq":${seq},${eventJson.slice(1)}`
}

/** One line of retention.log. */
export interface RetentionEntry {
  segment: string
  first_seq: number
  last_seq: number
  /** Leaf hashes (hex) of the first and last removed records, as stored in the hashes file. */
  first_leaf_hash: string
  last_leaf_hash: string
  bytes: number
  removed_at: string
  reason: 'age' | 'bytes'
}

/** A retention.log line that is not a well-formed entry (verify: RETENTION_INVALID). */
export interface RetentionLineProblem { line: number, message: string }

const HEX_HASH_RE = /^[0-9a-f]{64}$/

/** Why `v` is not a well-formed retention entry, or undefined when it is one. */
function retentionEntryProblem (v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object'
  const e = v as Record<string, unknown>
  if (typeof e.segment !== 'string' || !SEGMENT_RE.test(e.segment)) return 'segment is not a segment file name'
  for (const k of ['first_seq', 'last_seq', 'bytes'] as const) {
    if (typeof e[k] !== 'number' || !Number.isSafeInteger(e[k]) || (e[k] as number) < 0) return `${k} is not a non-negative integer`
  }
  if ((e.last_seq as number) < (e.first_seq as number)) return 'last_seq is before first_seq'
  if (Number((SEGMENT_RE.exec(e.segment) as RegExpExecArray)[1]) !== e.first_seq) return 'segment name does not match first_seq'
  for (const k of ['first_leaf_hash', 'last_leaf_hash'] as const) {
    if (typeof e[k] !== 'string' || !HEX_HASH_RE.test(e[k] as string)) return `${k} is not a hex SHA-256 hash`
  }
  if (typeof e.removed_at !== 'string') return 'removed_at is not a string'
  return undefined
}

/**
 * The entries of retention.log, each validated (fields, types, last_seq >= first_seq), so no
 * caller loops over a range it did not check. A torn last line (no newline: the removal did not
 * happen yet) is ignored; any other bad line is returned as `invalid` with its 1-based number.
 */
export async function readRetentionLog (path: string): Promise<{ entries: RetentionEntry[], invalid?: RetentionLineProblem }> {
  let text: string
  try { text = await readFile(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [] }
    throw err
  }
  const entries: RetentionEntry[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (line === '') continue
    const torn = i === lines.length - 1 // no newline after it
    let v: unknown
    try { v = JSON.parse(line) } catch {
      if (torn) continue
      return { entries, invalid: { line: i + 1, message: 'not JSON' } }
    }
    const problem = retentionEntryProblem(v)
    if (problem !== undefined) {
      if (torn) continue
      return { entries, invalid: { line: i + 1, message: problem } }
    }
    entries.push(v as RetentionEntry)
  }
  return { entries }
}

/** Positional reads of stored hashes from a hashes file (a writer may be appending to it). */
export class HashesFileReader implements HashReader {
  constructor (private readonly fd: number) {}

  readHashes (indexes: number[]): Buffer[] {
    // contiguous indexes are read in one call; proofs ask for O(log n) scattered ones
    const out: Buffer[] = []
    let i = 0
    while (i < indexes.length) {
      let j = i + 1
      while (j < indexes.length && indexes[j] === (indexes[j - 1] as number) + 1) j++
      const buf = Buffer.allocUnsafe((j - i) * HASH_SIZE)
      const got = readSync(this.fd, buf, 0, buf.length, (indexes[i] as number) * HASH_SIZE)
      if (got !== buf.length) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `hashes file ends before stored hash ${String(indexes[i])}`)
      for (let k = 0; k < j - i; k++) out.push(buf.subarray(k * HASH_SIZE, (k + 1) * HASH_SIZE))
      i = j
    }
    return out
  }
}

const CHUNK = 1 << 20

/**
 * The lines of a segment file from `offset` on, in batches (one per chunk read): a streaming
 * read whose memory does not depend on the file's size. `partial` is the trailing bytes without
 * a newline (a torn record, or one a live writer is still writing).
 */
export async function * segmentLineBatches (path: string, offset = 0): AsyncGenerator<{ lines: Buffer[], offsets: number[], partial?: Buffer }> {
  let fh: FileHandle
  try { fh = await open(path, 'r') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  try {
    let carry: Buffer | undefined
    let carryOffset = offset
    let pos = offset
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK)
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos)
      if (bytesRead === 0) break
      pos += bytesRead
      let data = buf.subarray(0, bytesRead)
      let dataOffset = pos - bytesRead
      if (carry !== undefined) { data = Buffer.concat([carry, data]); dataOffset = carryOffset; carry = undefined }
      const lines: Buffer[] = []
      const offsets: number[] = []
      let start = 0
      for (;;) {
        const nl = data.indexOf(10, start)
        if (nl < 0) break
        lines.push(data.subarray(start, nl))
        offsets.push(dataOffset + start)
        start = nl + 1
      }
      if (start < data.length) { carry = data.subarray(start); carryOffset = dataOffset + start }
      if (lines.length > 0) yield { lines, offsets }
    }
    if (carry !== undefined) yield { lines: [], offsets: [], partial: carry }
  } finally {
    await fh.close()
  }
}

/** When a record was made: an event's `timestamp`, a gap record's `last_shed_at`; `fallback` when it has neither. */
export function recordTime (line: Buffer, fallback: number): number {
  try {
    const r = JSON.parse(line.toString('utf8')) as { timestamp?: unknown, last_shed_at?: unknown }
    const t = typeof r.timestamp === 'string' ? Date.parse(r.timestamp) : typeof r.last_shed_at === 'string' ? Date.parse(r.last_shed_at) : NaN
    return Number.isFinite(t) ? t : fallback
  } catch { return fallback }
}
