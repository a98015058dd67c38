/**
 * Replay: what would change if this candidate bundle had been live? Uploads the bundle (the
 * server checks its signature like any bundle), then polls the job and shows every decision
 * that would change, grouped by path and caller.
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { getJson, localToRfc3339, postJson } from '../api.js'
import { ErrorBox } from '../components.js'

interface ReplayJob {
  state: 'running' | 'done' | 'failed'
  progress: { events_read: number, events_total: number }
  error?: { code: string, message: string }
  report?: {
    candidate: { bundles: Record<string, { revision: string }> }
    totals: { events: number, replayed: number, unchanged: number, changed: number, not_replayable: number, errors: number, gaps: number }
    changes: Record<string, number>
    groups: Array<{ path: string, caller: string, changed: number, changes: Record<string, number>, examples: Array<{ decision_id: string, change: string, old_outcome: string, new_outcome: string }> }>
    not_replayable: Array<{ path: string, caller: string, count: number }>
  }
}

const POLL_MS = 500
const MAX_POLLS = 1200

export function ReplayPage (): ComponentChildren {
  const [job, setJob] = useState<ReplayJob | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [running, setRunning] = useState(false)
  const cancelled = useRef(false)
  useEffect(() => () => { cancelled.current = true }, [])
  const submit = async (ev: Event): Promise<void> => {
    ev.preventDefault()
    const form = ev.target as HTMLFormElement
    const data = new FormData(form)
    // datetime-local values are local time: send RFC 3339
    for (const k of ['from', 'to']) {
      const v = data.get(k)
      data.delete(k)
      const t = typeof v === 'string' ? localToRfc3339(v) : undefined
      if (t !== undefined) data.set(k, t)
    }
    if (data.get('path') === '') data.delete('path')
    setRunning(true); setJob(null); setError(null)
    try {
      const { job: id } = await postJson<{ job: string }>('/v1/console/replay', data)
      for (let i = 0; i < MAX_POLLS && !cancelled.current; i++) {
        const j = await getJson<ReplayJob>(`/v1/console/replay/${encodeURIComponent(id)}`)
        setJob(j)
        if (j.state !== 'running') break
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    } catch (e) { setError(e) } finally { setRunning(false) }
  }
  const r = job?.report
  return html`
    <h1>Replay a candidate policy</h1>
    <p class="lede">Re-evaluates the stored inputs of past decisions against a candidate bundle and lists every decision that would change. Inputs changed by masking are reported as not replayable, never guessed.</p>
    <form class="filters" onSubmit=${(e: Event) => { void submit(e) }} aria-label="Replay a candidate bundle">
      <div class="field wide"><label for="r-bundle">Candidate bundle (.tar.gz)</label><input id="r-bundle" name="bundle" type="file" accept=".tar.gz,.tgz,application/gzip" required /></div>
      <div class="field"><label for="r-from">From</label><input id="r-from" name="from" type="datetime-local" /></div>
      <div class="field"><label for="r-to">To</label><input id="r-to" name="to" type="datetime-local" /></div>
      <div class="field"><label for="r-path">Path prefix</label><input id="r-path" name="path" type="text" /></div>
      <div class="field actions"><button type="submit" disabled=${running}>${running ? 'Replaying…' : 'Replay'}</button></div>
    </form>
    ${error !== null && html`<${ErrorBox} error=${error} />`}
    ${job !== null && html`
      <div class="job" aria-live="polite">
        <label for="replay-progress">Progress: ${job.progress.events_read} of ${job.progress.events_total} records</label>
        <progress id="replay-progress" max=${Math.max(1, job.progress.events_total)} value=${job.progress.events_read}></progress>
        ${job.state === 'failed' && html`<p class="bad">Replay failed${job.error !== undefined ? `: ${job.error.code} ${job.error.message}` : ''}.</p>`}
      </div>`}
    ${r !== undefined && html`
      <p id="replay-summary">Candidate ${Object.entries(r.candidate.bundles).map(([n, b]) => `${n}@${b.revision}`).join(', ')}: ${r.totals.replayed} replayed, <strong>${r.totals.changed} would change</strong>, ${r.totals.unchanged} unchanged, ${r.totals.not_replayable} not replayable.</p>
      <table class="data"><caption>Changes by kind</caption><thead><tr>${Object.keys(r.changes).map((k) => html`<th scope="col">${k.replace(/_/g, ' ')}</th>`)}</tr></thead>
        <tbody><tr>${Object.values(r.changes).map((v) => html`<td>${v}</td>`)}</tr></tbody></table>
      <table class="data" id="replay-groups"><caption>Changed decisions by path and caller</caption>
        <thead><tr><th scope="col">Path</th><th scope="col">Caller</th><th scope="col">Changed</th><th scope="col">Examples</th></tr></thead>
        <tbody>${r.groups.map((g) => html`<tr><td class="mono">${g.path}</td><td class="mono">${g.caller}</td><td>${g.changed}</td><td><ul class="plain">${g.examples.map((x) => html`<li><span class="mono">${x.decision_id}</span>: ${x.old_outcome} → ${x.new_outcome}</li>`)}</ul></td></tr>`)}</tbody></table>
      ${r.not_replayable.length > 0 && html`<h2>Not replayable</h2><table class="data"><thead><tr><th scope="col">Path</th><th scope="col">Caller</th><th scope="col">Count</th></tr></thead>
        <tbody>${r.not_replayable.map((g) => html`<tr><td class="mono">${g.path}</td><td class="mono">${g.caller}</td><td>${g.count}</td></tr>`)}</tbody></table>`}`}`
}
