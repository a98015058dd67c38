/** Pieces shared by the pages: the decision filter bar, error and loading states, outcome badges. */
import { html } from 'htm/preact'
import type { ComponentChildren } from 'preact'
import { useState } from 'preact/hooks'
import { ApiError, localToRfc3339, OUTCOMES, rfc3339ToLocal, TRANSPORTS, type Filters } from './api.js'

export function ErrorBox ({ error }: { error: unknown }): ComponentChildren {
  const e = error as Error
  const code = e instanceof ApiError ? e.code : 'ERROR'
  return html`<div class="error" role="alert"><strong>${code}</strong>: ${e.message}</div>`
}

export function Loading ({ what }: { what: string }): ComponentChildren {
  return html`<p class="muted" role="status">Loading ${what}…</p>`
}

export function Outcome ({ outcome }: { outcome: string }): ComponentChildren {
  return html`<span class=${`badge badge-${outcome}`}>${outcome}</span>`
}

const split = (v: string): string[] => v.split(',').map((s) => s.trim()).filter((s) => s !== '')

/**
 * The filter form: every control labelled, submitted with Enter or the Apply button; comma
 * separates several callers or paths (repeatable params).
 */
export function FilterBar ({ value, onApply, fields = 'all' }: { value: Filters, onApply: (f: Filters) => void, fields?: 'all' | 'time' }): ComponentChildren {
  const [from, setFrom] = useState(rfc3339ToLocal(value.from))
  const [to, setTo] = useState(rfc3339ToLocal(value.to))
  const [outcome, setOutcome] = useState<string[]>(value.outcome)
  const [caller, setCaller] = useState(value.caller.join(', '))
  const [path, setPath] = useState(value.path.join(', '))
  const [transport, setTransport] = useState(value.transport[0] ?? '')
  const [revision, setRevision] = useState(value.revision ?? '')
  const [cached, setCached] = useState(value.cached ?? '')
  const submit = (ev: Event): void => {
    ev.preventDefault()
    onApply({
      from: localToRfc3339(from),
      to: localToRfc3339(to),
      outcome,
      caller: split(caller),
      path: split(path),
      transport: transport === '' ? [] : [transport],
      revision: revision.trim() === '' ? undefined : revision.trim(),
      cached: cached === '' ? undefined : cached,
    })
  }
  const toggle = (o: string): void => setOutcome(outcome.includes(o) ? outcome.filter((x) => x !== o) : [...outcome, o])
  const input = (ev: Event): string => (ev.target as HTMLInputElement).value
  return html`
    <form class="filters" onSubmit=${submit} aria-label="Filter decisions">
      <div class="field"><label for="f-from">From</label><input id="f-from" name="from" type="datetime-local" value=${from} onInput=${(e: Event) => setFrom(input(e))} /></div>
      <div class="field"><label for="f-to">To</label><input id="f-to" name="to" type="datetime-local" value=${to} onInput=${(e: Event) => setTo(input(e))} /></div>
      ${fields === 'all' && html`
        <fieldset class="field outcomes"><legend>Outcome</legend>
          ${OUTCOMES.map((o) => html`<label class="check"><input type="checkbox" name="outcome" value=${o} checked=${outcome.includes(o)} onChange=${() => toggle(o)} /> ${o}</label>`)}
        </fieldset>`}
      <div class="field wide"><label for="f-caller">Caller (SPIFFE ID or subject)</label><input id="f-caller" name="caller" type="text" placeholder="spiffe://example.org/ns/shop/sa/frontend" value=${caller} onInput=${(e: Event) => setCaller(input(e))} /></div>
      <div class="field"><label for="f-path">Path prefix</label><input id="f-path" name="path" type="text" placeholder="authz/allow" value=${path} onInput=${(e: Event) => setPath(input(e))} /></div>
      ${fields === 'all' && html`
        <div class="field"><label for="f-transport">Transport</label>
          <select id="f-transport" name="transport" value=${transport} onChange=${(e: Event) => setTransport(input(e))}>
            <option value="">any</option>
            ${TRANSPORTS.map((t) => html`<option value=${t}>${t}</option>`)}
          </select></div>
        <div class="field"><label for="f-revision">Bundle revision</label><input id="f-revision" name="revision" type="text" value=${revision} onInput=${(e: Event) => setRevision(input(e))} /></div>
        <div class="field"><label for="f-cached">Cached</label>
          <select id="f-cached" name="cached" value=${cached} onChange=${(e: Event) => setCached(input(e))}>
            <option value="">any</option><option value="true">cached only</option><option value="false">evaluated only</option>
          </select></div>`}
      <div class="field actions"><button type="submit">Apply filters</button></div>
    </form>`
}

export function Json ({ value, label }: { value: unknown, label: string }): ComponentChildren {
  return html`<pre class="json" tabindex="0" aria-label=${label}>${value === undefined ? '(absent)' : JSON.stringify(value, null, 2)}</pre>`
}
