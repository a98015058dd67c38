import { test } from 'node:test'
import assert from 'node:assert/strict'
import { tokenFromHeader } from '../../src/identity/plugins.js'

test('tokenFromHeader: Bearer scheme (case-insensitive), other schemes are not ours, bare tokens in other headers', () => {
  assert.equal(tokenFromHeader({ headers: { authorization: 'Bearer abc.def.ghi' } }, 'authorization'), 'abc.def.ghi')
  assert.equal(tokenFromHeader({ headers: { authorization: 'bearer   abc ' } }, 'authorization'), 'abc')
  assert.equal(tokenFromHeader({ headers: { authorization: 'Basic dTpw' } }, 'authorization'), undefined)
  assert.equal(tokenFromHeader({ headers: {} }, 'authorization'), undefined)
  assert.equal(tokenFromHeader({}, 'authorization'), undefined)
  assert.equal(tokenFromHeader({ headers: { 'x-token': ' t ' } }, 'x-token'), 't')
  assert.equal(tokenFromHeader({ headers: { authorization: ['Bearer a'] } }, 'authorization'), 'a')
})

test('tokenFromHeader: empty or repeated credentials are MALFORMED', () => {
  const code = 'PORTCULLIS_IDENTITY_MALFORMED'
  assert.throws(() => tokenFromHeader({ headers: { authorization: 'Bearer ' } }, 'authorization'), { code })
  assert.throws(() => tokenFromHeader({ headers: { authorization: ['Bearer a', 'Bearer b'] } }, 'authorization'), { code })
  assert.throws(() => tokenFromHeader({ headers: { 'x-token': '  ' } }, 'x-token'), { code })
})
