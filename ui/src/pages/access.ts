/**
 * Access review: for a period, which caller used which service path and method, how often it
 * was allowed and denied, first and last seen — and the grants the policy gives that nobody
 * used (least-privilege evidence). The same data downloads as CSV and opens as a printable report.
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { formatTime, getJson, localToRfc3339, rfc3339ToLocal } from '../api.js'
import { ErrorBox, Loading } from '../components.js'
import { navigate, type Route } from '../route.js'

interface Review {
  from: string
  to: string
  rows: Array<{ caller: string, path: string, method: string, allow: number, deny: number, first_seen: string, last_seen: string }>
  unused: Array<{ caller: string, path: string, method: string }>
  grants_source: string | null
  /** The server keeps a bounded number of rows; more existed. */
  rows_truncated?: boolean
}

/** Quick periods a reviewer asks for; "last quarter" is the previous calendar quarter. */
function period (kind: string, now = new Date()): { from: string, to: string } {
  // the form has minute precision: end at the next whole minute so decisions made just now count
  const end = new Date(Math.ceil((now.getTime() + 1) / 60_000) * 60_000).toISOString()
  if (kind === '24h') return { from: new Date(now.getTime() - 86_400_000).toISOString(), to: end }
  if (kind === '30d') return { from: new Date(now.getTime() - 30 * 86_400_000).toISOString(), to: end }
  const q = Math.floor(now.getUTCMonth() / 3)
  if (kind === 'this-quarter') return { from: new Date(Date.UTC(now.getUTCFullYear(), q * 3, 1)).toISOString(), to: end }
  const start = new Date(Date.UTC(now.getUTCFullYear(), (q - 1) * 3, 1))
  return { from: start.toISOString(), to: new Date(Date.UTC(now.getUTCFullYear(), q * 3, 1)).toISOString() }
}

export function AccessPage ({ route }: { route: Route }): ComponentChildren {
  const p = route.params
  const from = p.get('from') ?? undefined
  const to = p.get('to') ?? undefined
  const caller = p.get('caller') ?? ''
  const path = p.get('path') ?? ''
  const [fFrom, setFrom] = useState(rfc3339ToLocal(from))
  const [fTo, setTo] = useState(rfc3339ToLocal(to))
  const [fCaller, setCaller] = useState(caller)
  const [fPath, setPath] = useState(path)
  const [data, setData] = useState<Review | null>(null)
  const [error, setError] = useState<unknown>(null)
  const query = (): URLSearchParams => {
    const q = new URLSearchParams()
    if (from !== undefined) q.set('from', from)
    if (to !== undefined) q.set('to', to)
    if (caller !== '') q.set('caller', caller)
    if (path !== '') q.set('path', path)
    return q
  }
  const ran = from !== undefined && to !== undefined
  useEffect(() => {
    if (!ran) return
    let live = true
    setData(null); setError(null)
    const q = query(); q.set('format', 'json')
    getJson<Review>(`/v1/console/access-review?${q.toString()}`).then((d) => { if (live) setData(d) }, (e) => { if (live) setError(e) })
    return () => { live = false }
  }, [p.toString()])
  const submit = (ev: Event): void => {
    ev.preventDefault()
    const q = new URLSearchParams()
    const a = localToRfc3339(fFrom); const b = localToRfc3339(fTo)
    if (a !== undefined) q.set('from', a)
    if (b !== undefined) q.set('to', b)
    if (fCaller.trim() !== '') q.set('caller', fCaller.trim())
    if (fPath.trim() !== '') q.set('path', fPath.trim())
    navigate('access', [], q)
  }
  const pick = (kind: string): void => { const r = period(kind); setFrom(rfc3339ToLocal(r.from)); setTo(rfc3339ToLocal(r.to)) }
  const link = (format: string): string => { const q = query(); q.set('format', format); return `/v1/console/access-review?${q.toString()}` }
  const value = (ev: Event): string => (ev.target as HTMLInputElement).value
  return html`
    <h1>Access review</h1>
    <p class="lede">Who accessed what in a period, how often they were allowed or denied, and which granted permissions went unused.</p>
    <form class="filters" onSubmit=${submit} aria-label="Access review period">
      <fieldset class="field presets"><legend>Period</legend>
        ${[['24h', 'Last 24 hours'], ['30d', 'Last 30 days'], ['this-quarter', 'This quarter'], ['last-quarter', 'Last quarter']].map(([k, l]) => html`<button type="button" class="secondary" onClick=${() => pick(k as string)}>${l}</button>`)}
      </fieldset>
      <div class="field"><label for="a-from">From</label><input id="a-from" type="datetime-local" required value=${fFrom} onInput=${(e: Event) => setFrom(value(e))} /></div>
      <div class="field"><label for="a-to">To</label><input id="a-to" type="datetime-local" required value=${fTo} onInput=${(e: Event) => setTo(value(e))} /></div>
      <div class="field wide"><label for="a-caller">Caller (optional)</label><input id="a-caller" type="text" value=${fCaller} onInput=${(e: Event) => setCaller(value(e))} /></div>
      <div class="field"><label for="a-path">Decision path prefix (optional)</label><input id="a-path" type="text" placeholder="payments" value=${fPath} onInput=${(e: Event) => setPath(value(e))} /></div>
      <div class="field actions"><button type="submit" id="run-review">Run review</button></div>
    </form>
    ${!ran && html`<p class="muted">Pick a period and run the review.</p>`}
    ${error !== null && html`<${ErrorBox} error=${error} />`}
    ${ran && data === null && error === null && html`<${Loading} what="the access review" />`}
    ${data !== null && html`
      <p class="export">Period ${formatTime(data.from)} – ${formatTime(data.to)}.${' '}
        <a href=${link('csv')} download="access-review.csv" id="review-csv">Download CSV</a>${' · '}
        <a href=${link('html')} target="_blank" rel="noopener" id="review-html">Open printable report</a></p>
      <table class="data" id="review-table">
        <caption>Caller × path × method (${data.rows.length} rows${data.rows_truncated === true ? '; more rows existed than the server keeps — narrow the period, caller or path' : ''})</caption>
        <thead><tr><th scope="col">Caller</th><th scope="col">Path</th><th scope="col">Method</th><th scope="col">Allowed</th><th scope="col">Denied</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
        <tbody>${data.rows.map((r) => html`<tr><td class="mono">${r.caller}</td><td class="mono">${r.path}</td><td>${r.method}</td><td>${r.allow}</td><td class=${r.deny > 0 ? 'bad' : ''}>${r.deny}</td><td>${formatTime(r.first_seen)}</td><td>${formatTime(r.last_seen)}</td></tr>`)}</tbody>
      </table>
      <h2>Granted but unused in this period</h2>
      ${data.grants_source === null
        ? html`<p class="muted">The policy declares no grants list (console.grants_path), so unused permissions cannot be listed.</p>`
        : html`<p>From the policy's <span class="mono">${data.grants_source}</span>:</p>
          ${data.unused.length === 0 ? html`<p class="good">Every granted permission was used.</p>` : html`
          <table class="data" id="unused-table"><thead><tr><th scope="col">Caller</th><th scope="col">Path</th><th scope="col">Method</th></tr></thead>
            <tbody>${data.unused.map((r) => html`<tr><td class="mono">${r.caller}</td><td class="mono">${r.path}</td><td>${r.method}</td></tr>`)}</tbody></table>`}`}`}`
}
