/**
 * The filters of an audit export (docs/audit.md "Export"): a time range and, repeatable, the
 * outcome, the caller's SPIFFE ID and the decision path. The same filter object is written into
 * the export's header, so the offline verifier checks that every exported event matches the
 * filters the export claims — an export cannot quietly carry events from outside its slice.
 */
import { invalid } from '../log/errors.js'

export const EXPORT_OUTCOMES = ['allow', 'deny', 'undefined', 'error', 'value'] as const
export type ExportOutcome = (typeof EXPORT_OUTCOMES)[number]

/** Filters as they appear in the export header (times as given, RFC 3339). */
export interface ExportFilters {
  /** Inclusive lower bound on the event timestamp (RFC 3339). */
  from?: string
  /** Exclusive upper bound on the event timestamp (RFC 3339). */
  to?: string
  outcome?: ExportOutcome[]
  spiffe_id?: string[]
  path?: string[]
}

/** What a filter is given before validation (CLI flags, query strings: single or repeated). */
export interface ExportFilterInput {
  from?: string | undefined
  to?: string | undefined
  outcome?: string | string[] | undefined
  spiffe_id?: string | string[] | undefined
  path?: string | string[] | undefined
}

// RFC 3339 §5.6 date-time: full-date "T" full-time with a mandatory offset (Z or ±hh:mm)
const RFC3339 = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$/
const MAX_VALUES = 64

/** Milliseconds since the epoch of an RFC 3339 date-time; throws PORTCULLIS_AUDIT_INVALID. */
export function parseRfc3339 (text: string, what: string): number {
  let ms = Number.NaN
  const m = RFC3339.exec(text)
  // a day the month does not have (2026-02-31) is refused, not rolled into the next month
  if (m !== null && Number(text.slice(8, 10)) <= new Date(Date.UTC(Number(text.slice(0, 4)), Number(text.slice(5, 7)), 0)).getUTCDate()) {
    // a leap second (…:60) is the instant one second after …:59
    const leap = text.slice(17, 19) === '60'
    ms = Date.parse((leap ? `${text.slice(0, 17)}59${text.slice(19)}` : text).toUpperCase()) + (leap ? 1000 : 0)
  }
  if (!Number.isFinite(ms)) throw invalid(`${what} ${JSON.stringify(text)} is not an RFC 3339 date-time (e.g. 2026-11-30T20:00:00Z)`, { parameter: what })
  return ms
}

/**
 * A repeatable filter parameter (one value or several) as a list without duplicates; undefined
 * when absent. Throws PORTCULLIS_AUDIT_INVALID naming the parameter for an empty value or more
 * than 64 values. The console's filters (console/filter.ts) use it too.
 */
export function filterValues (v: string | string[] | undefined, what: string): string[] | undefined {
  if (v === undefined) return undefined
  const values = Array.isArray(v) ? v : [v]
  if (values.length > MAX_VALUES) throw invalid(`at most ${MAX_VALUES} ${what} values`, { parameter: what })
  for (const x of values) if (typeof x !== 'string' || x === '') throw invalid(`${what} must not be empty`, { parameter: what })
  return values.length === 0 ? undefined : [...new Set(values)]
}

const trimSlashes = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '')

/** Validates filter input into the header form. Throws PORTCULLIS_AUDIT_INVALID (400 over HTTP). */
export function exportFilters (input: ExportFilterInput): ExportFilters {
  const out: ExportFilters = {}
  if (input.from !== undefined) { parseRfc3339(input.from, 'from'); out.from = input.from }
  if (input.to !== undefined) { parseRfc3339(input.to, 'to'); out.to = input.to }
  if (out.from !== undefined && out.to !== undefined && parseRfc3339(out.from, 'from') > parseRfc3339(out.to, 'to')) throw invalid('from is after to', { parameter: 'from' })
  const outcome = filterValues(input.outcome, 'outcome')
  if (outcome !== undefined) {
    for (const o of outcome) if (!(EXPORT_OUTCOMES as readonly string[]).includes(o)) throw invalid(`outcome ${JSON.stringify(o)} is not one of ${EXPORT_OUTCOMES.join(', ')}`, { parameter: 'outcome' })
    out.outcome = outcome as ExportOutcome[]
  }
  const spiffe = filterValues(input.spiffe_id, 'spiffe_id')
  if (spiffe !== undefined) {
    for (const s of spiffe) if (!s.startsWith('spiffe://')) throw invalid(`spiffe_id ${JSON.stringify(s)} is not a SPIFFE ID`, { parameter: 'spiffe_id' })
    out.spiffe_id = spiffe
  }
  const path = filterValues(input.path, 'path')
  if (path !== undefined) {
    const trimmed = path.map(trimSlashes)
    if (trimmed.includes('')) throw invalid('path must name a decision path', { parameter: 'path' })
    out.path = trimmed
  }
  return out
}

/** Whether a path filter selects decision path `p` (slashes trimmed): the path and everything below it. */
export function selectsPath (filter: readonly string[], p: string): boolean {
  return filter.some((f) => p === f || p.startsWith(`${f}/`))
}

/** The parts of a record the filters read (a decision event or a gap record). */
interface RecordView {
  type?: unknown
  timestamp?: unknown
  outcome?: unknown
  path?: unknown
  identity?: { spiffe_id?: unknown } | unknown
  first_shed_at?: unknown
  last_shed_at?: unknown
}

/**
 * A compiled filter. Gap records (events shed while the disk was failing, docs/audit.md) match
 * whenever their shed interval overlaps the time range, whatever the other filters: the lost
 * events might have matched them, and an export must not hide that a loss happened.
 */
export class ExportFilter {
  readonly fromMs: number
  readonly toMs: number
  readonly #outcome: Set<string> | undefined
  readonly #spiffe: Set<string> | undefined
  readonly #path: string[] | undefined

  constructor (readonly filters: ExportFilters) {
    this.fromMs = filters.from !== undefined ? parseRfc3339(filters.from, 'from') : Number.NEGATIVE_INFINITY
    this.toMs = filters.to !== undefined ? parseRfc3339(filters.to, 'to') : Number.POSITIVE_INFINITY
    this.#outcome = filters.outcome !== undefined ? new Set(filters.outcome) : undefined
    this.#spiffe = filters.spiffe_id !== undefined ? new Set(filters.spiffe_id) : undefined
    this.#path = filters.path
  }

  /** Whether the timestamp (ms) is in [from, to). */
  inRange (ms: number): boolean {
    return ms >= this.fromMs && ms < this.toMs
  }

  /** Whether a parsed record belongs to the slice. */
  matches (r: RecordView): boolean {
    if (r.type === 'gap') {
      const first = typeof r.first_shed_at === 'string' ? Date.parse(r.first_shed_at) : Number.NaN
      const last = typeof r.last_shed_at === 'string' ? Date.parse(r.last_shed_at) : Number.NaN
      // a gap without readable times is always included: better an extra record than a hidden loss
      if (!Number.isFinite(first) || !Number.isFinite(last)) return true
      return last >= this.fromMs && first < this.toMs
    }
    const ts = typeof r.timestamp === 'string' ? Date.parse(r.timestamp) : Number.NaN
    if (!Number.isFinite(ts) || !this.inRange(ts)) return false
    if (this.#outcome !== undefined && !(typeof r.outcome === 'string' && this.#outcome.has(r.outcome))) return false
    if (this.#spiffe !== undefined) {
      const id = (r.identity !== null && typeof r.identity === 'object') ? (r.identity as { spiffe_id?: unknown }).spiffe_id : undefined
      if (typeof id !== 'string' || !this.#spiffe.has(id)) return false
    }
    if (this.#path !== undefined) {
      const p = typeof r.path === 'string' ? trimSlashes(r.path) : undefined
      if (p === undefined || !selectsPath(this.#path, p)) return false
    }
    return true
  }
}
