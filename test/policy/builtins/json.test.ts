import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { differentialTest } from './harness.js'
import { jsonGroup } from './cases/json.js'
import { snapshotOf } from './policy.js'
import { needsOpa, runOpa, tempDir } from '../../helpers/opa.js'

differentialTest(jsonGroup)

test('json.marshal_with_options writes integral numbers as the policy wrote them (100.0, 1e2), as opa eval does', needsOpa(), async (t) => {
  const rego = 'package jm\n\nr := json.marshal_with_options({"a": 100.0, "b": 1e2, "c": 5, "d": [-3.0, 2]}, {"pretty": false})\n'
  const dir = tempDir(t)
  writeFileSync(join(dir, 'p.rego'), rego)
  const want = JSON.parse(runOpa(['eval', '-f', 'json', '-d', join(dir, 'p.rego'), 'data.jm.r'])).result[0].expressions[0].value as string
  assert.equal(want, '{"a":100.0,"b":1e2,"c":5,"d":[-3.0,2]}')
  const snapshot = await snapshotOf(t, rego, 'jm/r')
  assert.equal(snapshot.evaluate('jm/r', {}).result, want)
})
