/**
 * One decision: what was asked (masked input), what was answered, who asked, why (reasons), under
 * which bundle revision, how long it took — and the proof, checked here in the browser
 * (verify.ts) rather than taken from the server's word.
 */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { formatTime, getJson } from '../api.js'
import { ErrorBox, Json, Loading, Outcome } from '../components.js'
import { href } from '../route.js'
import { verifyDecisionEvidence, type DecisionEvidence, type ProofResult } from '../verify.js'

interface Detail extends DecisionEvidence {
  id: string
  stream: string
  seq: number
  sealed?: boolean
  event: Record<string, unknown>
}

function ProofStatus ({ result }: { result: ProofResult | null }): ComponentChildren {
  if (result === null) return html`<p class="proof pending" role="status" id="proof-status">Inclusion proof: checking…</p>`
  if (result.ok) {
    return html`<p class="proof ok" role="status" id="proof-status">Inclusion proof: <strong>verified ✓</strong> against checkpoint of size ${result.size} signed by <span class="mono">${result.keyName}</span></p>`
  }
  if (result.failed === 'unsealed') return html`<p class="proof pending" role="status" id="proof-status">Inclusion proof: not yet sealed — ${result.detail}</p>`
  return html`<div class="proof failed" role="alert" id="proof-status"><p>Inclusion proof: <strong>verification failed ✗</strong> (step: ${result.failed})</p><p>${result.detail}</p></div>`
}

function recordObject (record: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(record) as unknown
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch { return undefined }
}

export function DetailPage ({ stream, seq }: { stream: string, seq: string }): ComponentChildren {
  const [d, setD] = useState<Detail | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [proof, setProof] = useState<ProofResult | null>(null)
  useEffect(() => {
    let live = true
    setD(null); setProof(null); setError(null)
    getJson<Detail>(`/v1/console/decisions/${encodeURIComponent(stream)}/${encodeURIComponent(seq)}`)
      .then(async (detail) => {
        if (!live) return
        setD(detail)
        const r = await verifyDecisionEvidence(detail).catch((e: Error): ProofResult => ({ ok: false, failed: 'signature', detail: `The browser could not run the check: ${e.message}` }))
        if (live) setProof(r)
      })
      .catch((e) => { if (live) setError(e) })
    return () => { live = false }
  }, [stream, seq])
  if (error !== null) return html`<h1>Decision</h1><${ErrorBox} error=${error} />`
  if (d === null) return html`<h1>Decision</h1><${Loading} what="the decision" />`
  // show what the proof covers: the stored record itself, parsed here (the server's parsed
  // `event` only when the record is not a JSON object)
  const ev = recordObject(d.record) ?? d.event
  const str = (k: string): string | undefined => typeof ev[k] === 'string' ? ev[k] as string : undefined
  const bundles = (ev.bundles ?? {}) as Record<string, { revision?: string }>
  const masked = Array.isArray(ev.masked) ? ev.masked as string[] : []
  const erased = Array.isArray(ev.erased) ? ev.erased as string[] : []
  return html`
    <p><a href=${href('decisions')}>← Back to decisions</a></p>
    <h1>Decision <span class="mono">${str('decision_id') ?? d.id}</span></h1>
    <${ProofStatus} result=${proof} />
    ${proof !== null && proof.leafHashHex !== undefined && html`
      <details class="proof-details"><summary>How this was checked</summary>
        <ol>
          <li>Leaf hash SHA-256(0x00 ‖ record) = <code>${proof.leafHashHex}</code></li>
          <li>Folded ${d.proof?.hashes.length ?? 0} proof hashes (RFC 9162 §2.1.3.2) for leaf ${d.proof?.leaf_index} of ${d.proof?.tree_size} to root <code>${proof.computedRootHex}</code></li>
          <li>Compared with the root in the signed checkpoint of <span class="mono">${proof.origin}</span></li>
          <li>Checked the checkpoint's Ed25519 signature with the log's public key (WebCrypto)</li>
        </ol>
      </details>`}
    <dl class="facts">
      <dt>Time</dt><dd>${formatTime(str('timestamp'))}</dd>
      <dt>Outcome</dt><dd><${Outcome} outcome=${str('outcome') ?? '?'} /></dd>
      <dt>Path</dt><dd class="mono">${str('path')}</dd>
      <dt>Transport</dt><dd>${str('transport')}${ev.cached === true ? ' (answered from the decision cache)' : ''}</dd>
      <dt>Bundle revisions</dt><dd class="mono">${Object.keys(bundles).map((n) => `${n}@${bundles[n]?.revision ?? '?'}`).join(', ') || '—'}</dd>
      <dt>Audit record</dt><dd class="mono">stream ${d.stream}, seq ${d.seq}</dd>
      ${masked.length + erased.length > 0 && html`<dt>Masked</dt><dd class="mono">${[...masked, ...erased.map((e) => `${e} (erased)`)].join(', ')}</dd>`}
      ${str('identity_error') !== undefined && html`<dt>Identity rejected</dt><dd class="mono">${str('identity_error')}</dd>`}
    </dl>
    <div class="grid2">
      <section aria-labelledby="h-identity"><h2 id="h-identity">Identity</h2><${Json} value=${ev.identity} label="Caller identity" /></section>
      <section aria-labelledby="h-reasons"><h2 id="h-reasons">Reasons</h2><${Json} value=${ev.reasons} label="Deny reasons" /></section>
      <section aria-labelledby="h-input"><h2 id="h-input">Input (as stored, masked)</h2><${Json} value=${ev.input} label="Decision input" /></section>
      <section aria-labelledby="h-result"><h2 id="h-result">Result</h2><${Json} value=${ev.result} label="Decision result" /></section>
      <section aria-labelledby="h-timing"><h2 id="h-timing">Timing</h2><${Json} value=${ev.metrics} label="Timing metrics" /></section>
      <section aria-labelledby="h-error"><h2 id="h-error">Error</h2><${Json} value=${ev.error} label="Decision error" /></section>
    </div>
    <details><summary>Stored record (exact bytes the proof covers)</summary><pre class="json" tabindex="0">${d.record}</pre></details>`
}
