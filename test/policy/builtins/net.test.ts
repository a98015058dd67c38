import assert from 'node:assert/strict'
import { test } from 'node:test'
import { differentialTest } from './harness.js'
import { netGroup } from './cases/net.js'
import { BuiltinError, createEvalContext, getBuiltin } from '../../../src/policy/builtins/index.js'

differentialTest(netGroup)

// On these opa eval panics (Go index out of range in OPA's internal/cidr/merge): an IPv4-mapped
// IPv6 CIDR merged with another range, or an IPv6 range whose spanning network starts with a zero
// byte. There is no answer to agree with; Portcullis fails closed with a builtin error.
test('net.cidr_merge: inputs on which OPA panics are builtin errors, not guesses', () => {
  const merge = getBuiltin('net.cidr_merge')
  assert.ok(merge !== undefined)
  for (const list of [['::ffff:10.0.0.0/104', '1.0.0.0/8'], ['::ffff:1.2.3.4/128', '::ffff:1.2.3.4/128'], ['::ffff:10.0.0.0/104', '::ffff:12.0.0.0/104'], ['::100/128', '::101/128']]) {
    assert.throws(() => merge.impl(createEvalContext(), [list]), BuiltinError, JSON.stringify(list))
  }
})
