/**
 * Access review (docs/console.md "API"): who exercised which permission (caller, path, method)
 * in a period, with allow/deny counts, and which permissions the policy grants that no allowed
 * decision used. Grants come from the policy itself — the `console.grants_path` entrypoint,
 * evaluated with empty input on the active snapshot, answering [{caller, path, method}] with
 * `*` for any — so the review compares what is allowed with what is used, not with a copy.
 */
import { stringify } from 'csv-stringify/sync'
import { AuditDirReader } from '../audit/log/reader.js'
import type { PolicySnapshot } from '../policy/snapshot.js'
import { callerOf } from '../replay/replay.js'
import { escapeHtml } from '../replay/report.js'
import type { ConsoleFilter } from './filter.js'
import { boundedRange } from './overview.js'
import { parseRecord } from './segments.js'

export const MAX_REVIEW_RANGE_MS = 93 * 86_400_000
export const MAX_ROWS = 10_000

export interface ReviewRow { caller: string, path: string, method: string, allow: number, deny: number, first_seen: string, last_seen: string }
export interface Grant { caller: string, path: string, method: string }
export interface AccessReview { from: string, to: string, rows: ReviewRow[], unused: Grant[], grants_source: string | null, rows_truncated: boolean }

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** method and path of the request a decision was about: Data API input, or Envoy attributes. */
function requestOf (rec: Record<string, unknown>): { path: string, method: string } {
  const input = isObject(rec.input) ? rec.input : {}
  const http = isObject(input.attributes) && isObject(input.attributes.request) && isObject(input.attributes.request.http) ? input.attributes.request.http : {}
  return {
    method: str(input.method) ?? str(http.method) ?? '',
    path: str(input.path) ?? str(http.path) ?? (str(rec.path) ?? ''),
  }
}

/** The grants the policy declares, or undefined when no bundle defines the entrypoint. */
export function policyGrants (snapshot: PolicySnapshot, grantsPath: string): Grant[] | undefined {
  if (snapshot.resolve(grantsPath).kind === 'none') return undefined
  const ev = snapshot.evaluate(grantsPath, {})
  if (!ev.defined || !Array.isArray(ev.result)) return undefined
  const out: Grant[] = []
  for (const g of ev.result.slice(0, MAX_ROWS)) {
    if (!isObject(g)) continue
    out.push({ caller: str(g.caller) ?? '*', path: str(g.path) ?? '*', method: str(g.method) ?? '*' })
  }
  return out
}

const cmp = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
const fits = (pattern: string, v: string): boolean => pattern === '*' || pattern === v

export async function accessReview (dir: string, filter: ConsoleFilter, grants: Grant[] | undefined, grantsPath: string, now = Date.now()): Promise<AccessReview> {
  const { fromMs, toMs } = boundedRange(filter, 30 * 86_400_000, MAX_REVIEW_RANGE_MS, now)
  const rows = new Map<string, ReviewRow & { firstMs: number, lastMs: number }>()
  let truncated = false
  const reader = await AuditDirReader.open(dir)
  try {
    for (const id of reader.streams()) {
      const s = reader.stream(id)
      const start = await s.findSeqAt(new Date(fromMs))
      for await (const { seq, bytes } of s.records(start)) {
        const p = parseRecord(seq, bytes)
        if (p === undefined || !Number.isFinite(p.ts) || p.ts < fromMs || p.ts >= toMs || !filter.matches(p.rec)) continue
        const o = p.rec.outcome
        if (o !== 'allow' && o !== 'deny') continue
        const { path, method } = requestOf(p.rec)
        const caller = callerOf(p.rec)
        const key = JSON.stringify([caller, path, method])
        let row = rows.get(key)
        if (row === undefined) {
          if (rows.size >= MAX_ROWS) { truncated = true; continue }
          row = { caller, path, method, allow: 0, deny: 0, first_seen: '', last_seen: '', firstMs: p.ts, lastMs: p.ts }
          rows.set(key, row)
        }
        row[o]++
        row.firstMs = Math.min(row.firstMs, p.ts)
        row.lastMs = Math.max(row.lastMs, p.ts)
      }
    }
  } finally { reader.close() }
  const out: ReviewRow[] = [...rows.values()].map((r) => ({ caller: r.caller, path: r.path, method: r.method, allow: r.allow, deny: r.deny, first_seen: new Date(r.firstMs).toISOString(), last_seen: new Date(r.lastMs).toISOString() }))
    // code-unit order: the same on every host, whatever its locale
    .sort((a, b) => cmp(a.caller, b.caller) || cmp(a.path, b.path) || cmp(a.method, b.method))
  const unused = (grants ?? []).filter((g) => !out.some((r) => r.allow > 0 && fits(g.caller, r.caller) && fits(g.path, r.path) && fits(g.method, r.method)))
  return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), rows: out, unused, grants_source: grants === undefined ? null : grantsPath, rows_truncated: truncated }
}

export function accessReviewCsv (r: AccessReview): string {
  const rows: string[][] = [['kind', 'caller', 'path', 'method', 'allow', 'deny', 'first_seen', 'last_seen']]
  for (const x of r.rows) rows.push(['used', x.caller, x.path, x.method, String(x.allow), String(x.deny), x.first_seen, x.last_seen])
  for (const g of r.unused) rows.push(['unused', g.caller, g.path, g.method, '0', '0', '', ''])
  // a caller controls input.path and method: cells starting = + - @ are written as text, not formulas
  return stringify(rows, { escape_formulas: true })
}

/** A printable, self-contained page: inline CSS, no script, every value escaped. */
export function accessReviewHtml (r: AccessReview): string {
  const e = escapeHtml
  const used = r.rows.map((x) => `<tr><td>${e(x.caller)}</td><td>${e(x.path)}</td><td>${e(x.method)}</td><td>${x.allow}</td><td>${x.deny}</td><td>${e(x.first_seen)}</td><td>${e(x.last_seen)}</td></tr>`).join('\n')
  const unused = r.unused.map((g) => `<tr><td>${e(g.caller)}</td><td>${e(g.path)}</td><td>${e(g.method)}</td></tr>`).join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Access review ${e(r.from)} – ${e(r.to)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #999;padding:.25em .5em;text-align:left}@media print{body{margin:0}}</style>
</head><body>
<h1>Access review</h1>
<p>Period: ${e(r.from)} to ${e(r.to)}. Grants: ${r.grants_source === null ? 'no grants policy' : e(r.grants_source)}.${r.rows_truncated ? ' Rows truncated.' : ''}</p>
<h2>Permissions exercised</h2>
<table><thead><tr><th>Caller</th><th>Path</th><th>Method</th><th>Allowed</th><th>Denied</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>
${used}
</tbody></table>
<h2>Granted but unused</h2>
<table><thead><tr><th>Caller</th><th>Path</th><th>Method</th></tr></thead><tbody>
${unused}
</tbody></table>
</body></html>
`
}
