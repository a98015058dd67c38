/** node:test glue: one test per group, one subtest per builtin table, asserting agreement. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import type { Group } from './cases/types.js'
import { runGroup } from './differential.js'

export function differentialTest (load: () => Group | Promise<Group>): void {
  test('agrees with opa eval on every case', needsOpa(), async (t) => {
    const g = await load()
    const results = await runGroup(g)
    for (const r of results) {
      await t.test(r.builtin, () => {
        assert.deepEqual(r.mismatches.map((m) => ({ case: m.index, args: m.args, opa: m.opa, portcullis: m.portcullis })), [],
          `${r.builtin}: ${r.agreeing}/${r.cases} cases agree`)
      })
    }
  })
}
