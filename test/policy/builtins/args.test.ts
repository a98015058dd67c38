import assert from 'node:assert/strict'
import { test } from 'node:test'
import { regoCompare, setOf } from '../../../src/policy/builtins/args.js'

// Go orders strings by their UTF-8 bytes, i.e. by code point; JavaScript's < compares UTF-16
// code units, where a character beyond U+FFFF (a surrogate pair, 0xD83D…) sorts before U+FEFF.
test('regoCompare orders strings by code point, as Go does (sets, object keys)', () => {
  const emoji = '\u{1F600}'
  assert.ok(regoCompare('\uFEFF', emoji) < 0)
  assert.ok(regoCompare(emoji, '\uFEFF') > 0)
  assert.equal(regoCompare('a', 'a'), 0)
  assert.deepEqual([...setOf([emoji, '\uFEFF', 'z', emoji])], ['z', '\uFEFF', emoji])
  // objects compare key by key in that order too
  assert.ok(regoCompare({ '\uFEFF': 1 }, { [emoji]: 1 }) < 0)
})
