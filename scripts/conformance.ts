/**
 * npm run conformance: evaluates every builtin case table (test/policy/builtins/cases) with
 * `opa eval` and with Portcullis on the wasm bundle `opa build -t wasm` compiles from the same
 * module, and prints per builtin how many cases agree. Exits 1 when any case disagrees.
 *
 *   npm run conformance [-- --verbose] [-- <group>...]
 */
import { requireOpa } from './lib/opa.js'
import { groups } from '../test/policy/builtins/cases/index.js'
import { runGroup, type TableResult } from '../test/policy/builtins/differential.js'

const args = process.argv.slice(2)
const verbose = args.includes('--verbose')
const only = args.filter((a) => !a.startsWith('-'))
const opa = requireOpa()

const rows = new Map<string, { cases: number, agreeing: number }>()
const mismatches: Array<TableResult['mismatches'][number] & { builtin: string }> = []
for (const load of groups) {
  const g = await load()
  if (only.length > 0 && !only.includes(g.name)) continue
  for (const r of await runGroup(g, { opa })) {
    const row = rows.get(r.builtin) ?? { cases: 0, agreeing: 0 }
    row.cases += r.cases
    row.agreeing += r.agreeing
    rows.set(r.builtin, row)
    for (const m of r.mismatches) mismatches.push({ builtin: r.builtin, ...m })
  }
}

const width = Math.max(...[...rows.keys()].map((k) => k.length), 'builtin'.length)
console.log(`${'builtin'.padEnd(width)}  cases  agreeing`)
console.log(`${'-'.repeat(width)}  -----  --------`)
let total = 0; let agree = 0
for (const [name, r] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
  total += r.cases; agree += r.agreeing
  console.log(`${name.padEnd(width)}  ${String(r.cases).padStart(5)}  ${String(r.agreeing).padStart(8)}${r.agreeing === r.cases ? '' : '  <-- differs'}`)
}
console.log(`${'-'.repeat(width)}  -----  --------`)
console.log(`${`${rows.size} builtins`.padEnd(width)}  ${String(total).padStart(5)}  ${String(agree).padStart(8)}`)
if (verbose) for (const m of mismatches) console.log(JSON.stringify(m, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v))
process.exit(agree === total ? 0 : 1)
