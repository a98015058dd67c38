/**
 * OPA's own conformance cases for every builtin Portcullis provides on the host
 * (test/conformance/opa-cases.ts; `npm run conformance:opa` prints the per-directory table).
 * Every selected case must pass, in default and (for strict_error cases) strict mode, except
 * those in by-design.yaml (each with its reason, documented in docs/builtins.md). A listed case
 * that passes fails the test too, so the list cannot go stale.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatTable, loadCases, loadByDesign, loadOpaExceptions, opaModuleDir, runCases, tabulate } from './opa-cases.js'
import { needsOpa } from '../helpers/opa.js'

test('OPA conformance cases of the host builtins pass (except the by-design list)', needsOpa(), async (t) => {
  // In CI a missing Go toolchain or module download fails here, loudly.
  const dir = opaModuleDir()
  const cases = loadCases(dir)
  // The selection is not empty by accident: the topics of the host builtins are all there.
  assert.ok(cases.length > 800, `only ${cases.length} cases selected`)
  for (const topic of ['subset', 'netcidrcontainsmatches', 'jsonpatch', 'sprintf', 'time', 'uuid', 'graphql', 'units', 'jwtverifyrsa']) {
    assert.ok(cases.some((c) => c.dir === topic), `no case of ${topic}`)
  }
  const results = await runCases(cases, loadOpaExceptions(dir))
  const byDesign = loadByDesign()
  for (const line of formatTable(tabulate(results, byDesign)).split('\n')) t.diagnostic(line)

  const unexpected = results.filter((r) => r.outcome.status === 'fail' && !byDesign.has(r.case.note))
    .map((r) => `${r.case.note}: ${r.outcome.status === 'fail' ? r.outcome.reason : ''}`)
  assert.deepEqual(unexpected, [], 'OPA conformance cases failing')
  const notes = new Set(cases.map((c) => c.note))
  const passing = new Set(results.filter((r) => r.outcome.status === 'pass').map((r) => r.case.note))
  const stale = [...byDesign.keys()].filter((n) => !notes.has(n) || passing.has(n))
  assert.deepEqual(stale, [], 'by-design.yaml lists cases that pass or are not selected: remove them')
})
