/**
 * Replay (docs/replay.md): re-evaluates the stored inputs of past decisions against a candidate
 * policy snapshot and reports every decision that would change, grouped by path and caller.
 *
 * What is replayed is exactly what the policy saw: the event's `input`, which already holds
 * `identity` as the pipeline attached it. Nothing is guessed: an event whose input masking
 * changed (`erased`/`masked` touching /input, or `mask_error`) is *not replayable* and reported
 * as such; error events (the policy never answered, or the answer was refused) and gap records
 * (events shed while the disk failed) are counted apart.
 *
 * Bounded memory: records are streamed one stream at a time (AuditDirReader), groups are capped
 * (MAX_GROUPS, the rest folded into one overflow group) and so are examples per group.
 */
import { mayLoseDigits, parseJsonInput } from '../json-input.js'
import { canonicalJson } from '../canonical-json.js'
import { ExportFilter, type ExportFilters } from '../audit/export/filter.js'
import { AuditDirReader } from '../audit/log/reader.js'
import { verdictOf } from '../envoy/response.js'
import { toPortcullisError } from '../errors.js'
import { outcomeOf } from '../metrics/index.js'
import type { PolicySnapshot } from '../policy/snapshot.js'

/** Nesting bound for re-reading a stored record exactly (inputs were bounded when they arrived). */
const REPLAY_MAX_DEPTH = 10_000

/** The kinds of change, in report order. */
export const CHANGE_KINDS = ['allow_to_deny', 'deny_to_allow', 'result_changed', 'undefined_to_defined', 'defined_to_undefined', 'to_error'] as const
export type ChangeKind = (typeof CHANGE_KINDS)[number]
export type ChangeCounts = Record<ChangeKind, number>

/** Most (path, caller) groups kept; later ones are counted in one overflow group. */
export const MAX_GROUPS = 10_000
/** Longest JSON text of a result kept in an example (longer ones are cut and marked). */
export const MAX_EXAMPLE_RESULT_CHARS = 2048
export const OVERFLOW = '(other groups)'
export const ANONYMOUS = '(anonymous)'

export interface ReplayExample {
  decision_id: string
  timestamp: string
  change: ChangeKind
  old_outcome: string
  new_outcome: string
  /** Absent when the result was undefined; `{"truncated": "<prefix>"}` when longer than MAX_EXAMPLE_RESULT_CHARS. */
  old_result?: unknown
  new_result?: unknown
  /** The evaluation error's code, for `to_error`. */
  new_error?: string
}

export interface ReplayGroup {
  path: string
  caller: string
  changed: number
  changes: ChangeCounts
  examples: ReplayExample[]
}

export interface NotReplayableGroup {
  path: string
  caller: string
  count: number
  /** Why: `masked` (input erased or masked) or `mask_error`. */
  reasons: { masked: number, mask_error: number }
  decision_ids: string[]
}

export interface ReplayTotals {
  /** Records read from the directory (all streams, before filtering). */
  records_read: number
  /** Decision events in the filtered slice. */
  events: number
  replayed: number
  unchanged: number
  changed: number
  not_replayable: number
  /** Events recording a failure (no policy answer to compare): counted, not replayed. */
  errors: number
  /** Gap records overlapping the time range: events that were lost, so could not be replayed. */
  gaps: number
  /** Events lost in those gaps (the gap records' `shed` counts). */
  gap_events: number
  /** Records that are not JSON objects: counted, never guessed. */
  unreadable: number
}

export interface ReplayReport {
  /** Schema version of this report (docs/replay.md "JSON report"). */
  portcullis_replay: 1
  generated_at: string
  audit_dir: string
  candidate: { bundles: Record<string, { revision: string }> }
  filters: ExportFilters
  totals: ReplayTotals
  changes: ChangeCounts
  /** Groups with at least one change, sorted by path then caller. */
  groups: ReplayGroup[]
  not_replayable: NotReplayableGroup[]
  /** True when more than MAX_GROUPS groups occurred (the rest are in the OVERFLOW group). */
  groups_truncated: boolean
}

export interface ReplayOptions {
  filters?: ExportFilters
  /** Examples kept per group (default 3). */
  examples?: number
  strictBuiltinErrors?: boolean
  /** Called as records are read (at most every 1000 records), and once at the end. */
  onProgress?: (read: number, total: number) => void
  /** Most groups kept (default MAX_GROUPS; tests lower it). */
  maxGroups?: number
}

const zeroCounts = (): ChangeCounts => ({ allow_to_deny: 0, deny_to_allow: 0, result_changed: 0, undefined_to_defined: 0, defined_to_undefined: 0, to_error: 0 })

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const ENVOY_TRANSPORTS = new Set(['envoy-grpc', 'envoy-http'])

/** Who asked, as the event's identity summary names it. */
export function callerOf (rec: Record<string, unknown>): string {
  const id = rec.identity
  if (!isObject(id)) return ANONYMOUS
  if (typeof id.spiffe_id === 'string') return id.spiffe_id
  if (typeof id.subject === 'string') return id.subject
  return ANONYMOUS
}

/**
 * True when masking changed what the policy saw (so the stored input is not the input). Only
 * pointers under /input count: /result and /reasons (a deny's reasons, mask.ts) are output,
 * and masking them leaves the input the policy saw intact.
 */
function inputMasked (rec: Record<string, unknown>): boolean {
  for (const key of ['erased', 'masked']) {
    const list = rec[key]
    if (Array.isArray(list) && list.some((p) => typeof p === 'string' && (p === '/input' || p.startsWith('/input/')))) return true
  }
  return false
}

function resultMasked (rec: Record<string, unknown>): boolean {
  for (const key of ['erased', 'masked']) {
    const list = rec[key]
    if (Array.isArray(list) && list.some((p) => typeof p === 'string' && (p === '/result' || p.startsWith('/result/')))) return true
  }
  return false
}

/** An answer as the transport read it: outcome, and the result when defined. */
interface Answer { outcome: string, defined: boolean, result?: unknown, error?: string }

/**
 * The candidate's answer for one stored event, read with the rule the event's transport used
 * (event.ts): Envoy's verdict for ext_authz events (undefined or malformed is an error), the
 * outcome of decide() for everything else. Never throws: an evaluation failure is `error`.
 */
function answerOf (snapshot: PolicySnapshot, path: string, rec: Record<string, unknown>, strict: boolean): Answer {
  let ev
  try {
    ev = snapshot.evaluate(path, Object.hasOwn(rec, 'input') ? rec.input : undefined, { strictBuiltinErrors: strict })
  } catch (err) {
    return { outcome: 'error', defined: false, error: toPortcullisError(err).code }
  }
  const a: Answer = { outcome: 'undefined', defined: ev.defined }
  if (ev.defined) a.result = ev.result
  if (ENVOY_TRANSPORTS.has(String(rec.transport))) {
    if (!ev.defined) return { ...a, outcome: 'error', error: 'PORTCULLIS_POLICY_UNDEFINED' }
    try {
      a.outcome = verdictOf(ev.result).allowed ? 'allow' : 'deny'
    } catch (err) {
      return { ...a, outcome: 'error', error: toPortcullisError(err).code }
    }
    return a
  }
  a.outcome = outcomeOf(ev.defined, ev.result)
  return a
}

/** What changed between the recorded answer and the candidate's; undefined when nothing did. */
function changeOf (old: Answer, now: Answer, compareResults: boolean): ChangeKind | undefined {
  if (now.outcome === 'error') return 'to_error'
  if (old.outcome === 'allow' && now.outcome === 'deny') return 'allow_to_deny'
  if (old.outcome === 'deny' && now.outcome === 'allow') return 'deny_to_allow'
  if (!old.defined && now.defined) return 'undefined_to_defined'
  if (old.defined && !now.defined) return 'defined_to_undefined'
  if (old.outcome !== now.outcome) return 'result_changed'
  if (compareResults && old.defined && canonicalJson(old.result) !== canonicalJson(now.result)) return 'result_changed'
  return undefined
}

/** A result for an example: the value, or its cut JSON text when long. */
function exampleValue (v: unknown): unknown {
  const text = JSON.stringify(v) ?? 'null'
  return text.length <= MAX_EXAMPLE_RESULT_CHARS ? v : { truncated: text.slice(0, MAX_EXAMPLE_RESULT_CHARS) }
}

const groupKey = (path: string, caller: string): string => JSON.stringify([path, caller])

/**
 * Replays the slice of `dir` the filters select against `snapshot`.
 * @throws PortcullisError PORTCULLIS_AUDIT_INVALID for a directory that cannot be read
 */
export async function replay (dir: string, snapshot: PolicySnapshot, opts: ReplayOptions = {}): Promise<ReplayReport> {
  const filters = opts.filters ?? {}
  const filter = new ExportFilter(filters)
  const maxExamples = opts.examples ?? 3
  const maxGroups = opts.maxGroups ?? MAX_GROUPS
  const strict = opts.strictBuiltinErrors ?? false
  const totals: ReplayTotals = { records_read: 0, events: 0, replayed: 0, unchanged: 0, changed: 0, not_replayable: 0, errors: 0, gaps: 0, gap_events: 0, unreadable: 0 }
  const changes = zeroCounts()
  const groups = new Map<string, ReplayGroup>()
  const blocked = new Map<string, NotReplayableGroup>()
  let truncated = false

  // a bounded map: beyond maxGroups distinct keys, everything goes to one overflow group
  const slot = <T>(map: Map<string, T>, path: string, caller: string, make: (path: string, caller: string) => T): T => {
    let key = groupKey(path, caller)
    let g = map.get(key)
    if (g !== undefined) return g
    if (map.size >= maxGroups) {
      truncated = true
      key = groupKey(OVERFLOW, OVERFLOW)
      g = map.get(key)
      if (g !== undefined) return g
      path = OVERFLOW
      caller = OVERFLOW
    }
    g = make(path, caller)
    map.set(key, g)
    return g
  }

  const reader = await AuditDirReader.open(dir)
  try {
    const streams = reader.streams().map((id) => reader.stream(id))
    // the seq range each stream is read in: the export's (StreamReader.seqRange), so a time-bounded
    // replay reads the records a time-bounded export reads, and stops after `to` as it does
    const ranges: Array<[number, number]> = []
    let total = 0
    for (const s of streams) {
      const range = await s.seqRange(filter, await s.treeSize())
      ranges.push(range)
      total += Math.max(0, range[1] - range[0])
    }
    for (const [i, s] of streams.entries()) {
      const [start, end] = ranges[i] as [number, number]
      for await (const { bytes } of s.records(start, end)) {
        totals.records_read++
        if (totals.records_read % 1000 === 0) opts.onProgress?.(totals.records_read, Math.max(total, totals.records_read))
        let rec: unknown
        const text = bytes.toString('utf8')
        try { rec = JSON.parse(text) } catch { rec = undefined }
        if (!isObject(rec)) { totals.unreadable++; continue }
        if (!filter.matches(rec)) continue
        if (rec.type === 'gap') {
          totals.gaps++
          if (typeof rec.shed === 'number') totals.gap_events += rec.shed
          continue
        }
        totals.events++
        const path = typeof rec.path === 'string' ? rec.path : ''
        const caller = callerOf(rec)
        if (rec.outcome === 'error' || rec.error !== undefined) { totals.errors++; continue }
        const maskError = rec.mask_error !== undefined
        if (maskError || inputMasked(rec)) {
          totals.not_replayable++
          const g = slot(blocked, path, caller, (p, c) => ({ path: p, caller: c, count: 0, reasons: { masked: 0, mask_error: 0 }, decision_ids: [] }))
          g.count++
          if (maskError) g.reasons.mask_error++
          else g.reasons.masked++
          if (g.decision_ids.length < maxExamples && typeof rec.decision_id === 'string') g.decision_ids.push(rec.decision_id)
          continue
        }
        // only for records replayed: the input as the policy saw it: numbers a double would change keep their digits (json-input.ts)
        if (Object.hasOwn(rec, 'input') && mayLoseDigits(text)) {
          try { rec.input = (parseJsonInput(text, REPLAY_MAX_DEPTH) as Record<string, unknown>).input } catch { /* read as JSON.parse read it */ }
        }
        totals.replayed++
        const old: Answer = { outcome: String(rec.outcome), defined: Object.hasOwn(rec, 'result') }
        if (old.defined) old.result = rec.result
        const now = answerOf(snapshot, path, rec, strict)
        const change = changeOf(old, now, !resultMasked(rec))
        if (change === undefined) { totals.unchanged++; continue }
        totals.changed++
        changes[change]++
        const g = slot(groups, path, caller, (p, c) => ({ path: p, caller: c, changed: 0, changes: zeroCounts(), examples: [] }))
        g.changed++
        g.changes[change]++
        if (g.examples.length < maxExamples) {
          const ex: ReplayExample = {
            decision_id: typeof rec.decision_id === 'string' ? rec.decision_id : '',
            timestamp: typeof rec.timestamp === 'string' ? rec.timestamp : '',
            change,
            old_outcome: old.outcome,
            new_outcome: now.outcome,
          }
          if (old.defined) ex.old_result = exampleValue(old.result)
          if (now.defined) ex.new_result = exampleValue(now.result)
          if (now.error !== undefined) ex.new_error = now.error
          g.examples.push(ex)
        }
      }
    }
    opts.onProgress?.(totals.records_read, Math.max(total, totals.records_read))
  } finally {
    reader.close()
  }
  const byPathCaller = (a: { path: string, caller: string }, b: { path: string, caller: string }): number =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : a.caller < b.caller ? -1 : a.caller > b.caller ? 1 : 0
  return {
    portcullis_replay: 1,
    generated_at: new Date().toISOString(),
    audit_dir: dir,
    candidate: { bundles: snapshot.revisions() },
    filters,
    totals,
    changes,
    groups: [...groups.values()].sort(byPathCaller),
    not_replayable: [...blocked.values()].sort(byPathCaller),
    groups_truncated: truncated,
  }
}
