/**
 * The decisions list and a decision's detail (docs/console.md "API").
 *
 * The list is newest first across all streams, merged by timestamp, and never loads the whole
 * log: each stream is read backwards one segment at a time from its cursor position; a sealed
 * segment whose cached summary cannot match the filters is skipped unread. Each request examines
 * at most MAX_SCAN records and then answers with what matched and a cursor: the cursor holds, per
 * stream, the exclusive upper seq still to examine, so pages neither repeat nor miss a record.
 */
import { createPublicKey } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { auditInvalid as invalid } from '../audit/log/errors.js'
import { AuditDirReader, TIME_SLACK_MS } from '../audit/log/reader.js'
import { keyHash, parseCheckpoint } from '../audit/log/checkpoint.js'
import type { SegmentRef } from '../audit/log/layout.js'
import { callerOf } from '../replay/replay.js'
import type { ConsoleFilter } from './filter.js'
import { cachedSummary, parseRecord, readSegmentLines, streamSegments, type ParsedRecord } from './segments.js'

export const MAX_SCAN = 20_000
/** Events are written in about, not exactly, timestamp order: how far back a stream keeps going past `from` (the export's bound, reader.ts). */
const SLACK_MS = TIME_SLACK_MS

export interface DecisionItem {
  id: string
  stream: string
  seq: number
  decision_id: string
  timestamp: string
  path: string
  outcome: string
  transport: string
  caller: string
  caller_type: string
  bundles: Record<string, { revision: string }>
  cached: boolean
  reasons?: unknown
}

export function itemOf (stream: string, p: ParsedRecord): DecisionItem {
  const r = p.rec
  const id = r.identity
  const item: DecisionItem = {
    id: `${stream}:${p.seq}`,
    stream,
    seq: p.seq,
    decision_id: typeof r.decision_id === 'string' ? r.decision_id : '',
    timestamp: typeof r.timestamp === 'string' ? r.timestamp : '',
    path: typeof r.path === 'string' ? r.path : '',
    outcome: typeof r.outcome === 'string' ? r.outcome : '',
    transport: typeof r.transport === 'string' ? r.transport : '',
    caller: callerOf(r),
    caller_type: id !== null && typeof id === 'object' && typeof (id as { type?: unknown }).type === 'string' ? (id as { type: string }).type : 'anonymous',
    bundles: r.bundles !== null && typeof r.bundles === 'object' ? r.bundles as Record<string, { revision: string }> : {},
    cached: r.cached === true,
  }
  if (r.reasons !== undefined) item.reasons = r.reasons
  return item
}

export function encodeCursor (bounds: Record<string, number>): string {
  return Buffer.from(JSON.stringify({ v: 1, b: bounds })).toString('base64url')
}

export function decodeCursor (text: string): Record<string, number> {
  let v: unknown
  try { v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) } catch { throw invalid('cursor is not one this server issued', 'cursor') }
  const b = (v as { b?: unknown } | null)?.b
  if ((v as { v?: unknown } | null)?.v !== 1 || b === null || typeof b !== 'object' || Array.isArray(b)) throw invalid('cursor is not one this server issued', 'cursor')
  for (const x of Object.values(b)) if (!Number.isSafeInteger(x) || (x as number) < 0) throw invalid('cursor is not one this server issued', 'cursor')
  return b as Record<string, number>
}

/** One stream read backwards: the matched record at its head, segment by segment. */
class BackwardStream {
  private segs: SegmentRef[] = []
  private si = -1
  /** Raw lines of the segment being read (bytes, parsed one at a time as they are examined). */
  private buf: Array<{ seq: number, bytes: Buffer }> = []
  /** Exclusive upper seq of what is still unexamined. */
  bound: number
  head: ParsedRecord | undefined
  done = false

  constructor (private readonly dir: string, readonly stream: string, bound: number, private readonly filter: ConsoleFilter) { this.bound = bound }

  async init (): Promise<void> {
    this.segs = (await streamSegments(this.dir, this.stream)).segments
    this.si = this.segs.length - 1
    while (this.si >= 0 && (this.segs[this.si] as SegmentRef).first >= this.bound) this.si--
    if (this.bound === 0) this.si = -1
  }

  /** Examines records until a match is at the head, the stream ends, or the budget runs out. */
  async fill (budget: { left: number }): Promise<void> {
    while (this.head === undefined && !this.done) {
      if (this.buf.length === 0) {
        if (this.si < 0) { this.done = true; this.bound = 0; return }
        const ref = this.segs[this.si] as SegmentRef
        const sealed = this.si < this.segs.length - 1
        const summary = sealed ? await cachedSummary(this.dir, this.stream, ref) : undefined
        if (summary !== undefined && summary.decisions > 0 && summary.maxTs < this.filter.fromMs - SLACK_MS) { this.done = true; this.bound = 0; return }
        if (summary !== undefined && !this.filter.mayMatch(summary)) { this.bound = ref.first; this.si--; continue }
        const recs: Array<{ seq: number, bytes: Buffer }> = []
        const s = await readSegmentLines(this.dir, this.stream, ref, sealed, (seq, bytes) => recs.push({ seq, bytes }), this.bound)
        this.si--
        if (s.decisions > 0 && s.maxTs < this.filter.fromMs - SLACK_MS) { this.done = true; this.bound = 0; return }
        this.buf = recs
        if (recs.length === 0) { this.bound = ref.first; continue }
      }
      if (budget.left <= 0) return
      const line = this.buf.pop() as { seq: number, bytes: Buffer }
      budget.left--
      this.bound = line.seq
      const p = parseRecord(line.seq, line.bytes)
      if (p !== undefined && this.filter.matches(p.rec)) this.head = p
    }
  }

  take (): ParsedRecord {
    const h = this.head as ParsedRecord
    this.head = undefined
    return h
  }

  /** Where the next page resumes: before the unconsumed head, or where examining stopped. */
  resume (): number { return this.head !== undefined ? this.head.seq + 1 : this.bound }
}

export interface DecisionsPage { items: DecisionItem[], next_cursor: string | null, scanned: number }

export async function listDecisions (dir: string, filter: ConsoleFilter, limit: number, cursor?: string, maxScan = MAX_SCAN): Promise<DecisionsPage> {
  const bounds = cursor !== undefined ? decodeCursor(cursor) : undefined
  const reader = await AuditDirReader.open(dir)
  const streams = reader.streams().map((id) => new BackwardStream(dir, id, bounds === undefined ? Number.MAX_SAFE_INTEGER : (bounds[id] ?? 0), filter))
  reader.close()
  for (const s of streams) await s.init()
  const budget = { left: maxScan }
  const items: DecisionItem[] = []
  while (items.length < limit) {
    for (const s of streams) await s.fill(budget)
    // a stream still unexamined at its head (budget out) blocks the merge: stop, resume later
    if (streams.some((s) => s.head === undefined && !s.done)) break
    let best: BackwardStream | undefined
    for (const s of streams) {
      if (s.head === undefined) continue
      if (best === undefined || cmp(s.head, s.stream, best.head as ParsedRecord, best.stream) > 0) best = s
    }
    if (best === undefined) break
    items.push(itemOf(best.stream, best.take()))
  }
  const finished = streams.every((s) => s.done && s.head === undefined)
  const next: Record<string, number> = {}
  for (const s of streams) next[s.stream] = s.resume()
  return { items, next_cursor: finished ? null : encodeCursor(next), scanned: maxScan - budget.left }
}

/** Newer first: timestamp, then stream, then seq. */
function cmp (a: ParsedRecord, as: string, b: ParsedRecord, bs: string): number {
  const ta = Number.isFinite(a.ts) ? a.ts : 0
  const tb = Number.isFinite(b.ts) ? b.ts : 0
  if (ta !== tb) return ta - tb
  if (as !== bs) return as < bs ? 1 : -1
  return a.seq - b.seq
}

export interface PublicKeyInfo { pem: string, key_hash_hex: string, name: string }

/** The public key checkpoints are signed with: the configured key's public half, else the directory's. */
export async function checkpointPublicKey (dir: string, keyFile: string | undefined): Promise<{ pem: string, source: 'configured' | 'directory' } | undefined> {
  if (keyFile !== undefined) {
    try {
      return { pem: createPublicKey(await readFile(keyFile, 'utf8')).export({ type: 'spki', format: 'pem' }).toString(), source: 'configured' }
    } catch { return undefined }
  }
  const file = join(dir, 'checkpoint-key.pub.pem')
  if (!existsSync(file)) return undefined
  return { pem: await readFile(file, 'utf8'), source: 'directory' }
}

/** The previous checkpoint public keys (after a key rotation) as PEM; an unreadable one is left out (verify then reports the checkpoints it signed). */
export async function previousPublicKeyPems (files: readonly string[]): Promise<string[]> {
  const out: string[] = []
  for (const f of files) {
    try { out.push(createPublicKey(await readFile(f, 'utf8')).export({ type: 'spki', format: 'pem' }).toString()) } catch { /* left out */ }
  }
  return out
}

export async function decisionDetail (dir: string, stream: string, seq: number, keyFile: string | undefined): Promise<Record<string, unknown> | undefined> {
  const reader = await AuditDirReader.open(dir)
  try {
    const s = reader.stream(stream)
    let bytes: Buffer | undefined
    for await (const r of s.records(seq, seq + 1)) bytes = r.bytes
    if (bytes === undefined) return undefined
    const record = bytes.toString('utf8')
    const event = JSON.parse(record) as unknown
    const cp = await s.latestCheckpoint()
    const out: Record<string, unknown> = { id: `${stream}:${seq}`, stream, seq, record, event, proof: null, checkpoint: null, public_key: null, sealed: false }
    if (cp !== undefined) {
      out.checkpoint = { note: cp.note, size: cp.size, root: cp.root.toString('base64'), origin: cp.origin }
      if (seq < cp.size) {
        const proof = await s.inclusionProof(seq, cp.size)
        out.proof = { tree_size: cp.size, leaf_index: seq, hashes: proof.map((h) => h.toString('base64')) }
        out.sealed = true
      }
      const key = await checkpointPublicKey(dir, keyFile)
      if (key !== undefined) {
        const name = parseCheckpoint(cp.note).signatures[0]?.name ?? ''
        out.public_key = { pem: key.pem, key_hash_hex: keyHash(name, createPublicKey(key.pem)).toString('hex'), name }
      }
    }
    return out
  } finally { reader.close() }
}
