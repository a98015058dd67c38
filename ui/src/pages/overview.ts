/**
 * Overview: decisions over time by outcome (uPlot), with bundle revisions marked on the same
 * time axis, then the tables a reviewer reads: deny rate by path, top denied callers, identity
 * rejections by code. Each chart has its data as a table too (screen readers, printing).
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import { filterParams, filtersFrom, formatTime, getJson, type Filters } from '../api.js'
import { ErrorBox, FilterBar, Loading } from '../components.js'
import { navigate, type Route } from '../route.js'

interface Overview {
  from: string
  to: string
  bucket_seconds: number
  series: Array<{ t: string | number, allow: number, deny: number, undefined: number, error: number }>
  deny_by_path: Array<{ path: string, total: number, deny: number, deny_rate: number }>
  top_denied_callers: Array<{ caller: string, deny: number }>
  identity_rejections: Array<{ code: string, count: number }>
  revisions: Array<{ bundle: string, revision: string, first_seen: string, last_seen: string }>
}

const COLORS = { allow: '#1b7f3b', deny: '#b3261e', undefined: '#5f6368', error: '#b35c00' }

const seconds = (t: string | number): number => typeof t === 'number' ? (t > 1e11 ? t / 1000 : t) : Date.parse(t) / 1000

function Chart ({ data }: { data: Overview }): ComponentChildren {
  const el = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (el.current === null) return
    const xs = data.series.map((p) => seconds(p.t))
    const marks = data.revisions.map((r) => ({ t: Date.parse(r.first_seen) / 1000, label: `${r.bundle}@${r.revision}` }))
    const plot = new uPlot({
      width: Math.min(1180, el.current.clientWidth || 1180),
      height: 280,
      scales: { x: { time: true } },
      axes: [{}, { label: 'decisions per bucket' }],
      series: [
        {},
        { label: 'allow', stroke: COLORS.allow, width: 2 },
        { label: 'deny', stroke: COLORS.deny, width: 2 },
        { label: 'undefined', stroke: COLORS.undefined, width: 2, dash: [6, 4] },
        { label: 'error', stroke: COLORS.error, width: 2, dash: [2, 3] },
      ],
      hooks: {
        // bundle revisions as vertical rules on the same time axis
        draw: [(u: uPlot) => {
          const ctx = u.ctx
          ctx.save()
          ctx.strokeStyle = '#3949ab'
          ctx.fillStyle = '#3949ab'
          ctx.setLineDash([4, 4])
          ctx.font = `${Math.round(11 * devicePixelRatio)}px sans-serif`
          for (const m of marks) {
            const x = Math.round(u.valToPos(m.t, 'x', true))
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue
            ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke()
            ctx.fillText(m.label, x + 4, u.bbox.top + 12 * devicePixelRatio)
          }
          ctx.restore()
        }],
      },
    }, [xs, data.series.map((p) => p.allow), data.series.map((p) => p.deny), data.series.map((p) => p.undefined), data.series.map((p) => p.error)], el.current)
    return () => plot.destroy()
  }, [data])
  return html`<figure class="chart"><div ref=${el} id="decisions-chart" role="img" aria-label="Decisions over time by outcome; the same data is in the table below"></div>
    <figcaption>Decisions per ${data.bucket_seconds}-second bucket, ${formatTime(data.from)} to ${formatTime(data.to)}. Dashed blue rules mark when a bundle revision was first seen.</figcaption></figure>`
}

export function OverviewPage ({ route }: { route: Route }): ComponentChildren {
  const filters = filtersFrom(route.params)
  const key = filterParams(filters).toString()
  const [data, setData] = useState<Overview | null>(null)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    let live = true
    setData(null); setError(null)
    const p = filterParams(filters)
    p.set('bucket', 'auto')
    getJson<Overview>(`/v1/console/overview?${p.toString()}`).then((d) => { if (live) setData(d) }, (e) => { if (live) setError(e) })
    return () => { live = false }
  }, [key])
  const apply = (f: Filters): void => navigate('overview', [], filterParams(f))
  const pct = (r: number): string => `${(r * 100).toFixed(1)}%`
  return html`
    <h1>Overview</h1>
    <p class="lede">How many decisions, how many denied, where and for whom — and which policy revision was live when.</p>
    <${FilterBar} key=${key} value=${filters} onApply=${apply} />
    ${error !== null && html`<${ErrorBox} error=${error} />`}
    ${data === null && error === null && html`<${Loading} what="the overview" />`}
    ${data !== null && html`
      <${Chart} data=${data} />
      <details><summary>Chart data as a table</summary>
        <table class="data"><thead><tr><th scope="col">Bucket start (UTC)</th><th scope="col">allow</th><th scope="col">deny</th><th scope="col">undefined</th><th scope="col">error</th></tr></thead>
          <tbody>${data.series.map((p) => html`<tr><td>${formatTime(new Date(seconds(p.t) * 1000).toISOString())}</td><td>${p.allow}</td><td>${p.deny}</td><td>${p.undefined}</td><td>${p.error}</td></tr>`)}</tbody></table>
      </details>
      <div class="grid2">
        <section aria-labelledby="h-deny-path"><h2 id="h-deny-path">Deny rate by path</h2>
          <table class="data"><thead><tr><th scope="col">Path</th><th scope="col">Decisions</th><th scope="col">Denied</th><th scope="col">Deny rate</th></tr></thead>
            <tbody>${data.deny_by_path.map((r) => html`<tr><td class="mono">${r.path}</td><td>${r.total}</td><td>${r.deny}</td><td><meter min="0" max="1" value=${r.deny_rate} aria-hidden="true"></meter> ${pct(r.deny_rate)}</td></tr>`)}</tbody></table></section>
        <section aria-labelledby="h-top-denied"><h2 id="h-top-denied">Top denied callers</h2>
          <table class="data"><thead><tr><th scope="col">Caller</th><th scope="col">Denied</th></tr></thead>
            <tbody>${data.top_denied_callers.map((r) => html`<tr><td class="mono">${r.caller}</td><td>${r.deny}</td></tr>`)}</tbody></table></section>
        <section aria-labelledby="h-rejections"><h2 id="h-rejections">Identity rejections by code</h2>
          ${data.identity_rejections.length === 0 ? html`<p class="muted">None in this period.</p>` : html`
          <table class="data"><thead><tr><th scope="col">Code</th><th scope="col">Count</th></tr></thead>
            <tbody>${data.identity_rejections.map((r) => html`<tr><td class="mono">${r.code}</td><td>${r.count}</td></tr>`)}</tbody></table>`}</section>
        <section aria-labelledby="h-revisions"><h2 id="h-revisions">Policy revisions</h2>
          <table class="data"><thead><tr><th scope="col">Bundle</th><th scope="col">Revision</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
            <tbody>${data.revisions.map((r) => html`<tr><td class="mono">${r.bundle}</td><td class="mono">${r.revision}</td><td>${formatTime(r.first_seen)}</td><td>${formatTime(r.last_seen)}</td></tr>`)}</tbody></table></section>
      </div>`}`
}
