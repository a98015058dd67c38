import { test } from 'node:test'
import assert from 'node:assert/strict'
import { audienceList, inspectToken, keyFitsAlgorithm, peekPayload, precheckKeys } from '../../src/identity/jwt.js'
import { JWT_SVID_ALGORITHMS } from '../../src/config/schema.js'

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')

test('inspectToken: shape, alg, typ, crit, signature presence', () => {
  const ok = `${b64({ alg: 'ES256', typ: 'JWT', kid: 'k' })}.${b64({ sub: 's' })}.c2ln`
  assert.equal(inspectToken(ok, JWT_SVID_ALGORITHMS).header.kid, 'k')
  assert.throws(() => inspectToken(`${b64({ typ: 'JWT' })}.${b64({})}.c2ln`, JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
  assert.throws(() => inspectToken(`${b64({ alg: 'ES256' })}.${b64({})}.`, JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_SIGNATURE' })
  assert.throws(() => inspectToken(`${b64({ alg: 'ES256', kid: 7 })}.${b64({})}.c2ln`, JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
  assert.throws(() => inspectToken(`${b64({ alg: 'RS256' })}.${b64({})}.c2ln`, ['ES256']), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
  assert.throws(() => inspectToken('x'.repeat(17 * 1024), JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
  assert.throws(() => inspectToken(` {"payload":"x"}`, JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
})

test('peekPayload decodes without verifying, undefined for non-JWTs', () => {
  assert.deepEqual(peekPayload(`${b64({ alg: 'none' })}.${b64({ iss: 'i' })}.`), { iss: 'i' })
  assert.equal(peekPayload('garbage'), undefined)
})

test('keyFitsAlgorithm follows RFC 7518 key types and curves', () => {
  assert.equal(keyFitsAlgorithm({ kty: 'RSA' }, 'RS256'), true)
  assert.equal(keyFitsAlgorithm({ kty: 'RSA' }, 'PS384'), true)
  assert.equal(keyFitsAlgorithm({ kty: 'RSA' }, 'ES256'), false)
  assert.equal(keyFitsAlgorithm({ kty: 'EC', crv: 'P-256' }, 'ES256'), true)
  assert.equal(keyFitsAlgorithm({ kty: 'EC', crv: 'P-256' }, 'ES384'), false)
  assert.equal(keyFitsAlgorithm({ kty: 'EC', crv: 'P-521' }, 'ES512'), true)
  assert.equal(keyFitsAlgorithm({ kty: 'RSA', alg: 'RS512' }, 'RS256'), false)
})

test('precheckKeys: unknown kid, mismatched type, empty set', () => {
  const keys = [{ kty: 'EC', crv: 'P-256', kid: 'ec' }, { kty: 'RSA', kid: 'rsa' }]
  assert.doesNotThrow(() => precheckKeys(keys, { alg: 'ES256', kid: 'ec' }))
  assert.doesNotThrow(() => precheckKeys(keys, { alg: 'RS256' }))
  assert.throws(() => precheckKeys(keys, { alg: 'ES256', kid: 'nope' }), { code: 'PORTCULLIS_IDENTITY_KEY_UNKNOWN' })
  assert.throws(() => precheckKeys(keys, { alg: 'RS256', kid: 'ec' }), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
  assert.throws(() => precheckKeys(keys, { alg: 'ES512' }), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
  assert.throws(() => precheckKeys([], { alg: 'ES256' }), { code: 'PORTCULLIS_IDENTITY_KEY_UNKNOWN' })
})

test('audienceList', () => {
  assert.deepEqual(audienceList('a'), ['a'])
  assert.deepEqual(audienceList(['a', 1, 'b']), ['a', 'b'])
  assert.deepEqual(audienceList(undefined), [])
})
