import assert from 'node:assert/strict'
import { test } from 'node:test'
import { needsOpa } from '../../helpers/opa.js'
import { differentialTest } from './harness.js'
import { yamlGroup } from './cases/yaml.js'
import { isStrictBuiltinError, opaStrictErrorCode, snapshotOf } from './policy.js'
import { builtinAvailability } from '../../../src/policy/builtins/index.js'

differentialTest(yamlGroup)

test('the yaml builtins are the host registry\'s, not opa-wasm\'s JavaScript glue', () => {
  for (const name of ['yaml.is_valid', 'yaml.unmarshal', 'yaml.marshal']) {
    assert.deepEqual(builtinAvailability(name), { available: true, native: false, nondeterministic: false }, name)
  }
})

// opa-wasm's glue swallowed parser errors (undefined even in strict mode); OPA raises them.
test('yaml.unmarshal: text that is not YAML fails a strict decision, as in opa eval --strict-builtin-errors', needsOpa(), async (t) => {
  const rego = 'package p\n\nr := yaml.unmarshal(input.doc)\n'
  const snap = await snapshotOf(t, rego, 'p/r')
  for (const doc of ['[1,2,3', 'a: 1\n---\n\tb: 2\n', 'a: *b\n', 'n: .nan\n', '? [1]\n: x\n']) {
    assert.equal(opaStrictErrorCode(t, rego, 'p/r', { doc }), 'eval_builtin_error', JSON.stringify(doc))
    assert.throws(() => snap.evaluate('p/r', { doc }, { strictBuiltinErrors: true }), isStrictBuiltinError, JSON.stringify(doc))
  }
  assert.deepEqual(snap.evaluate('p/r', { doc: 'a: [1, 2]\n' }, { strictBuiltinErrors: true }).result, { a: [1, 2] })
})
