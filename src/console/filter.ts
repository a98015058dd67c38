/**
 * The console's filters (docs/console.md "API"): the export's time range, outcome and path
 * filters (audit/export/filter.ts, reused for validation and matching) plus caller (SPIFFE ID or
 * subject, as replay names callers), transport, bundle revision and cached. The same filter
 * also judges a whole segment from its summary (segments.ts), so a segment that cannot hold a
 * match is skipped without reading it.
 */
import { ExportFilter, exportFilters, filterValues, selectsPath, type ExportFilters } from '../audit/export/filter.js'
import { callerOf } from '../replay/replay.js'
import { auditInvalid as invalid } from '../audit/log/errors.js'
import type { SegmentSummary } from './segments.js'

export interface ConsoleFilterInput {
  from?: string | undefined
  to?: string | undefined
  outcome?: string | string[] | undefined
  caller?: string | string[] | undefined
  path?: string | string[] | undefined
  transport?: string | string[] | undefined
  revision?: string | undefined
  cached?: string | boolean | undefined
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

export class ConsoleFilter {
  readonly base: ExportFilter
  readonly callers: Set<string> | undefined
  readonly transports: Set<string> | undefined
  readonly revision: string | undefined
  readonly cached: boolean | undefined
  /** A stable text of the non-time filters: a cache key for per-segment aggregates. */
  readonly key: string

  constructor (input: ConsoleFilterInput) {
    const base: ExportFilters = exportFilters({ from: input.from, to: input.to, outcome: input.outcome, path: input.path })
    this.base = new ExportFilter(base)
    const callers = filterValues(input.caller, 'caller')
    this.callers = callers !== undefined ? new Set(callers) : undefined
    const transports = filterValues(input.transport, 'transport')
    this.transports = transports !== undefined ? new Set(transports) : undefined
    if (input.revision !== undefined && input.revision === '') throw invalid('revision must not be empty', 'revision')
    this.revision = input.revision
    if (input.cached === undefined) this.cached = undefined
    else if (input.cached === true || input.cached === 'true') this.cached = true
    else if (input.cached === false || input.cached === 'false') this.cached = false
    else throw invalid('cached must be true or false', 'cached')
    this.key = JSON.stringify([base.outcome?.slice().sort() ?? null, base.path?.slice().sort() ?? null, callers?.slice().sort() ?? null, transports?.slice().sort() ?? null, this.revision ?? null, this.cached ?? null])
  }

  get fromMs (): number { return this.base.fromMs }
  get toMs (): number { return this.base.toMs }

  /** Whether a parsed decision event matches (gap records never do: they are not decisions). */
  matches (rec: Record<string, unknown>): boolean {
    if (rec.type === 'gap') return false
    if (!this.base.matches(rec)) return false
    if (this.callers !== undefined && !this.callers.has(callerOf(rec))) return false
    if (this.transports !== undefined && !(typeof rec.transport === 'string' && this.transports.has(rec.transport))) return false
    if (this.cached !== undefined && (rec.cached === true) !== this.cached) return false
    if (this.revision !== undefined) {
      const b = rec.bundles
      if (!isObject(b) || !Object.values(b).some((x) => isObject(x) && x.revision === this.revision)) return false
    }
    return true
  }

  /** False only when no record the summary describes can match (time range, outcome, caller, path, transport). */
  mayMatch (s: SegmentSummary): boolean {
    if (s.decisions === 0) return false
    if (s.maxTs < this.fromMs || s.minTs >= this.toMs) return false
    const outcomes = this.base.filters.outcome
    if (outcomes !== undefined && !outcomes.some((o) => (s.outcomes[o] ?? 0) > 0)) return false
    if (this.callers !== undefined && s.callers !== null && ![...this.callers].some((c) => s.callers?.has(c) === true)) return false
    if (this.transports !== undefined && s.transports !== null && ![...this.transports].some((t) => s.transports?.has(t) === true)) return false
    const paths = this.base.filters.path
    if (paths !== undefined && s.paths !== null) {
      let any = false
      for (const p of s.paths) if (selectsPath(paths, p)) { any = true; break }
      if (!any) return false
    }
    return true
  }
}
