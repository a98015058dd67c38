/**
 * Offline verification of an audit directory: every stream's records against its stored
 * hashes, the stored interior hashes against their recomputation, every checkpoint's root
 * against the recomputed tree and its signature against the pinned (or the directory's own)
 * public key. One pass over records and hashes, both read sequentially; seqs come from the
 * fixed `{"seq":N,` prefix, never from parsing the event. Reports the first problem per stream
 * with a stable code (docs/audit.md "Verify").
 */
export { DEFAULT_MAX_UNSEALED, type StreamReport, type VerifyOptions, type VerifyProblem, type VerifyProblemCode, type VerifyReport } from './verify-report.js'
import { existsSync, fstatSync, openSync, closeSync, readSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { KeyObject } from 'node:crypto'
import { PortcullisError } from '../../errors.js'
import { parseCheckpoint, parseCheckpointPublicKey, signedByAny, splitCheckpointNotes } from './checkpoint.js'
import { HashesFileReader, STREAM_RE, listSegments, readRetentionLog, recordSeq, segmentLineBatches, streamPaths, type RetentionEntry } from './layout.js'
import { compareUtf8 } from '../../canonical-json.js'
import { AuditDirReader } from './reader.js'
import { DEFAULT_MAX_UNSEALED, type StreamReport, type VerifyOptions, type VerifyProblem, type VerifyReport } from './verify-report.js'
import { CompactRange, HASH_SIZE, consistencyProof, leafHash, storedHashCount, treeRoot, treeSizeForStoredCount, verifyConsistency } from './tree.js'

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
  let keys: KeyObject[] = []
  let keyInfo: VerifyReport['key'] = { source: 'none' }
  const pinned = opts.publicKeyPem === undefined ? [] : typeof opts.publicKeyPem === 'string' ? [opts.publicKeyPem] : opts.publicKeyPem
  if (pinned.length > 0) {
    keys = pinned.map((pem, i) => parseCheckpointPublicKey(pem, pinned.length > 1 ? `pinned checkpoint public key ${i + 1}` : undefined))
    keyInfo = { source: 'pinned', ...(keys.length > 1 ? { keys: keys.length } : {}) }
  } else {
    const file = join(dir, 'checkpoint-key.pub.pem')
    if (existsSync(file)) {
      keys = [parseCheckpointPublicKey(await readFile(file, 'utf8'), file)]
      keyInfo = { source: 'directory', file }
      warnings.push(`checkpoint signatures checked with ${file}, the key stored beside the log: only a key pinned by the auditor (--key) proves who signed them`)
    } else {
      warnings.push('no checkpoint public key (--key) and none in the directory: checkpoint signatures are unverified, only the tree is checked')
    }
  }
  const dirReader = await AuditDirReader.open(dir)
  const ids = dirReader.streams()
  const { kept, unmatched } = await keptByStream(dir, ids, opts.keptCheckpoints ?? [])
  const streams: StreamReport[] = []
  let checkedBefore = 0
  for (const id of ids) {
    const progress = opts.onProgress === undefined ? undefined : (n: number): void => opts.onProgress?.(checkedBefore + n)
    const r = await verifyStream(dir, id, keys, keyInfo.source, warnings, { ...opts, keptCheckpoints: kept.get(id) ?? [], ...(progress !== undefined ? { onProgress: progress } : {}) })
    checkedBefore += r.records
    opts.onProgress?.(checkedBefore)
    streams.push(r)
  }
  // A stream directory whose signed checkpoints or hashes remain while its segments folder is
  // gone is a stream whose records were removed, not a directory to pass over silently.
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!e.isDirectory() || !STREAM_RE.test(e.name) || ids.includes(e.name)) continue
    const p = streamPaths(dir, e.name)
    if (!existsSync(p.checkpoints) && !existsSync(p.hashes)) continue
    streams.push({
      stream: e.name, events: 0, records: 0, segments: 0, checkpoints: 0, signatures: keys.length === 0 ? 'unverified' : keyInfo.source === 'pinned' ? 'pinned' : 'directory', retained: [], unhashedRecords: 0,
      problem: { code: 'SEGMENT_MISSING', seq: 0, message: `stream ${e.name} has ${existsSync(p.checkpoints) ? 'checkpoints' : 'stored hashes'} but no segments folder: its records were removed` },
    })
  }
  streams.sort((a, b) => compareUtf8(a.stream, b.stream))
  if (streams.length === 0) warnings.push(`no audit streams in ${dir}`)
  const problems = unmatched
  return { ok: streams.length > 0 && problems.length === 0 && streams.every((s) => s.problem === undefined), key: keyInfo, streams, problems, warnings }
}

/**
 * retention.log as one contiguous run of removals from seq 0, keyed by first seq. The writer
 * only ever removes the oldest segments, so any other shape (a hole, an entry not starting at 0)
 * is RETENTION_INVALID; an entry logged twice (a crash between logging and removing) is one.
 */
async function retentionRun (path: string): Promise<Map<number, RetentionEntry>> {
  const { entries, invalid } = await readRetentionLog(path)
  if (invalid !== undefined) fail({ code: 'RETENTION_INVALID', message: `retention.log line ${invalid.line} is not a retention entry: ${invalid.message}` })
  const byFirst = new Map<number, RetentionEntry>()
  for (const e of entries) {
    const seen = byFirst.get(e.first_seq)
    if (seen === undefined) { byFirst.set(e.first_seq, e); continue }
    if (seen.last_seq !== e.last_seq || seen.first_leaf_hash !== e.first_leaf_hash || seen.last_leaf_hash !== e.last_leaf_hash) {
      fail({ code: 'RETENTION_INVALID', seq: e.first_seq, segment: e.segment, message: `retention.log has two different entries for the segment starting at seq ${e.first_seq}` })
    }
  }
  let next = 0
  for (const e of [...byFirst.values()].sort((a, b) => a.first_seq - b.first_seq)) {
    if (e.first_seq !== next) fail({ code: 'RETENTION_INVALID', seq: next, segment: e.segment, message: `retention.log entries are not one contiguous run from seq 0 (next expected ${next}, found ${e.first_seq}): retention removes only the oldest segments` })
    next = e.last_seq + 1
  }
  return byFirst
}

/**
 * Which stream each kept checkpoint belongs to: the stream whose own checkpoints name exactly its
 * origin (origins are per stream, `<prefix>/<stream>`), else a stream with no checkpoints left
 * whose id ends the origin (its checkpoints were deleted: the stream's own checks report it). A
 * kept checkpoint that fits no stream is a verification failure, KEPT_CHECKPOINT_UNMATCHED: the
 * stream it sealed was deleted, or replaced by another log (another replica's, another
 * stream's). A kept note that is not a checkpoint at all is a usage error (PORTCULLIS_AUDIT_INVALID).
 */
async function keptByStream (dir: string, ids: string[], notes: string[]): Promise<{ kept: Map<string, string[]>, unmatched: VerifyProblem[] }> {
  const kept = new Map<string, string[]>()
  const unmatched: VerifyProblem[] = []
  if (notes.length === 0) return { kept, unmatched }
  const origins = new Map<string, string>()
  const withoutCheckpoints = new Set<string>()
  for (const id of ids) {
    let text = ''
    try { text = await readFile(streamPaths(dir, id).checkpoints, 'utf8') } catch { /* none */ }
    const first = splitCheckpointNotes(text).notes[0]
    if (first === undefined) { withoutCheckpoints.add(id); continue }
    // the first note's origin: a stream whose notes disagree fails its own origin check
    try { origins.set(parseCheckpoint(first.note).origin, id) } catch { /* reported by the stream's own check */ }
  }
  for (const [i, note] of notes.entries()) {
    let c
    try { c = parseCheckpoint(note) } catch (err) {
      throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `the kept checkpoint is not a checkpoint note: ${(err as Error).message}`)
    }
    const id = origins.get(c.origin) ?? [...withoutCheckpoints].find((s) => c.origin.endsWith(`/${s}`))
    if (id === undefined) {
      unmatched.push({ code: 'KEPT_CHECKPOINT_UNMATCHED', checkpoint: i, seq: c.size, message: `kept checkpoint ${i} (origin ${JSON.stringify(c.origin)}, size ${c.size}) belongs to no stream of ${dir}: the stream it sealed was deleted, or replaced by another log` })
      continue
    }
    kept.set(id, [...(kept.get(id) ?? []), note])
  }
  return { kept, unmatched }
}

/** Whether `origin` is the expected one (`--origin`): equal, or below it (`<expected>/…`). */
export function originMatches (origin: string, expected: string): boolean {
  if (expected === '') return false
  return origin === expected || origin.startsWith(expected.endsWith('/') ? expected : `${expected}/`)
}

async function verifyStream (dir: string, id: string, keys: KeyObject[], source: VerifyReport['key']['source'], warnings: string[], opts: VerifyOptions): Promise<StreamReport> {
  const onProgress = opts.onProgress
  const paths = streamPaths(dir, id)
  const report: StreamReport = {
    stream: id, events: 0, records: 0, segments: 0, checkpoints: 0,
    signatures: keys.length === 0 ? 'unverified' : source === 'pinned' ? 'pinned' : 'directory',
    retained: [], unhashedRecords: 0,
  }
  let fd: number | undefined
  try {
    // checkpoints: well-formed, signed, in order
    let text = ''
    try { text = await readFile(paths.checkpoints, 'utf8') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    const split = splitCheckpointNotes(text)
    // a half note is not a checkpoint: a crash while writing it (the writer truncates it on open),
    // or a note cut to hide what it signed — either way not a log that verifies as it is
    if (split.torn !== undefined) fail({ code: 'CHECKPOINT_MALFORMED', checkpoint: split.notes.length, message: `the checkpoints file ends in a torn note at byte ${split.torn.offset} (a crash while writing it, repaired when the writer opens the stream, or a cut note)` })
    const cps = split.notes.map((n, i) => {
      try { return parseCheckpoint(n.note) } catch (err) {
        return fail({ code: 'CHECKPOINT_MALFORMED', checkpoint: i, message: `checkpoint ${i} is malformed: ${(err as Error).message}` })
      }
    })
    report.checkpoints = cps.length
    const origin = cps[0]?.origin
    if (origin !== undefined) report.origin = origin
    cps.forEach((c, i) => {
      if (c.origin !== origin) fail({ code: 'CHECKPOINT_ORIGIN_MISMATCH', checkpoint: i, message: `checkpoint ${i} names origin ${JSON.stringify(c.origin)}, the stream's checkpoints ${JSON.stringify(origin)}` })
    })
    // the auditor's kept checkpoints: signed by the key, same log
    const kept = (opts.keptCheckpoints ?? []).map((note, i) => {
      const c = parseCheckpoint(note)
      if (!signedByAny(note, keys)) fail({ code: 'KEPT_CHECKPOINT_INCONSISTENT', message: `kept checkpoint ${i} (size ${c.size}) has no valid signature by the ${keys.length === 0 ? 'missing' : source} key${keys.length > 1 ? 's' : ''}` })
      if (origin !== undefined && c.origin !== origin) fail({ code: 'CHECKPOINT_ORIGIN_MISMATCH', message: `kept checkpoint ${i} names origin ${JSON.stringify(c.origin)}, the stream's checkpoints ${JSON.stringify(origin)}` })
      return c
    })
    cps.forEach((c, i) => {
      if (keys.length > 0 && !signedByAny(c.note, keys)) fail({ code: 'CHECKPOINT_SIGNATURE_INVALID', checkpoint: i, message: `checkpoint ${i} (size ${c.size}) has no valid signature by the ${source} key${keys.length > 1 ? ' or any other pinned key' : ''}` })
      const prev = cps[i - 1]
      if (prev !== undefined && (c.size < prev.size || (c.size === prev.size && !c.root.equals(prev.root)))) {
        fail({ code: 'CHECKPOINTS_INCONSISTENT', checkpoint: i, message: `checkpoint ${i} (size ${c.size}) does not extend checkpoint ${i - 1} (size ${prev.size})` })
      }
    })
    // whose log this is, as signed: the writer's origin is `<prefix>/<stream>` (the prefix names
    // the instance: the configured origin, else the host name), so a stream directory holding
    // another stream's log fails here, and another replica's log fails the auditor's --origin
    if (origin !== undefined && !origin.endsWith(`/${id}`)) fail({ code: 'CHECKPOINT_ORIGIN_MISMATCH', checkpoint: 0, message: `the checkpoints of stream ${id} name origin ${JSON.stringify(origin)}, which does not end in /${id}: the log of another stream (or written before origins ended in the stream)` })
    if (opts.expectedOrigin !== undefined) {
      if (origin === undefined) warnings.push(`${id}: no checkpoint, so no signed origin to compare with the expected ${JSON.stringify(opts.expectedOrigin)}`)
      else if (!originMatches(origin, opts.expectedOrigin)) fail({ code: 'ORIGIN_UNEXPECTED', checkpoint: 0, message: `the checkpoints of stream ${id} name origin ${JSON.stringify(origin)}, not the expected ${JSON.stringify(opts.expectedOrigin)}: another instance's log` })
    }

    const retainedAt = await retentionRun(paths.retention)
    // the signed statement of what retention may have removed: the latest checkpoint's `retained`
    const signedRetained = cps.reduce((a, c) => Math.max(a, c.retained ?? 0), 0)

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
    const addLeaf = (seq: number, line: Buffer | undefined, segment: string | undefined, offset: number | undefined): Buffer | undefined => {
      if (seq >= treeSize) { report.unhashedRecords++; return undefined }
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
      return leaf
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
        // retained leaves come from the hashes file: the range must lie inside the hashed tree
        // (a bounded loop) and be covered by a signed checkpoint's `retained` statement
        if (r.last_seq >= treeSize) fail({ code: 'RETENTION_INVALID', seq: r.first_seq, message: `retention.log says records ${r.first_seq}..${r.last_seq} were removed, but the hashed tree ends at ${treeSize}` })
        if (r.last_seq + 1 > signedRetained) {
          fail({ code: 'RETENTION_UNAUTHENTICATED', seq: Math.max(signedRetained, r.first_seq), segment: r.segment, message: `records ${Math.max(signedRetained, r.first_seq)}..${r.last_seq} are gone and listed in retention.log, but no signed checkpoint covers their removal (the latest says retained ${signedRetained})` })
        }
        report.retained.push({ first_seq: r.first_seq, last_seq: r.last_seq, segment: r.segment, removed_at: r.removed_at })
        for (let seq = r.first_seq; seq <= r.last_seq; seq++) {
          const leaf = addLeaf(seq, undefined, undefined, undefined) as Buffer
          if ((seq === r.first_seq && leaf.toString('hex') !== r.first_leaf_hash) || (seq === r.last_seq && leaf.toString('hex') !== r.last_leaf_hash)) {
            fail({ code: 'RETENTION_INVALID', seq, segment: r.segment, message: `retention.log's leaf hash of removed record ${seq} differs from the hashes file` })
          }
        }
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
    // the auditor's kept checkpoints: the log must hold them and extend them (consistency proof
    // from the stored hashes, checked against the recomputed root of the whole tree)
    for (const [i, c] of kept.entries()) {
      if (c.size > range.size) fail({ code: 'KEPT_CHECKPOINT_INCONSISTENT', seq: range.size, message: `kept checkpoint ${i} covers ${c.size} records but the log's tree ends at ${range.size}: records were removed or the log was rewritten` })
      const proof = consistencyProof(c.size, range.size, new HashesFileReader(fd))
      const first = c.size === 0 ? c.root : treeRoot(c.size, new HashesFileReader(fd))
      if (!first.equals(c.root) || !verifyConsistency(c.size, range.size, c.root, range.root(), proof)) {
        fail({ code: 'KEPT_CHECKPOINT_INCONSISTENT', seq: c.size, message: `kept checkpoint ${i} (size ${c.size}) is not a prefix of the log (tree size ${range.size}): the records it sealed were rewritten` })
      }
    }
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
    // records not sealed by any signed checkpoint can be rewritten without a trace: a few are a
    // live log's normal state (a checkpoint is due every every_events / every_seconds); none
    // sealed, or more than that, is a log whose checkpoints were removed
    const sealed = cps[cps.length - 1]?.size ?? 0
    const unsealed = Math.max(expected, treeSize) - sealed
    const maxUnsealed = opts.maxUnsealed ?? DEFAULT_MAX_UNSEALED
    if (unsealed > 0 && opts.allowUnsealedTail !== true && (cps.length === 0 || unsealed > maxUnsealed)) {
      fail({ code: 'TAIL_UNSEALED', seq: sealed, message: cps.length === 0 ? `${unsealed} records and no checkpoint: nothing is sealed by a signature (checkpoints deleted, or a live log before its first checkpoint: --allow-unsealed-tail)` : `${unsealed} records past the latest checkpoint (size ${sealed}), more than ${maxUnsealed} allowed: checkpoints deleted, or checkpointing stopped` })
    }
    if (unsealed > 0) warnings.push(`${id}: ${unsealed} records after the latest checkpoint (size ${sealed}) are not yet sealed by a signature`)
  } catch (err) {
    if (err instanceof Problem) report.problem = err.problem
    else report.problem = { code: 'STREAM_UNREADABLE', message: (err as Error).message }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
  return report
}
