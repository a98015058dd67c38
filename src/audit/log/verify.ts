/**
 * Offline verification of an audit directory: every stream's records against its stored
 * hashes, the stored interior hashes against their recomputation, every checkpoint's root
 * against the recomputed tree and its signature against the pinned (or the directory's own)
 * public key. One pass over records and hashes, both read sequentially; seqs come from the
 * fixed `{"seq":N,` prefix, never from parsing the event. Reports the first problem per stream
 * with a stable code (docs/audit.md "Verify").
 */
import { existsSync, fstatSync, openSync, closeSync, readSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { PortcullisError } from '../../errors.js'
import { parseCheckpoint, splitCheckpointNotes, verifyCheckpoint } from './checkpoint.js'
import { HashesFileReader, listSegments, readRetentionLog, recordSeq, segmentLineBatches, streamPaths, type RetentionEntry } from './layout.js'
import { AuditDirReader } from './reader.js'
import { CompactRange, HASH_SIZE, consistencyProof, leafHash, storedHashCount, treeSizeForStoredCount, verifyConsistency } from './tree.js'

export type VerifyProblemCode =
  | 'EVENT_MODIFIED' // a record's leaf hash differs from the stored leaf hash at its seq
  | 'EVENT_DELETED' // a seq is missing inside a segment
  | 'EVENT_INSERTED' // a duplicate or earlier seq, or a segment overlapping the previous one
  | 'EVENT_REORDERED' // seq i+1 stands before seq i
  | 'SEGMENT_MISSING' // a seq range between segments that retention.log does not explain
  | 'TAIL_TRUNCATED' // fewer records than the hashes file or the latest checkpoint covers
  | 'HASHES_TAMPERED' // a stored interior hash differs from its recomputation
  | 'RECORD_MALFORMED' // a line that does not start with {"seq":N
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_ROOT_MISMATCH' // a checkpoint's root differs from the recomputed root of its size
  | 'CHECKPOINTS_INCONSISTENT' // a later checkpoint does not extend an earlier one
  | 'STREAM_UNREADABLE'

export interface VerifyProblem {
  code: VerifyProblemCode
  message: string
  seq?: number
  segment?: string
  /** Byte offset of the record in its segment. */
  offset?: number
  /** 0-based index of the checkpoint in the stream's checkpoints file. */
  checkpoint?: number
  /** Index of a stored hash in the hashes file (HASHES_TAMPERED). */
  hashIndex?: number
}

export interface StreamReport {
  stream: string
  /** Tree size: records proven by the verified tree (present or removed by retention). */
  events: number
  /** Records read from segments. */
  records: number
  segments: number
  checkpoints: number
  /** Whose key checked the checkpoint signatures. */
  signatures: 'pinned' | 'directory' | 'unverified'
  retained: Array<{ first_seq: number, last_seq: number, segment: string, removed_at: string }>
  /** Whole records past the hashed tree (a live writer, or a crash the writer repairs on open). */
  unhashedRecords: number
  problem?: VerifyProblem
}

export interface VerifyReport {
  ok: boolean
  key: { source: 'pinned' | 'directory' | 'none', file?: string }
  streams: StreamReport[]
  warnings: string[]
}

export interface VerifyOptions {
  /** The auditor's pinned checkpoint public key (PEM). */
  publicKeyPem?: string
  /** Called as records are checked (about every 1000, and once per stream at its end): records checked so far, all streams. */
  onProgress?: (recordsChecked: number) => void
}

class Problem extends Error {
  constructor (readonly problem: VerifyProblem) { super(problem.message) }
}

function fail (p: VerifyProblem): never { throw new Problem(p) }

/** Sequential reader of the hashes file (1 MiB at a time). */
class HashCursor {
  private buf = Buffer.alloc(0)
  private at = 0
  private filePos = 0
  index = 0
  constructor (private readonly fd: number) {}

  next (): Buffer {
    if (this.at + HASH_SIZE > this.buf.length) {
      const chunk = Buffer.allocUnsafe(1 << 20)
      const got = readSync(this.fd, chunk, 0, chunk.length, this.filePos)
      this.filePos += got
      this.buf = Buffer.concat([this.buf.subarray(this.at), chunk.subarray(0, got)])
      this.at = 0
      if (this.buf.length < HASH_SIZE) throw new Error('hashes file ended early')
    }
    const h = this.buf.subarray(this.at, this.at + HASH_SIZE)
    this.at += HASH_SIZE
    this.index++
    return h
  }
}

export async function verifyAuditDir (dir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const warnings: string[] = []
  let key: KeyObject | undefined
  let keyInfo: VerifyReport['key'] = { source: 'none' }
  if (opts.publicKeyPem !== undefined) {
    try { key = createPublicKey(opts.publicKeyPem) } catch (err) {
      throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `the checkpoint public key is not a PEM public key: ${(err as Error).message}`)
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', 'the checkpoint public key must be Ed25519')
    keyInfo = { source: 'pinned' }
  } else {
    const file = join(dir, 'checkpoint-key.pub.pem')
    if (existsSync(file)) {
      key = createPublicKey(await readFile(file, 'utf8'))
      keyInfo = { source: 'directory', file }
      warnings.push(`checkpoint signatures checked with ${file}, the key stored beside the log: only a key pinned by the auditor (--key) proves who signed them`)
    } else {
      warnings.push('no checkpoint public key (--key) and none in the directory: checkpoint signatures are unverified, only the tree is checked')
    }
  }
  const dirReader = await AuditDirReader.open(dir)
  const streams: StreamReport[] = []
  let checkedBefore = 0
  for (const id of dirReader.streams()) {
    const progress = opts.onProgress === undefined ? undefined : (n: number): void => opts.onProgress?.(checkedBefore + n)
    const r = await verifyStream(dir, id, key, keyInfo.source, warnings, progress)
    checkedBefore += r.records
    opts.onProgress?.(checkedBefore)
    streams.push(r)
  }
  if (streams.length === 0) warnings.push(`no audit streams in ${dir}`)
  return { ok: streams.length > 0 && streams.every((s) => s.problem === undefined), key: keyInfo, streams, warnings }
}

async function verifyStream (dir: string, id: string, key: KeyObject | undefined, source: VerifyReport['key']['source'], warnings: string[], onProgress?: (records: number) => void): Promise<StreamReport> {
  const paths = streamPaths(dir, id)
  const report: StreamReport = {
    stream: id, events: 0, records: 0, segments: 0, checkpoints: 0,
    signatures: key === undefined ? 'unverified' : source === 'pinned' ? 'pinned' : 'directory',
    retained: [], unhashedRecords: 0,
  }
  let fd: number | undefined
  try {
    // checkpoints: well-formed, signed, in order
    let text = ''
    try { text = await readFile(paths.checkpoints, 'utf8') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    const split = splitCheckpointNotes(text)
    if (split.torn !== undefined) warnings.push(`${id}: the checkpoints file ends in a torn note at byte ${split.torn.offset} (a crash while writing it; the writer truncates it on open)`)
    const cps = split.notes.map((n, i) => {
      try { return parseCheckpoint(n.note) } catch (err) {
        return fail({ code: 'CHECKPOINT_MALFORMED', checkpoint: i, message: `checkpoint ${i} is malformed: ${(err as Error).message}` })
      }
    })
    report.checkpoints = cps.length
    cps.forEach((c, i) => {
      if (key !== undefined && !verifyCheckpoint(c.note, key)) fail({ code: 'CHECKPOINT_SIGNATURE_INVALID', checkpoint: i, message: `checkpoint ${i} (size ${c.size}) has no valid signature by the ${source} key` })
      const prev = cps[i - 1]
      if (prev !== undefined && (c.size < prev.size || (c.size === prev.size && !c.root.equals(prev.root)))) {
        fail({ code: 'CHECKPOINTS_INCONSISTENT', checkpoint: i, message: `checkpoint ${i} (size ${c.size}) does not extend checkpoint ${i - 1} (size ${prev.size})` })
      }
    })

    const retention = await readRetentionLog(paths.retention)
    const retainedAt = new Map<number, RetentionEntry>(retention.map((e) => [e.first_seq, e]))

    try { fd = openSync(paths.hashes, 'r') } catch (err) {
      fail({ code: 'STREAM_UNREADABLE', message: `cannot open the hashes file: ${(err as Error).message}` })
    }
    const { size: hashesBytes } = fstatSync(fd)
    const storedCount = Math.floor(hashesBytes / HASH_SIZE)
    const treeSize = treeSizeForStoredCount(storedCount)
    if (storedHashCount(treeSize) * HASH_SIZE !== hashesBytes) warnings.push(`${id}: the hashes file has ${hashesBytes - storedHashCount(treeSize) * HASH_SIZE} bytes past tree size ${treeSize} (a live writer, or a crash the writer repairs on open)`)
    const cursor = new HashCursor(fd)
    const range = new CompactRange()
    const cpSizes = new Set(cps.map((c) => c.size))
    let ci = 0
    const checkCheckpoints = (): void => {
      while (ci < cps.length && (cps[ci]?.size ?? 0) <= range.size) {
        const c = cps[ci] as (typeof cps)[number]
        if (c.size === range.size) {
          const root = range.root()
          if (!root.equals(c.root)) fail({ code: 'CHECKPOINT_ROOT_MISMATCH', checkpoint: ci, seq: c.size, message: `checkpoint ${ci} (size ${c.size}) has root ${c.root.toString('base64')}, the records give ${root.toString('base64')}` })
        }
        ci++
      }
    }
    checkCheckpoints()

    /** Adds leaf `seq` to the recomputed tree: from its record, or (retained) from the stored leaf hash. */
    const addLeaf = (seq: number, line: Buffer | undefined, segment: string | undefined, offset: number | undefined): void => {
      if (seq >= treeSize) { report.unhashedRecords++; return }
      const storedLeaf = cursor.next()
      const leaf = line === undefined ? Buffer.from(storedLeaf) : leafHash(line)
      if (line !== undefined && !leaf.equals(storedLeaf)) fail({ code: 'EVENT_MODIFIED', seq, segment, offset, message: `record ${seq} does not match its stored leaf hash: the event was modified` })
      const computed = range.append(leaf)
      for (let level = 1; level < computed.length; level++) {
        const stored = cursor.next()
        if (!stored.equals(computed[level] as Buffer)) {
          fail({ code: 'HASHES_TAMPERED', seq, hashIndex: cursor.index - 1, message: `stored hash ${cursor.index - 1} (level ${level}, completed by seq ${seq}) differs from its recomputation: the hashes file was modified` })
        }
      }
      if (cpSizes.has(range.size)) checkCheckpoints()
    }

    const segs = await listSegments(paths.segments)
    report.segments = segs.length
    let expected = 0
    let suspect: VerifyProblem | undefined
    for (let si = 0; si < segs.length; si++) {
      const s = segs[si] as (typeof segs)[number]
      // the range between the previous segment and this one must be removed by retention
      while (expected < s.first && suspect === undefined) {
        const r = retainedAt.get(expected)
        if (r === undefined || r.last_seq >= s.first) {
          fail({ code: 'SEGMENT_MISSING', seq: expected, segment: s.name, message: `records ${expected}..${s.first - 1} are missing before segment ${s.name} and retention.log does not record their removal` })
        }
        report.retained.push({ first_seq: r.first_seq, last_seq: r.last_seq, segment: r.segment, removed_at: r.removed_at })
        for (let seq = r.first_seq; seq <= r.last_seq; seq++) addLeaf(seq, undefined, undefined, undefined)
        expected = r.last_seq + 1
      }
      if (s.first < expected && suspect === undefined) fail({ code: 'EVENT_INSERTED', seq: s.first, segment: s.name, message: `segment ${s.name} starts at seq ${s.first}, inside records already seen (up to ${expected - 1})` })
      const last = si === segs.length - 1
      for await (const batch of segmentLineBatches(join(paths.segments, s.name))) {
        if (batch.partial !== undefined) {
          if (!last) fail({ code: 'RECORD_MALFORMED', seq: expected, segment: s.name, message: `segment ${s.name} ends without a newline but is not the last segment` })
          warnings.push(`${id}: segment ${s.name} ends in ${batch.partial.length} bytes without a newline (a live writer, or a torn record the writer truncates on open)`)
          continue
        }
        const { lines, offsets } = batch
        for (let li = 0; li < lines.length; li++) {
          const line = lines[li] as Buffer
          const offset = offsets[li] as number
          const seq = recordSeq(line)
          if (suspect !== undefined) {
            // seq expected+1 came where `expected` was due: reordered if `expected` follows right after
            if (seq === suspect.seq) fail({ ...suspect, code: 'EVENT_REORDERED', message: `record ${suspect.seq} stands after record ${suspect.seq + 1}: the records were reordered` })
            fail(suspect)
          }
          if (seq < 0) fail({ code: 'RECORD_MALFORMED', seq: expected, segment: s.name, offset, message: `the line at byte ${offset} of ${s.name} is not a record ({"seq":N,...})` })
          if (seq < expected) fail({ code: 'EVENT_INSERTED', seq: expected, segment: s.name, offset, message: `a record with seq ${seq} stands where seq ${expected} was due: a record was inserted or duplicated` })
          if (seq > expected) {
            suspect = { code: 'EVENT_DELETED', seq: expected, segment: s.name, offset, message: `records ${expected}..${seq - 1} are missing inside segment ${s.name}: deleted` }
            continue
          }
          report.records++
          if (onProgress !== undefined && report.records % 1000 === 0) onProgress(report.records)
          addLeaf(seq, line, s.name, offset)
          expected++
        }
      }
    }
    if (suspect !== undefined) fail(suspect)
    if (expected < treeSize) fail({ code: 'TAIL_TRUNCATED', seq: expected, message: `the records end at seq ${expected} but the hashes file holds ${treeSize}: the tail was truncated` })
    const pastRecords = cps.findIndex((c) => c.size > expected)
    if (pastRecords >= 0) fail({ code: 'TAIL_TRUNCATED', seq: expected, checkpoint: pastRecords, message: `the records end at seq ${expected} but checkpoint ${pastRecords} covers ${cps[pastRecords]?.size ?? 0}: the tail was truncated` })
    const pastTree = cps.findIndex((c) => c.size > range.size)
    if (pastTree >= 0) fail({ code: 'HASHES_TAMPERED', seq: range.size, checkpoint: pastTree, hashIndex: storedHashCount(range.size), message: `the hashes file ends at tree size ${range.size} but checkpoint ${pastTree} covers ${cps[pastTree]?.size ?? 0}: the hashes file was truncated` })
    // every checkpoint root was matched against the one recomputed tree, so consecutive checkpoints
    // are consistent; prove it the way an auditor holding only two checkpoints would
    for (let i = 1; i < cps.length; i++) {
      const a = cps[i - 1] as (typeof cps)[number]
      const b = cps[i] as (typeof cps)[number]
      if (a.size === b.size) continue
      const proof = consistencyProof(a.size, b.size, new HashesFileReader(fd))
      if (!verifyConsistency(a.size, b.size, a.root, b.root, proof)) {
        fail({ code: 'CHECKPOINTS_INCONSISTENT', checkpoint: i, message: `checkpoint ${i} (size ${b.size}) is not consistent with checkpoint ${i - 1} (size ${a.size})` })
      }
    }
    report.events = Math.min(treeSize, expected)
  } catch (err) {
    if (err instanceof Problem) report.problem = err.problem
    else report.problem = { code: 'STREAM_UNREADABLE', message: (err as Error).message }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  return report
}
