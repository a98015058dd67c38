/**
 * Per-segment summaries: the console's index over the audit directory. A summary holds what a
 * query needs to decide whether to read a segment at all — its time range, outcome counts, the
 * sets of callers, paths and transports (null once a set passes MAX_SET: "anything"), and the
 * gap records it holds. A sealed segment (every segment of a stream but the last) never changes
 * until retention removes it, so its summary is computed once and kept, keyed by directory,
 * stream, segment name and size (a removed or rewritten file gets a new key). The active
 * segment is summarised on every read. The index lives in memory, bounded by estimated bytes
 * (console.cache_max_bytes, cache.ts): a restart or an evicted summary is rebuilt lazily, one
 * sealed segment read per segment (docs/console.md "API", "Cost").
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { listSegments, recordSeq, segmentLineBatches, streamPaths, type SegmentRef } from '../audit/log/layout.js'
import { callerOf } from '../replay/replay.js'
import { summaryCache } from './cache.js'

/** Larger caller/path/transport sets are dropped (null: the summary no longer excludes anything). */
export const MAX_SET = 512

export interface GapRecord { seq: number, shed: number, first_shed_at: string, last_shed_at: string }

export interface SegmentSummary {
  stream: string
  name: string
  first: number
  bytes: number
  sealed: boolean
  /** Decision events (gap records apart). */
  decisions: number
  minTs: number
  maxTs: number
  outcomes: Record<string, number>
  callers: Set<string> | null
  paths: Set<string> | null
  transports: Set<string> | null
  gaps: GapRecord[]
}

export interface ParsedRecord { seq: number, bytes: Buffer, rec: Record<string, unknown>, ts: number }

// bounded by estimated bytes (console.cache_max_bytes, cache.ts): a summary's sets can hold long names
const summaries = {
  get: (key: string): SegmentSummary | undefined => summaryCache<SegmentSummary>().get(key),
  set: (key: string, s: SegmentSummary): void => { summaryCache<SegmentSummary>().set(key, s) },
}

const trimSlashes = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '')

function add (set: Set<string> | null, v: unknown): Set<string> | null {
  if (set === null || typeof v !== 'string') return set
  set.add(v)
  return set.size > MAX_SET ? null : set
}

export function parseRecord (seq: number, bytes: Buffer): ParsedRecord | undefined {
  try {
    const rec = JSON.parse(bytes.toString('utf8')) as unknown
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return undefined
    const r = rec as Record<string, unknown>
    const ts = typeof r.timestamp === 'string' ? Date.parse(r.timestamp) : Number.NaN
    return { seq, bytes, rec: r, ts }
  } catch { return undefined }
}

function emptySummary (stream: string, ref: SegmentRef, bytes: number, sealed: boolean): SegmentSummary {
  return { stream, name: ref.name, first: ref.first, bytes, sealed, decisions: 0, minTs: Number.POSITIVE_INFINITY, maxTs: Number.NEGATIVE_INFINITY, outcomes: {}, callers: new Set(), paths: new Set(), transports: new Set(), gaps: [] }
}

function note (s: SegmentSummary, p: ParsedRecord): void {
  const r = p.rec
  if (r.type === 'gap') {
    s.gaps.push({ seq: p.seq, shed: typeof r.shed === 'number' ? r.shed : 0, first_shed_at: String(r.first_shed_at ?? ''), last_shed_at: String(r.last_shed_at ?? '') })
    return
  }
  s.decisions++
  if (Number.isFinite(p.ts)) { s.minTs = Math.min(s.minTs, p.ts); s.maxTs = Math.max(s.maxTs, p.ts) }
  const o = typeof r.outcome === 'string' ? r.outcome : 'unknown'
  s.outcomes[o] = (s.outcomes[o] ?? 0) + 1
  s.callers = add(s.callers, callerOf(r))
  s.paths = add(s.paths, typeof r.path === 'string' ? trimSlashes(r.path) : undefined)
  s.transports = add(s.transports, r.transport)
}

export interface StreamSegments { stream: string, dir: string, segments: SegmentRef[] }

export async function streamSegments (dir: string, stream: string): Promise<StreamSegments> {
  return { stream, dir, segments: await listSegments(streamPaths(dir, stream).segments) }
}

function segmentPath (dir: string, stream: string, name: string): string {
  return join(streamPaths(dir, stream).segments, name)
}

/**
 * Reads one segment's records (seq < below), parsed, and its summary (from the cache for a sealed
 * segment already seen). `onRecord` sees every whole record in file order.
 */
export async function readSegment (dir: string, stream: string, ref: SegmentRef, sealed: boolean, onRecord: (p: ParsedRecord) => void, below = Number.MAX_SAFE_INTEGER): Promise<SegmentSummary> {
  return await readSegmentLines(dir, stream, ref, sealed, (seq, bytes, parsed) => {
    const p = parsed ?? parseRecord(seq, bytes)
    if (p !== undefined) onRecord(p)
  }, below)
}

/**
 * As readSegment, but hands over the raw line (and the parsed record only when the summary had
 * to be built anyway): a caller that keeps many lines keeps bytes, not object graphs.
 */
export async function readSegmentLines (dir: string, stream: string, ref: SegmentRef, sealed: boolean, onLine: (seq: number, bytes: Buffer, parsed: ParsedRecord | undefined) => void, below = Number.MAX_SAFE_INTEGER): Promise<SegmentSummary> {
  const path = segmentPath(dir, stream, ref.name)
  let bytes = 0
  try { bytes = (await stat(path)).size } catch { /* removed by retention meanwhile: empty */ }
  const key = JSON.stringify([dir, stream, ref.name, bytes])
  const cached = sealed ? summaries.get(key) : undefined
  const s = cached ?? emptySummary(stream, ref, bytes, sealed)
  for await (const batch of segmentLineBatches(path)) {
    for (const line of batch.lines) {
      const seq = recordSeq(line)
      if (seq < 0) continue
      let p: ParsedRecord | undefined
      if (cached === undefined) {
        p = parseRecord(seq, line)
        if (p === undefined) continue
        note(s, p)
      }
      if (seq < below) onLine(seq, line, p)
    }
  }
  if (sealed && cached === undefined) summaries.set(key, s)
  return s
}

/** The summary of a segment: cached for sealed segments, else one read. */
export async function summaryOf (dir: string, stream: string, ref: SegmentRef, sealed: boolean): Promise<SegmentSummary> {
  if (sealed) {
    let bytes = 0
    try { bytes = (await stat(segmentPath(dir, stream, ref.name))).size } catch { /* gone */ }
    const hit = summaries.get(JSON.stringify([dir, stream, ref.name, bytes]))
    if (hit !== undefined) return hit
  }
  return await readSegmentLines(dir, stream, ref, sealed, () => {})
}

/** Cached summary only (no read): undefined when the segment was not summarised yet. */
export async function cachedSummary (dir: string, stream: string, ref: SegmentRef): Promise<SegmentSummary | undefined> {
  let bytes = 0
  try { bytes = (await stat(segmentPath(dir, stream, ref.name))).size } catch { return undefined }
  return summaries.get(JSON.stringify([dir, stream, ref.name, bytes]))
}
