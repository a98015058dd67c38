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

test('inspectToken: a header decoded before is judged again for every token (decode cached, checks not), and stays frozen', () => {
  const h = b64({ alg: 'ES256', typ: 'at+jwt', kid: 'cached' })
  for (let i = 0; i < 3; i++) {
    assert.throws(() => inspectToken(`${h}.${b64({ i })}.c2ln`, JWT_SVID_ALGORITHMS), { code: 'PORTCULLIS_IDENTITY_TOKEN_TYPE' })
    assert.deepEqual(inspectToken(`${h}.${b64({ i })}.c2ln`, undefined).payload, { i })
  }
  const ok = b64({ alg: 'ES256', kid: 'k2' })
  assert.equal(inspectToken(`${ok}.${b64({})}.c2ln`, ['ES256']).header.alg, 'ES256')
  assert.throws(() => inspectToken(`${ok}.${b64({})}.c2ln`, ['RS256']), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
  const { header } = inspectToken(`${ok}.${b64({})}.c2ln`, ['ES256'])
  assert.ok(Object.isFrozen(header))
  // A header that failed to decode is refused every time; more distinct headers than the cache holds still decode.
  for (let i = 0; i < 2; i++) assert.throws(() => inspectToken(`${b64('x').slice(0, -1)}!.${b64({})}.c2ln`, undefined), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
  for (let i = 0; i < 600; i++) assert.equal(inspectToken(`${b64({ alg: 'ES256', kid: `k${i}` })}.${b64({})}.c2ln`, ['ES256']).header.kid, `k${i}`)
})

test('inspectToken: payloadIsUtf8 and headerIsUtf8 report the octets', () => {
  const raw = (bytes: Buffer): string => bytes.toString('base64url')
  const bad = raw(Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xc3]), Buffer.from('"}')]))
  const t1 = inspectToken(`${b64({ alg: 'ES256' })}.${bad}.c2ln`, JWT_SVID_ALGORITHMS)
  assert.equal(t1.headerIsUtf8, true)
  assert.equal(t1.payloadIsUtf8, false)
  const badHeader = raw(Buffer.concat([Buffer.from('{"alg":"ES256","x":"'), Buffer.from([0xc3]), Buffer.from('"}')]))
  const t2 = inspectToken(`${badHeader}.${b64({})}.c2ln`, JWT_SVID_ALGORITHMS)
  assert.equal(t2.headerIsUtf8, false)
  assert.equal(t2.payloadIsUtf8, true)
})
