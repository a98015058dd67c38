/**
 * npm run conformance:opa: OPA's own conformance cases for every builtin Portcullis provides
 * on the host (test/conformance/opa-cases.ts), with a per-directory table.
 *
 *   npm run conformance:opa [-- --verbose] [-- <directory>...]
 */
import { formatTable, loadCases, loadByDesign, loadOpaExceptions, opaModuleDir, runCases, tabulate } from '../test/conformance/opa-cases.js'

const args = process.argv.slice(2)
const verbose = args.includes('--verbose')
const only = args.filter((a) => !a.startsWith('-'))
const started = Date.now()
const dir = opaModuleDir()
const cases = loadCases(dir).filter((c) => only.length === 0 || only.includes(c.dir))
const results = await runCases(cases, loadOpaExceptions(dir), { keep: args.includes('--keep') })
const byDesign = loadByDesign()
console.log(formatTable(tabulate(results, byDesign)))
console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`)
let failing = 0
for (const { case: c, outcome } of results) {
  if (outcome.status !== 'fail') continue
  const listed = byDesign.has(c.note) ? 'by-design' : 'FAIL'
  if (listed === 'FAIL') failing++
  if (verbose || listed === 'FAIL') console.log(`${listed} ${c.note} [${c.builtins.join(' ')}]\n      ${outcome.reason}`)
}
process.exit(failing === 0 ? 0 : 1)
