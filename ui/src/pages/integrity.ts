/**
 * Integrity: can the log be trusted to be complete? Per stream: the latest signed checkpoint,
 * whether its signature and consistency with the previous one hold, what retention removed
 * (provably) and what was lost (gaps), how much is not yet sealed; and a full verification run.
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { formatTime, getJson, postJson } from '../api.js'
import { ErrorBox, Loading } from '../components.js'

interface StreamIntegrity {
  stream: string
  events: number
  checkpoint: { size: number, root: string, origin: string, timestamp?: string } | null
  signature: 'valid' | 'invalid' | 'unverified'
  key_source: 'configured' | 'directory' | 'none'
  consistent_with_previous: boolean | null
  gaps: Array<{ first_seq: number, shed: number, first_shed_at: string, last_shed_at: string }>
  retained: Array<{ first_seq: number, last_seq: number }>
  unsealed_events: number
}

interface VerifyJob {
  state: 'running' | 'done' | 'failed'
  progress: { events_checked: number, events_total: number }
  report?: { ok: boolean, key: { source: string }, streams: Array<{ stream: string, events: number, records: number, checkpoints: number, signatures: string, problem?: { code: string, message: string, seq?: number } }>, warnings: string[] }
  error?: { code: string, message: string }
}

const POLL_MS = 500
/** Polling stops after this many polls (10 minutes): a bounded loop even if the job never ends. */
const MAX_POLLS = 1200

function yesNo (v: boolean | null, yes: string, no: string, unknown: string): ComponentChildren {
  if (v === null) return html`<span class="muted">${unknown}</span>`
  return v ? html`<span class="good">✓ ${yes}</span>` : html`<span class="bad">✗ ${no}</span>`
}

export function IntegrityPage (): ComponentChildren {
  const [data, setData] = useState<{ streams: StreamIntegrity[] } | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [job, setJob] = useState<VerifyJob | null>(null)
  const [jobError, setJobError] = useState<unknown>(null)
  const [running, setRunning] = useState(false)
  const cancelled = useRef(false)
  useEffect(() => {
    getJson<{ streams: StreamIntegrity[] }>('/v1/console/integrity').then(setData, setError)
    return () => { cancelled.current = true }
  }, [])

  const run = async (): Promise<void> => {
    setRunning(true); setJob(null); setJobError(null)
    try {
      const { job: id } = await postJson<{ job: string }>('/v1/console/verify')
      for (let i = 0; i < MAX_POLLS && !cancelled.current; i++) {
        const j = await getJson<VerifyJob>(`/v1/console/verify/${encodeURIComponent(id)}`)
        setJob(j)
        if (j.state !== 'running') break
        await new Promise((resolve) => setTimeout(resolve, POLL_MS))
      }
    } catch (e) { setJobError(e) } finally { setRunning(false) }
  }

  const sig = (s: StreamIntegrity): ComponentChildren =>
    s.signature === 'valid' ? html`<span class="good">✓ valid (${s.key_source} key)</span>` : s.signature === 'invalid' ? html`<span class="bad">✗ invalid</span>` : html`<span class="muted">unverified (no key)</span>`
  return html`
    <h1>Integrity</h1>
    <p class="lede">Whether the audit log is complete and unaltered: each stream is a Merkle tree whose signed checkpoints commit to every record before them.</p>
    ${error !== null && html`<${ErrorBox} error=${error} />`}
    ${data === null && error === null && html`<${Loading} what="integrity" />`}
    ${data !== null && html`
      <table class="data" id="integrity-table">
        <caption>Streams and their latest checkpoints</caption>
        <thead><tr><th scope="col">Stream</th><th scope="col">Events</th><th scope="col">Latest checkpoint</th><th scope="col">Signature</th><th scope="col">Consistent with previous</th><th scope="col">Gaps (events lost)</th><th scope="col">Removed by retention</th><th scope="col">Not yet sealed</th></tr></thead>
        <tbody>${data.streams.map((s) => html`
          <tr>
            <td class="mono">${s.stream}</td>
            <td>${s.events}</td>
            <td>${s.checkpoint === null ? html`<span class="muted">none yet</span>` : html`size ${s.checkpoint.size}<br /><span class="mono small">${s.checkpoint.origin}</span>${s.checkpoint.timestamp !== undefined ? html`<br />${formatTime(s.checkpoint.timestamp)}` : ''}`}</td>
            <td>${sig(s)}</td>
            <td>${yesNo(s.consistent_with_previous, 'consistent', 'INCONSISTENT', 'no previous checkpoint')}</td>
            <td>${s.gaps.length === 0 ? html`<span class="good">none</span>` : html`<ul class="plain">${s.gaps.map((g) => html`<li class="bad">${g.shed} shed at seq ${g.first_seq} (${formatTime(g.first_shed_at)} – ${formatTime(g.last_shed_at)})</li>`)}</ul>`}</td>
            <td>${s.retained.length === 0 ? 'none' : html`<ul class="plain">${s.retained.map((r) => html`<li>seq ${r.first_seq}–${r.last_seq}</li>`)}</ul>`}</td>
            <td>${s.unsealed_events}</td>
          </tr>`)}</tbody>
      </table>`}
    <section aria-labelledby="h-verify">
      <h2 id="h-verify">Full verification</h2>
      <p>Re-reads every record, recomputes every hash and checks every checkpoint signature and consistency on the server.</p>
      <button type="button" id="run-verify" onClick=${() => { void run() }} disabled=${running}>${running ? 'Verifying…' : 'Run verification'}</button>
      ${jobError !== null && html`<${ErrorBox} error=${jobError} />`}
      ${job !== null && html`
        <div class="job" aria-live="polite">
          <label for="verify-progress">Progress: ${job.progress.events_checked} of ${job.progress.events_total} events</label>
          <progress id="verify-progress" max=${Math.max(1, job.progress.events_total)} value=${job.progress.events_checked}></progress>
          ${job.state === 'failed' && html`<p class="bad" id="verify-result">Verification could not run${job.error !== undefined ? `: ${job.error.code}` : ''}.</p>`}
          ${job.state === 'done' && job.report !== undefined && html`
            <p id="verify-result" class=${job.report.ok ? 'good' : 'bad'}>${job.report.ok ? '✓ Verification passed: every record, hash and checkpoint checks out.' : '✗ Verification found problems.'}</p>
            <table class="data"><thead><tr><th scope="col">Stream</th><th scope="col">Events</th><th scope="col">Records read</th><th scope="col">Checkpoints</th><th scope="col">Signatures</th><th scope="col">Problem</th></tr></thead>
              <tbody>${job.report.streams.map((s) => html`<tr><td class="mono">${s.stream}</td><td>${s.events}</td><td>${s.records}</td><td>${s.checkpoints}</td><td>${s.signatures}</td><td>${s.problem === undefined ? html`<span class="good">none</span>` : html`<span class="bad mono">${s.problem.code}</span> ${s.problem.message}`}</td></tr>`)}</tbody></table>
            ${job.report.warnings.length > 0 && html`<ul>${job.report.warnings.map((w) => html`<li>${w}</li>`)}</ul>`}`}
        </div>`}
    </section>`
}
