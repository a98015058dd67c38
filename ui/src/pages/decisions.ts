/**
 * Decisions: the filterable table, newest first, paged by the server's opaque cursor (it scans
 * backwards with an index; the browser never holds more than the pages it was shown).
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { exportDropsFilters, exportUrl, filterParams, filtersFrom, formatTime, getJson, type Filters } from '../api.js'
import { ErrorBox, FilterBar, Loading, Outcome } from '../components.js'
import { href, navigate, type Route } from '../route.js'

export interface DecisionRow {
  id: string
  stream: string
  seq: number
  decision_id: string
  timestamp: string
  path: string
  outcome: string
  transport: string
  caller: string | null
  caller_type?: string
  bundles?: Record<string, { revision?: string }>
  cached: boolean
  reasons?: unknown
}

interface Page { items: DecisionRow[], next_cursor: string | null, scanned: number }

const PAGE = 50
/** Requests per page at most (each examines a bounded slice of the log on the server). */
const MAX_REQUESTS = 20

export function revisions (b: DecisionRow['bundles']): string {
  if (b === undefined) return '—'
  const names = Object.keys(b)
  return names.length === 0 ? '—' : names.map((n) => `${n}@${b[n]?.revision ?? '?'}`).join(', ')
}

export function DecisionsPage ({ route }: { route: Route }): ComponentChildren {
  const filters = filtersFrom(route.params)
  const key = filterParams(filters).toString()
  const [rows, setRows] = useState<DecisionRow[]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<unknown>(null)

  const load = async (after: string | null, append: boolean): Promise<void> => {
    setLoading(true)
    setError(null)
    try {
      // the server examines a bounded number of records per request, so a page may come back
      // short (even empty) with more to come: keep asking, a bounded number of times
      const got: DecisionRow[] = []
      let next = after
      for (let i = 0; i < MAX_REQUESTS; i++) {
        const p = filterParams(filters)
        p.set('limit', String(PAGE - got.length))
        if (next !== null) p.set('cursor', next)
        const page = await getJson<Page>(`/v1/console/decisions?${p.toString()}`)
        got.push(...page.items)
        next = page.next_cursor
        if (next === null || got.length >= PAGE) break
      }
      setRows(append ? (prev) => [...prev, ...got] : got)
      setCursor(next)
    } catch (e) { setError(e) } finally { setLoading(false) }
  }
  useEffect(() => { setRows([]); setCursor(null); void load(null, false) }, [key])

  const apply = (f: Filters): void => navigate('decisions', [], filterParams(f))
  return html`
    <h1>Decisions</h1>
    <p class="lede">Every decision Portcullis made, newest first. Filter, then open one to see its input, result and its proof of inclusion in the signed audit log.</p>
    <${FilterBar} key=${key} value=${filters} onApply=${apply} />
    <p class="export">Export this filter (with proofs):${' '}
      <a href=${exportUrl(filters, 'ndjson')} download="decisions.ndjson" id="export-ndjson">NDJSON</a>${' · '}
      <a href=${exportUrl(filters, 'csv')} download="decisions.csv" id="export-csv">CSV</a>
      ${exportDropsFilters(filters) && html`<span class="muted"> (the export filters by time, outcome, caller and path only)</span>`}
    </p>
    ${error !== null && html`<${ErrorBox} error=${error} />`}
    <table class="data" aria-describedby="decisions-count">
      <caption id="decisions-count">${rows.length} decision${rows.length === 1 ? '' : 's'} shown${cursor !== null ? ' (more available)' : ''}</caption>
      <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Outcome</th><th scope="col">Caller</th><th scope="col">Path</th><th scope="col">Transport</th><th scope="col">Revision</th><th scope="col">Cached</th><th scope="col"><span class="sr-only">Details</span></th></tr></thead>
      <tbody>
        ${rows.map((r) => html`
          <tr key=${r.id}>
            <td class="nowrap">${formatTime(r.timestamp)}</td>
            <td><${Outcome} outcome=${r.outcome} /></td>
            <td class="mono">${r.caller ?? html`<span class="muted">anonymous</span>`}</td>
            <td class="mono">${r.path}</td>
            <td>${r.transport}</td>
            <td class="mono">${revisions(r.bundles)}</td>
            <td>${r.cached ? 'yes' : 'no'}</td>
            <td><a class="open" href=${href('decision', [r.stream, String(r.seq)])} aria-label=${`Open decision ${r.decision_id}`}>Open</a></td>
          </tr>`)}
      </tbody>
    </table>
    ${loading && html`<${Loading} what="decisions" />`}
    ${!loading && rows.length === 0 && error === null && html`<p class="muted">No decision matches these filters.</p>`}
    ${cursor !== null && !loading && html`<button type="button" onClick=${() => { void load(cursor, true) }}>Load ${PAGE} more</button>`}`
}
