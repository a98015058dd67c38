/**
 * A replay report written for people: a terminal table and a self-contained HTML page (inline
 * CSS, no script, no external asset, every value escaped), so the report can be attached to a
 * change request and opened offline. The JSON form is the report object itself (replay.ts).
 */
import { CHANGE_KINDS, type ChangeKind, type ReplayReport } from './replay.js'

export const REPORT_FORMATS = ['table', 'json', 'html'] as const
export type ReportFormat = (typeof REPORT_FORMATS)[number]

const LABEL: Record<ChangeKind, string> = {
  allow_to_deny: 'allow → deny',
  deny_to_allow: 'deny → allow',
  result_changed: 'result changed',
  undefined_to_defined: 'undefined → defined',
  defined_to_undefined: 'defined → undefined',
  to_error: 'now an error',
}

const json = (v: unknown): string => v === undefined ? '(undefined)' : JSON.stringify(v)

/** Lines padded into columns. */
function columns (rows: string[][]): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  '))
}

/** The report as a terminal table. */
export function reportTable (r: ReplayReport): string {
  const t = r.totals
  const out: string[] = []
  out.push(`Replay of ${r.audit_dir} against ${Object.entries(r.candidate.bundles).map(([n, b]) => `${n}@${b.revision}`).join(', ') || '(no bundle)'}`)
  out.push(`events ${t.events}  replayed ${t.replayed}  unchanged ${t.unchanged}  changed ${t.changed}  not replayable ${t.not_replayable}  errors ${t.errors}  gaps ${t.gaps} (${t.gap_events} events lost)${t.unreadable > 0 ? `  unreadable ${t.unreadable}` : ''}`)
  out.push('changes: ' + CHANGE_KINDS.map((k) => `${LABEL[k]} ${r.changes[k]}`).join(', '))
  out.push('')
  if (r.groups.length === 0) out.push('No decision would change.')
  else {
    const rows: string[][] = [['PATH', 'CALLER', 'CHANGE', 'COUNT']]
    for (const g of r.groups) {
      for (const k of CHANGE_KINDS) if (g.changes[k] > 0) rows.push([g.path, g.caller, LABEL[k], String(g.changes[k])])
    }
    out.push(...columns(rows))
    out.push('', 'Examples:')
    for (const g of r.groups) {
      out.push(`  ${g.path}  ${g.caller}`)
      for (const e of g.examples) {
        out.push(`    ${e.decision_id}  ${e.timestamp}  ${LABEL[e.change]}: ${json(e.old_result)} → ${e.new_error ?? json(e.new_result)}`)
      }
    }
  }
  if (r.not_replayable.length > 0) {
    out.push('', 'Not replayable (input changed by masking):')
    const rows: string[][] = [['PATH', 'CALLER', 'COUNT', 'EXAMPLES']]
    for (const g of r.not_replayable) rows.push([g.path, g.caller, String(g.count), g.decision_ids.join(' ')])
    out.push(...columns(rows).map((l) => `  ${l}`))
  }
  if (r.groups_truncated) out.push('', 'Too many groups: the rest are counted under "(other groups)".')
  return out.join('\n') + '\n'
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
/** HTML text and attribute escaping. */
export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c] as string)
}
const h = (v: unknown): string => escapeHtml(typeof v === 'string' ? v : json(v))

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1a1a1a;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #bbb;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right}code{font:12px/1.3 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.deny{color:#9b1c1c}.allow{color:#1b5e20}`

/** The report as one self-contained HTML document. */
export function reportHtml (r: ReplayReport): string {
  const t = r.totals
  const p: string[] = []
  p.push('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portcullis replay report</title>')
  p.push(`<style>${STYLE}</style></head><body><main>`)
  p.push('<h1>Portcullis replay report</h1>')
  p.push(`<p>Audit directory <code>${h(r.audit_dir)}</code>, candidate ${Object.entries(r.candidate.bundles).map(([n, b]) => `<code>${h(n)}</code> revision <code>${h(b.revision)}</code>`).join(', ')}, generated ${h(r.generated_at)}. Filters: <code>${h(r.filters)}</code></p>`)
  p.push('<h2>Totals</h2><table><tbody>')
  for (const [k, v] of Object.entries(t)) p.push(`<tr><th scope="row">${h(k.replaceAll('_', ' '))}</th><td class="n">${h(String(v))}</td></tr>`)
  for (const k of CHANGE_KINDS) p.push(`<tr><th scope="row">${h(LABEL[k])}</th><td class="n">${r.changes[k]}</td></tr>`)
  p.push('</tbody></table>')
  p.push('<h2>Changes by path and caller</h2>')
  if (r.groups.length === 0) p.push('<p>No decision would change.</p>')
  else {
    p.push('<table><thead><tr><th scope="col">Path</th><th scope="col">Caller</th><th scope="col">Change</th><th scope="col">Count</th></tr></thead><tbody>')
    for (const g of r.groups) {
      for (const k of CHANGE_KINDS) if (g.changes[k] > 0) p.push(`<tr><td><code>${h(g.path)}</code></td><td><code>${h(g.caller)}</code></td><td>${h(LABEL[k])}</td><td class="n">${g.changes[k]}</td></tr>`)
    }
    p.push('</tbody></table><h2>Examples</h2>')
    p.push('<table><thead><tr><th scope="col">Path</th><th scope="col">Caller</th><th scope="col">Decision</th><th scope="col">Time</th><th scope="col">Change</th><th scope="col">Recorded result</th><th scope="col">Candidate result</th></tr></thead><tbody>')
    for (const g of r.groups) {
      for (const e of g.examples) {
        p.push(`<tr><td><code>${h(g.path)}</code></td><td><code>${h(g.caller)}</code></td><td><code>${h(e.decision_id)}</code></td><td>${h(e.timestamp)}</td><td>${h(LABEL[e.change])}</td><td><code>${h(json(e.old_result))}</code></td><td><code>${h(e.new_error ?? json(e.new_result))}</code></td></tr>`)
      }
    }
    p.push('</tbody></table>')
  }
  p.push('<h2>Not replayable</h2>')
  if (r.not_replayable.length === 0) p.push('<p>Every decision in the slice was replayable.</p>')
  else {
    p.push('<p>The stored input of these decisions was changed by masking (or erased after a mask policy failure): the input the policy saw is unknown, so they are not replayed.</p>')
    p.push('<table><thead><tr><th scope="col">Path</th><th scope="col">Caller</th><th scope="col">Count</th><th scope="col">Examples</th></tr></thead><tbody>')
    for (const g of r.not_replayable) p.push(`<tr><td><code>${h(g.path)}</code></td><td><code>${h(g.caller)}</code></td><td class="n">${g.count}</td><td><code>${h(g.decision_ids.join(' '))}</code></td></tr>`)
    p.push('</tbody></table>')
  }
  if (r.groups_truncated) p.push('<p>Too many groups: the rest are counted under “(other groups)”.</p>')
  p.push('</main></body></html>\n')
  return p.join('\n')
}
