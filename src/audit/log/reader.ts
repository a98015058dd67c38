/**
 * Read access to an audit directory, safe while live writers (other processes) append to it:
 * the tree size is what the hashes file holds whole, records are streamed segment by segment
 * (memory independent of the range), and roots and proofs read O(log n) stored hashes with
 * positional reads — never the events. Exports, HTTP endpoints and shippers build on this.
 */
import { closeSync, openSync, fstatSync } from 'node:fs'
import { readFile, readdir, stat, open } from 'node:fs/promises'
import { join } from 'node:path'
import { invalid } from './errors.js'
import { lastNoteInTail, parseCheckpoint, splitCheckpointNotes, type Checkpoint } from './checkpoint.js'
import { HashesFileReader, STREAM_RE, listSegments, readRetentionLog, recordSeq, segmentLineBatches, streamPaths, type StreamPaths } from './layout.js'
import { HASH_SIZE, consistencyProof, inclusionProof, storedHashIndex, treeRoot, treeSizeForStoredCount } from './tree.js'

/**
 * An event's timestamp is taken when its decision starts, and its record is written after that
 * (sync: before the answer; batched/async: within a batch interval — longer only while failing
 * disk writes are retried). So for every record, timestamp ≤ write time ≤ timestamp + this
 * slack, and records are written in seq order. Hence a segment whose successor's first record
 * is stamped more than the slack before `from` holds nothing at or after `from`, and nothing
 * from a segment whose first record is stamped more than the slack after `to` on is before
 * `to`. An event written more than an hour after its decision (a disk failing that long in
 * batched or async mode, or the clock stepped back that far) can be missed by a time-bounded
 * export; an export without from/to reads everything (docs/audit.md "Export").
 */
export const TIME_SLACK_MS = 60 * 60 * 1000

export interface StreamReader {
  readonly id: string
  /** Records hashed into the tree so far (the hashes file, read whole hashes only). */
  treeSize: () => Promise<number>
  /** Every checkpoint, oldest first (parsed, signatures not checked). */
  checkpoints: () => Promise<Checkpoint[]>
  latestCheckpoint: () => Promise<Checkpoint | undefined>
  /** Records with fromSeq ≤ seq < toSeq (toSeq: to the end), streamed; ranges removed by retention are skipped. */
  records: (fromSeq: number, toSeq?: number) => AsyncIterable<{ seq: number, bytes: Buffer }>
  rootAt: (n: number) => Promise<Buffer>
  /** The stored leaf hash of record `seq` (one 32-byte positional read of the hashes file). */
  storedLeaf: (seq: number) => Promise<Buffer>
  /**
   * Whether retention.log records the removal of every seq in [fromSeq, toSeq): a hole in the
   * records that it does not explain was made by someone else (a malformed retention.log
   * explains nothing).
   */
  retentionCovers: (fromSeq: number, toSeq: number) => Promise<boolean>
  inclusionProof: (seq: number, n: number) => Promise<Buffer[]>
  consistencyProof: (m: number, n: number) => Promise<Buffer[]>
  /**
   * A seq to start reading from for records at or after `time`: the first seq of the last segment
   * whose first record is not newer than `time` minus `slackMs` (events are written in about, not
   * exactly, timestamp order). Conservative: callers still filter each record by its timestamp.
   */
  findSeqAt: (time: Date, slackMs?: number) => Promise<number>
  /**
   * The seq range [from, to) of the first `size` records that can hold records stamped in
   * [fromMs, toMs): from findSeqAt(fromMs), up to the first later segment whose first record is
   * stamped more than the slack after `toMs`. Conservative too: every time-bounded reader (the
   * export, replay) reads exactly this range and still filters each record by its timestamp.
   */
  seqRange: (range: { fromMs: number, toMs: number }, size: number) => Promise<[number, number]>
  /** Releases the hashes file descriptor (reopened on the next call). */
  close: () => void
}

export class AuditDirReader {
  private readonly readers = new Map<string, FileStreamReader>()

  private constructor (readonly dir: string, private readonly ids: string[]) {}

  /** Opens an audit directory: every subdirectory with a `segments` folder is a stream. */
  static async open (dir: string): Promise<AuditDirReader> {
    let entries
    try { entries = await readdir(dir, { withFileTypes: true }) } catch (err) {
      throw invalid(`cannot read audit directory ${dir}: ${(err as Error).message}`, { dir })
    }
    const ids: string[] = []
    for (const e of entries) {
      if (!e.isDirectory() || !STREAM_RE.test(e.name)) continue
      try { if ((await stat(join(dir, e.name, 'segments'))).isDirectory()) ids.push(e.name) } catch { /* not a stream */ }
    }
    return new AuditDirReader(dir, ids.sort())
  }

  streams (): string[] { return [...this.ids] }

  stream (id: string): StreamReader {
    if (!this.ids.includes(id)) throw invalid(`no audit stream ${JSON.stringify(id)} in ${this.dir}`, { stream: id })
    let r = this.readers.get(id)
    if (r === undefined) { r = new FileStreamReader(this.dir, id); this.readers.set(id, r) }
    return r
  }

  close (): void {
    for (const r of this.readers.values()) r.close()
  }
}

class FileStreamReader implements StreamReader {
  private readonly paths: StreamPaths
  private fd: number | undefined

  constructor (dir: string, readonly id: string) {
    this.paths = streamPaths(dir, id)
  }

  private hashesFd (): number {
    if (this.fd === undefined) {
      try { this.fd = openSync(this.paths.hashes, 'r') } catch (err) {
        throw invalid(`audit stream ${this.id} has no hashes file: ${(err as Error).message}`, { stream: this.id })
      }
    }
    return this.fd
  }

  close (): void {
    if (this.fd !== undefined) { closeSync(this.fd); this.fd = undefined }
  }

  async treeSize (): Promise<number> {
    return treeSizeForStoredCount(Math.floor(fstatSync(this.hashesFd()).size / HASH_SIZE))
  }

  async checkpoints (): Promise<Checkpoint[]> {
    let text: string
    try { text = await readFile(this.paths.checkpoints, 'utf8') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    return splitCheckpointNotes(text).notes.map(({ note }) => {
      const c = parseCheckpoint(note)
      return { origin: c.origin, size: c.size, root: c.root, note: c.note }
    })
  }

  async latestCheckpoint (): Promise<Checkpoint | undefined> {
    let fh
    try { fh = await open(this.paths.checkpoints, 'r') } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const len = (await fh.stat()).size
      for (let window = Math.min(len, 4096); ; window = Math.min(len, window * 4)) {
        const buf = Buffer.alloc(window)
        await fh.read(buf, 0, window, len - window)
        const found = lastNoteInTail(buf.toString('latin1'))
        if (found !== undefined && (found.start > 0 || window === len)) {
          const c = parseCheckpoint(found.note)
          return { origin: c.origin, size: c.size, root: c.root, note: c.note }
        }
        if (window === len) return undefined
      }
    } finally { await fh.close() }
  }

  async * records (fromSeq: number, toSeq = Number.MAX_SAFE_INTEGER): AsyncIterable<{ seq: number, bytes: Buffer }> {
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) throw invalid(`record range start ${fromSeq} is not a seq`)
    const segs = await listSegments(this.paths.segments)
    let i = segs.length - 1
    while (i > 0 && (segs[i]?.first ?? 0) > fromSeq) i--
    for (; i >= 0 && i < segs.length; i++) {
      const s = segs[i] as (typeof segs)[number]
      if (s.first >= toSeq) return
      for await (const batch of segmentLineBatches(join(this.paths.segments, s.name))) {
        for (const line of batch.lines) {
          const seq = recordSeq(line)
          if (seq < fromSeq) continue
          if (seq >= toSeq) return
          yield { seq, bytes: line }
        }
      }
    }
  }

  async findSeqAt (time: Date, slackMs = TIME_SLACK_MS): Promise<number> {
    const limit = time.getTime() - slackMs
    const segs = await listSegments(this.paths.segments)
    let start = segs[0]?.first ?? 0
    for (const s of segs) {
      const first = await firstRecordStamp(join(this.paths.segments, s.name))
      if (first === undefined || first.gap) continue // a segment starting with a gap record: undecided, keep the earlier start
      if (first.ms > limit) break
      start = s.first
    }
    return start
  }

  async seqRange (range: { fromMs: number, toMs: number }, size: number): Promise<[number, number]> {
    const start = range.fromMs === Number.NEGATIVE_INFINITY ? 0 : await this.findSeqAt(new Date(range.fromMs), TIME_SLACK_MS)
    if (range.toMs === Number.POSITIVE_INFINITY) return [start, size]
    for (const seg of await listSegments(this.paths.segments)) {
      if (seg.first <= start) continue
      if (seg.first >= size) break
      // a gap record is stamped by its first shed event
      const first = await firstRecordStamp(join(this.paths.segments, seg.name))
      if (first !== undefined && first.ms - TIME_SLACK_MS >= range.toMs) return [start, seg.first]
    }
    return [start, size]
  }

  private checkSize (n: number, what: string): HashesFileReader {
    const fd = this.hashesFd()
    const size = treeSizeForStoredCount(Math.floor(fstatSync(fd).size / HASH_SIZE))
    if (!Number.isSafeInteger(n) || n < 0 || n > size) throw invalid(`${what}: tree size ${n} is beyond the stream's ${size}`, { stream: this.id, size })
    return new HashesFileReader(fd)
  }

  async storedLeaf (seq: number): Promise<Buffer> {
    if (!Number.isSafeInteger(seq) || seq < 0) throw invalid(`stored leaf: ${seq} is not a seq`, { stream: this.id })
    const reader = this.checkSize(seq + 1, 'stored leaf')
    return reader.readHashes([storedHashIndex(0, seq)])[0] as Buffer
  }

  async retentionCovers (fromSeq: number, toSeq: number): Promise<boolean> {
    const { entries, invalid: bad } = await readRetentionLog(this.paths.retention)
    if (bad !== undefined) return false
    // removals are of whole segments, oldest first: walk them in seq order from fromSeq (bounded by the entries)
    let next = fromSeq
    for (const e of [...entries].sort((a, b) => a.first_seq - b.first_seq)) {
      if (next >= toSeq) break
      if (e.first_seq <= next && e.last_seq >= next) next = e.last_seq + 1
    }
    return next >= toSeq
  }

  async rootAt (n: number): Promise<Buffer> {
    return treeRoot(n, this.checkSize(n, 'root'))
  }

  async inclusionProof (seq: number, n: number): Promise<Buffer[]> {
    const reader = this.checkSize(n, 'inclusion proof')
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= n) throw invalid(`inclusion proof: seq ${seq} is not in a tree of size ${n}`, { stream: this.id })
    return inclusionProof(seq, n, reader)
  }

  async consistencyProof (m: number, n: number): Promise<Buffer[]> {
    const reader = this.checkSize(n, 'consistency proof')
    if (!Number.isSafeInteger(m) || m < 0 || m > n) throw invalid(`consistency proof: size ${m} is not within ${n}`, { stream: this.id })
    return consistencyProof(m, n, reader)
  }
}

/** Longest first record read to learn a segment's time (a longer one: the segment is never skipped). */
const FIRST_RECORD_MAX_BYTES = 16 * 1024 * 1024

/**
 * The time (ms) of a segment's first record: its `timestamp`, or for a gap record its
 * `first_shed_at` (`gap` set); undefined when it cannot be read (callers then never skip).
 */
async function firstRecordStamp (path: string): Promise<{ ms: number, gap: boolean } | undefined> {
  let fh
  try { fh = await open(path, 'r') } catch { return undefined }
  try {
    for (let size = 64 * 1024; size <= FIRST_RECORD_MAX_BYTES; size *= 4) {
      const buf = Buffer.allocUnsafe(size)
      const { bytesRead } = await fh.read(buf, 0, size, 0)
      const nl = buf.subarray(0, bytesRead).indexOf(10)
      if (nl < 0) {
        if (bytesRead < size) return undefined
        continue
      }
      try {
        const r = JSON.parse(buf.subarray(0, nl).toString('utf8')) as Record<string, unknown>
        const gap = r.type === 'gap'
        const t = gap ? r.first_shed_at : r.timestamp
        const ms = typeof t === 'string' ? Date.parse(t) : Number.NaN
        return Number.isFinite(ms) ? { ms, gap } : undefined
      } catch { return undefined }
    }
    return undefined
  } finally { await fh.close() }
}
