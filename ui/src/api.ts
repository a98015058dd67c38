/**
 * The console's only way to the server: same-origin fetches of /v1/console/* (and the audit
 * export), errors surfaced as the server's stable PORTCULLIS_* code. Filters live in the URL
 * hash so a view can be bookmarked, shared and exported with the same parameters.
 */

export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string) { super(message) }
}

async function failure (r: Response): Promise<ApiError> {
  let code = `HTTP_${r.status}`
  let message = r.statusText
  try {
    const body = await r.json() as { code?: string, message?: string }
    if (typeof body.code === 'string') code = body.code
    if (typeof body.message === 'string') message = body.message
  } catch { /* not JSON: keep the status */ }
  return new ApiError(r.status, code, message)
}

export async function getJson<T> (url: string): Promise<T> {
  const r = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' })
  if (!r.ok) throw await failure(r)
  return await r.json() as T
}

export async function postJson<T> (url: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<T> {
  const r = await fetch(url, { method: 'POST', body: body ?? null, headers: { accept: 'application/json', 'x-portcullis-console': '1', ...headers }, credentials: 'same-origin' })
  if (!r.ok) throw await failure(r)
  return await r.json() as T
}

/** The decision filters the contract defines (all optional; lists are repeatable params). */
export interface Filters {
  from?: string
  to?: string
  outcome: string[]
  caller: string[]
  path: string[]
  transport: string[]
  revision?: string
  cached?: string
}

export const OUTCOMES = ['allow', 'deny', 'undefined', 'error', 'value'] as const
export const TRANSPORTS = ['http', 'batch', 'cli', 'envoy-grpc', 'envoy-http'] as const

export function filtersFrom (params: URLSearchParams): Filters {
  const one = (k: string): string | undefined => { const v = params.get(k); return v === null || v === '' ? undefined : v }
  const many = (k: string): string[] => params.getAll(k).filter((v) => v !== '')
  return { from: one('from'), to: one('to'), outcome: many('outcome'), caller: many('caller'), path: many('path'), transport: many('transport'), revision: one('revision'), cached: one('cached') }
}

export function filterParams (f: Filters): URLSearchParams {
  const p = new URLSearchParams()
  if (f.from !== undefined) p.set('from', f.from)
  if (f.to !== undefined) p.set('to', f.to)
  for (const o of f.outcome) p.append('outcome', o)
  for (const c of f.caller) p.append('caller', c)
  for (const x of f.path) p.append('path', x)
  for (const t of f.transport) p.append('transport', t)
  if (f.revision !== undefined) p.set('revision', f.revision)
  if (f.cached !== undefined) p.set('cached', f.cached)
  return p
}

/**
 * The audit export (GET /v1/audit/events) for the filters it understands: time range, outcome,
 * caller (its spiffe_id) and path. Transport, revision and cached are not export filters; the
 * page says so next to the links.
 */
export function exportUrl (f: Filters, format: 'ndjson' | 'csv'): string {
  const p = new URLSearchParams()
  if (f.from !== undefined) p.set('from', f.from)
  if (f.to !== undefined) p.set('to', f.to)
  for (const o of f.outcome) p.append('outcome', o)
  for (const c of f.caller) p.append('spiffe_id', c)
  for (const x of f.path) p.append('path', x)
  p.set('format', format)
  return `/v1/audit/events?${p.toString()}`
}

export function exportDropsFilters (f: Filters): boolean {
  return f.transport.length > 0 || f.revision !== undefined || f.cached !== undefined
}

/** A datetime-local control's value (local time) as RFC 3339 UTC, and back. */
export function localToRfc3339 (v: string): string | undefined {
  if (v === '') return undefined
  const d = new Date(v)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

export function rfc3339ToLocal (v: string | undefined): string {
  if (v === undefined) return ''
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return ''
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

export function formatTime (v: string | undefined): string {
  if (v === undefined) return '—'
  const d = new Date(v)
  return Number.isNaN(d.getTime()) ? v : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}
