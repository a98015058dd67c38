/**
 * Overview aggregates over a bounded time range (docs/console.md "API"): counts per time bucket
 * by outcome, deny rate by path, top denied callers, identity rejections by code, and when each
 * bundle revision was seen. Work is per segment: a sealed segment wholly inside the range gives
 * a partial aggregate that is cached (bounded by bytes, cache.ts; keyed by segment, filters and bucket size; buckets are
 * aligned to the epoch so partials fit any range), so a repeated overview reads only the active
 * segments and the two segments cut by the range's ends.
 */
import { AuditDirReader } from '../audit/log/reader.js'
import { PortcullisError } from '../errors.js'
import { callerOf } from '../replay/replay.js'
import { partialCache } from './cache.js'
import type { ConsoleFilter } from './filter.js'
import { cachedSummary, readSegment, streamSegments, type ParsedRecord } from './segments.js'

export const MAX_RANGE_MS = 31 * 86_400_000
export const MAX_BUCKETS = 2000
const NICE = [1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400]

interface Partial {
  series: Map<number, { allow: number, deny: number, undefined: number, error: number }>
  byPath: Map<string, { total: number, deny: number }>
  denied: Map<string, number>
  rejections: Map<string, number>
  revisions: Map<string, { bundle: string, revision: string, first: number, last: number }>
}

// bounded by estimated bytes (console.cache_max_bytes, cache.ts): a partial's maps grow with the paths and callers it saw
const partials = {
  get: (key: string): Partial | undefined => partialCache<Partial>().get(key),
  set: (key: string, p: Partial): void => { partialCache<Partial>().set(key, p) },
}

const empty = (): Partial => ({ series: new Map(), byPath: new Map(), denied: new Map(), rejections: new Map(), revisions: new Map() })

function addRecord (a: Partial, p: ParsedRecord, bucketMs: number): void {
  const r = p.rec
  const t = Math.floor(p.ts / bucketMs) * bucketMs
  let b = a.series.get(t)
  if (b === undefined) { b = { allow: 0, deny: 0, undefined: 0, error: 0 }; a.series.set(t, b) }
  const o = r.outcome
  if (o === 'allow' || o === 'deny' || o === 'undefined' || o === 'error') b[o]++
  const path = typeof r.path === 'string' ? r.path : ''
  const bp = a.byPath.get(path) ?? { total: 0, deny: 0 }
  bp.total++
  if (o === 'deny') { bp.deny++; const c = callerOf(r); a.denied.set(c, (a.denied.get(c) ?? 0) + 1) }
  a.byPath.set(path, bp)
  if (typeof r.identity_error === 'string') a.rejections.set(r.identity_error, (a.rejections.get(r.identity_error) ?? 0) + 1)
  if (r.bundles !== null && typeof r.bundles === 'object') {
    for (const [bundle, v] of Object.entries(r.bundles as Record<string, { revision?: unknown }>)) {
      const revision = typeof v?.revision === 'string' ? v.revision : ''
      const key = JSON.stringify([bundle, revision])
      const e = a.revisions.get(key)
      if (e === undefined) a.revisions.set(key, { bundle, revision, first: p.ts, last: p.ts })
      else { e.first = Math.min(e.first, p.ts); e.last = Math.max(e.last, p.ts) }
    }
  }
}

function merge (into: Partial, a: Partial): void {
  for (const [t, b] of a.series) {
    const x = into.series.get(t) ?? { allow: 0, deny: 0, undefined: 0, error: 0 }
    x.allow += b.allow; x.deny += b.deny; x.undefined += b.undefined; x.error += b.error
    into.series.set(t, x)
  }
  for (const [k, v] of a.byPath) { const x = into.byPath.get(k) ?? { total: 0, deny: 0 }; x.total += v.total; x.deny += v.deny; into.byPath.set(k, x) }
  for (const [k, v] of a.denied) into.denied.set(k, (into.denied.get(k) ?? 0) + v)
  for (const [k, v] of a.rejections) into.rejections.set(k, (into.rejections.get(k) ?? 0) + v)
  for (const [k, v] of a.revisions) {
    const x = into.revisions.get(k)
    if (x === undefined) into.revisions.set(k, { ...v })
    else { x.first = Math.min(x.first, v.first); x.last = Math.max(x.last, v.last) }
  }
}

export function chooseBucket (rangeMs: number, bucket: string | undefined): number {
  if (bucket === undefined || bucket === 'auto') {
    const want = rangeMs / 1000 / 100
    return NICE.find((n) => n >= want) ?? 86_400
  }
  if (!/^[1-9][0-9]{0,7}$/.test(bucket)) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', 'bucket must be a number of seconds or auto', { parameter: 'bucket' })
  const s = Number(bucket)
  if (rangeMs / (s * 1000) > MAX_BUCKETS) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `bucket ${s}s gives more than ${MAX_BUCKETS} buckets over the range`, { parameter: 'bucket' })
  return s
}

/** The range an overview or access review covers: [from, to), defaulting to the last `defaultMs`, at most `maxMs`. */
export function boundedRange (filter: ConsoleFilter, defaultMs: number, maxMs: number, now = Date.now()): { fromMs: number, toMs: number } {
  const toMs = Number.isFinite(filter.toMs) ? filter.toMs : now
  const fromMs = Number.isFinite(filter.fromMs) ? filter.fromMs : toMs - defaultMs
  if (toMs - fromMs > maxMs) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `the time range is longer than ${Math.round(maxMs / 86_400_000)} days`, { parameter: 'from' })
  return { fromMs, toMs }
}

export async function overview (dir: string, filter: ConsoleFilter, bucket: string | undefined, now = Date.now()): Promise<Record<string, unknown>> {
  const { fromMs, toMs } = boundedRange(filter, 86_400_000, MAX_RANGE_MS, now)
  const bucketSeconds = chooseBucket(toMs - fromMs, bucket)
  const bucketMs = bucketSeconds * 1000
  const total = empty()
  const inRange = (p: ParsedRecord): boolean => Number.isFinite(p.ts) && p.ts >= fromMs && p.ts < toMs && filter.matches(p.rec)
  const reader = await AuditDirReader.open(dir)
  const ids = reader.streams()
  reader.close()
  for (const id of ids) {
    const { segments } = await streamSegments(dir, id)
    for (let i = 0; i < segments.length; i++) {
      const ref = segments[i] as (typeof segments)[number]
      const sealed = i < segments.length - 1
      const summary = sealed ? await cachedSummary(dir, id, ref) : undefined
      if (summary !== undefined) {
        if (summary.decisions === 0 || summary.maxTs < fromMs || summary.minTs >= toMs || !filter.mayMatch(summary)) continue
        const inside = summary.minTs >= fromMs && summary.maxTs < toMs
        const key = JSON.stringify([dir, id, ref.name, summary.bytes, filter.key, bucketMs])
        const hit = inside ? partials.get(key) : undefined
        if (hit !== undefined) { merge(total, hit); continue }
      }
      const part = empty()
      const s = await readSegment(dir, id, ref, sealed, (p) => { if (inRange(p)) addRecord(part, p, bucketMs) })
      if (sealed && s.minTs >= fromMs && s.maxTs < toMs) partials.set(JSON.stringify([dir, id, ref.name, s.bytes, filter.key, bucketMs]), part)
      merge(total, part)
    }
  }
  const series = []
  for (let t = Math.floor(fromMs / bucketMs) * bucketMs; t < toMs; t += bucketMs) {
    series.push({ t: new Date(t).toISOString(), ...(total.series.get(t) ?? { allow: 0, deny: 0, undefined: 0, error: 0 }) })
  }
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    bucket_seconds: bucketSeconds,
    series,
    deny_by_path: [...total.byPath].map(([path, v]) => ({ path, total: v.total, deny: v.deny, deny_rate: v.total === 0 ? 0 : v.deny / v.total }))
      .sort((a, b) => b.deny_rate - a.deny_rate || b.deny - a.deny || (a.path < b.path ? -1 : 1)).slice(0, 20),
    top_denied_callers: [...total.denied].map(([caller, deny]) => ({ caller, deny })).sort((a, b) => b.deny - a.deny || (a.caller < b.caller ? -1 : 1)).slice(0, 20),
    identity_rejections: [...total.rejections].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count),
    revisions: [...total.revisions.values()].map((r) => ({ bundle: r.bundle, revision: r.revision, first_seen: new Date(r.first).toISOString(), last_seen: new Date(r.last).toISOString() }))
      .sort((a, b) => (a.first_seen < b.first_seen ? -1 : 1)),
  }
}
