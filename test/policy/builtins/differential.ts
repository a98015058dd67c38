/**
 * The differential runner: one Rego module per group (`r<j>[i] := <call of table j, case i>`),
 * evaluated once by `opa eval` and once by Portcullis on the bundle `opa build -t wasm`
 * compiled from the same module. An erroring case leaves its index undefined on both sides.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../../src/bundles/load.js'
import { compileBundle } from '../../../src/policy/engine.js'
import { PolicySnapshot } from '../../../src/policy/snapshot.js'
import { createEvalContext } from '../../../src/policy/builtins/index.js'
import { ExactNumber, parseExact, stringifyExact } from '../../../src/policy/builtins/exact-json.js'
import { findOpa } from '../../../scripts/lib/opa.js'
import type { Group, Table } from './cases/types.js'

export interface TableResult {
  builtin: string
  cases: number
  agreeing: number
  mismatches: Array<{ index: number, args: unknown[], opa: string, portcullis: string }>
}

function callOf (t: Table, arity: number): string {
  const tpl = t.call ?? `${t.builtin}(${Array.from({ length: arity }, (_, k) => `$${k}`).join(', ')})`
  return tpl.replace(/\$(\d+)/g, (_m, k: string) => `a[${k}]`)
}

export function regoModule (g: Group): string {
  const lines = ['package conf', '']
  g.tables.forEach((t, j) => {
    const arity = Math.max(0, ...t.cases.map((c) => c.args.length))
    lines.push(g.v0 === true ? `r${j}[i] = x {` : `r${j}[i] := x if {`, `\tsome i`, `\ta := input.t${j}[i]`, `\tx := ${callOf(t, arity)}`, '}', '')
  })
  return lines.join('\n')
}

/** Canonical text of a JSON value: numbers by value (1e3 == 1000 == 1000.0), keys sorted. */
export function canonical (v: unknown): string {
  if (v instanceof ExactNumber) return canonNumber(v.text)
  if (typeof v === 'number') return canonNumber(String(v))
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical((v as Record<string, unknown>)[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

function canonNumber (text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)
  if (m === null) return text
  let digits = (m[2] + (m[3] ?? '')).replace(/^0+/, '')
  let exp = Number(m[4] ?? '0') - (m[3]?.length ?? 0)
  if (digits === '') return '0'
  while (digits.endsWith('0')) { digits = digits.slice(0, -1); exp++ }
  return `${m[1]}${digits}e${exp}`
}

export interface RunOptions {
  workDir?: string
  opa?: string
}

/** Evaluates a group on both sides and compares case by case. */
export async function runGroup (g: Group, opts: RunOptions = {}): Promise<TableResult[]> {
  const opa = opts.opa ?? findOpa()
  if (opa === undefined) throw new Error('opa CLI not found')
  const dir = opts.workDir ?? mkdtempSync(join(tmpdir(), `portcullis-conf-${g.name}-`))
  try {
    const input: Record<string, unknown> = {}
    g.tables.forEach((t, j) => { input[`t${j}`] = t.cases.map((c) => c.args) })
    const inputJson = stringifyExact(input)
    writeFileSync(join(dir, 'policy.rego'), regoModule(g))
    writeFileSync(join(dir, 'input.json'), inputJson)
    const v0 = g.v0 === true ? ['--v0-compatible'] : []
    const out = execFileSync(opa, ['eval', ...v0, '--format', 'json', '-d', 'policy.rego', '-i', 'input.json', 'data.conf'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 28 })
    const oracle = ((parseExact(out) as { result: Array<{ expressions: Array<{ value: Record<string, unknown> }> }> }).result[0]?.expressions[0]?.value) ?? {}

    execFileSync(opa, ['build', ...v0, '-t', 'wasm', '-e', 'conf', '-o', 'bundle.tar.gz', 'policy.rego'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const bundle = await loadBundle(join(dir, 'bundle.tar.gz'), { name: `conf-${g.name}` })
    const compiled = compileBundle(bundle, { builtins: { switches: new Set(g.switches ?? []) } })
    const snapshot = new PolicySnapshot(1, [{ compiled, activatedAt: new Date() }])
    const ev = snapshot.evaluate('conf', undefined, { inputJson, context: createEvalContext({ exactNumbers: true }) })
    const ours = (ev.defined ? ev.result : {}) as Record<string, unknown>

    return g.tables.map((t, j) => {
      const o = (oracle[`r${j}`] ?? {}) as Record<string, unknown>
      const p = (ours[`r${j}`] ?? {}) as Record<string, unknown>
      const res: TableResult = { builtin: t.builtin, cases: t.cases.length, agreeing: 0, mismatches: [] }
      t.cases.forEach((c, i) => {
        const a = Object.hasOwn(o, String(i)) ? canonical(o[String(i)]) : '<undefined>'
        const b = Object.hasOwn(p, String(i)) ? canonical(p[String(i)]) : '<undefined>'
        if (a === b) res.agreeing++
        else res.mismatches.push({ index: i, args: c.args, opa: a, portcullis: b })
      })
      return res
    })
  } finally {
    if (opts.workDir === undefined) rmSync(dir, { recursive: true, force: true })
  }
}
