/** node:test glue: one test per group, one subtest per builtin table, asserting agreement. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import type { Group } from './cases/types.js'
import { runGroup } from './differential.js'

/** Where two long canonical texts first differ, with a little context (keeps failures readable). */
function firstDifference (a: string, b: string): { at: number, opa: string, portcullis: string } {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  const from = Math.max(0, i - 60)
  return { at: i, opa: a.slice(from, i + 60), portcullis: b.slice(from, i + 60) }
}

export function differentialTest (load: () => Group | Promise<Group>): void {
  test('agrees with opa eval on every case', needsOpa(), async (t) => {
    const g = await load()
    const results = await runGroup(g)
    for (const r of results) {
      await t.test(r.builtin, () => {
        assert.deepEqual(r.mismatches.map((m) => ({ case: m.index, ...firstDifference(m.opa, m.portcullis) })), [],
          `${r.builtin}: ${r.agreeing}/${r.cases} cases agree`)
      })
    }
  })
}
