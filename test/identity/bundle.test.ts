/** Trust-bundle formats. Certificates and keys are generated in setup (@peculiar/x509, jose). */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mergeBundle, parseAnyBundle, parseJwks, parsePemAuthorities, parseSpiffeBundle } from '../../src/identity/bundle.js'
import { makeCa, makeJwtKey, spiffeBundle, type Issued, type JwtKey } from './support/pki.js'

const INVALID = 'PORTCULLIS_IDENTITY_BUNDLE_INVALID'
let ca: Issued
let ca2: Issued
let key: JwtKey
let rsa: JwtKey

before(async () => {
  ca = await makeCa({ name: 'bundle root' })
  ca2 = await makeCa({ name: 'bundle root 2' })
  key = await makeJwtKey('ES256', 'k1')
  rsa = await makeJwtKey('RS256', 'k2')
})

test('SPIFFE bundle: x509-svid and jwt-svid entries, sequence and refresh hint', async () => {
  const b = parseSpiffeBundle(await spiffeBundle({ x509: [ca], jwt: [key, rsa], sequence: 7, refreshHint: 60 }), 'b.json')
  assert.equal(b.x509Authorities.length, 1)
  assert.equal(b.x509Authorities[0]?.fingerprint_sha256.length, 64)
  assert.equal(b.jwtAuthorities.length, 2)
  assert.equal(b.sequence, 7)
  assert.equal(b.refreshHint, 60)
  // jose only selects keys whose `use` is absent or "sig": the SPIFFE use is gone.
  for (const k of b.jwtAuthorities) assert.equal(k.use, undefined)
  assert.deepEqual(b.jwtAuthorities.map((k) => k.kid), ['k1', 'k2'])
})

test('SPIFFE bundle: entries with unknown use or kty are ignored', async () => {
  const extra = [
    { kty: 'EC', use: 'enc', crv: 'P-256', x: 'a', y: 'b', kid: 'e' },
    { kty: 'oct', use: 'jwt-svid', k: 'c2VjcmV0', kid: 'sym' },
    { kty: 'FUTURE', use: 'x509-svid', x5c: [ca2.der.toString('base64')] },
    { kty: 'FUTURE', use: 'x509-svid', x5c: ['not even base64!'] },
    { kty: 'EC', use: 'future-svid', kid: 'f' },
  ]
  const b = parseSpiffeBundle(await spiffeBundle({ jwt: [key], extra }), 'b.json')
  assert.equal(b.x509Authorities.length, 0)
  assert.deepEqual(b.jwtAuthorities.map((k) => k.kid), ['k1'])
})

test('SPIFFE bundle: empty keys means trust nothing', () => {
  const b = parseSpiffeBundle('{"keys": [], "spiffe_sequence": 1}', 'b.json')
  assert.equal(b.x509Authorities.length, 0)
  assert.equal(b.jwtAuthorities.length, 0)
})

test('SPIFFE bundle: malformed documents are refused', async () => {
  const jwk = key.publicJwk
  const noKid = { ...jwk, use: 'jwt-svid' } as Record<string, unknown>
  delete noKid.kid
  const cases: string[] = [
    'not json',
    '[]',
    '{}',
    '{"keys": {}}',
    '{"keys": [1]}',
    JSON.stringify({ keys: [noKid] }),
    JSON.stringify({ keys: [{ ...jwk, use: 'jwt-svid' }, { ...jwk, use: 'jwt-svid' }] }),
    JSON.stringify({ keys: [{ kty: 'EC', use: 'x509-svid', x5c: [ca.der.toString('base64'), ca2.der.toString('base64')] }] }),
    JSON.stringify({ keys: [{ kty: 'EC', use: 'x509-svid', x5c: ['***'] }] }),
    JSON.stringify({ keys: [{ kty: 'EC', use: 'x509-svid', x5c: [Buffer.from('junk!').toString('base64')] }] }),
    JSON.stringify({ keys: [{ ...jwk, use: 'jwt-svid', d: 'private' }] }),
    JSON.stringify({ keys: [], spiffe_sequence: -1 }),
    JSON.stringify({ keys: [], spiffe_refresh_hint: 'soon' }),
  ]
  for (const c of cases) assert.throws(() => parseSpiffeBundle(c, 'b.json'), { code: INVALID }, c)
})

test('JWKS file: use absent, sig or jwt-svid kept; enc and unknown kty ignored; private keys refused', () => {
  const doc = {
    keys: [
      { ...key.publicJwk },
      { ...rsa.publicJwk, use: 'sig' },
      { ...key.publicJwk, kid: 'enc', use: 'enc' },
      { kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'ed' },
    ],
  }
  const b = parseJwks(JSON.stringify(doc), 'jwks.json')
  assert.deepEqual(b.jwtAuthorities.map((k) => k.kid), ['k1', 'k2'])
  assert.throws(() => parseJwks(JSON.stringify({ keys: [{ ...key.publicJwk, d: 'x' }] }), 'jwks.json'), { code: INVALID })
})

test('key_ops (RFC 7517 §4.3): a key whose operations leave out verify is not trusted to verify, in a JWKS and a SPIFFE bundle, as jose\'s JWK Sets skip it', async () => {
  const doc = { keys: [{ ...key.publicJwk, key_ops: ['encrypt'] }, { ...rsa.publicJwk, key_ops: ['sign', 'verify'] }, { ...key.publicJwk, kid: 'signer', key_ops: ['sign'] }] }
  assert.deepEqual(parseJwks(JSON.stringify(doc), 'jwks.json').jwtAuthorities.map((k) => k.kid), ['k2'])
  const spiffe = JSON.parse(await spiffeBundle({ jwt: [] })) as { keys: unknown[] }
  spiffe.keys.push({ ...key.publicJwk, use: 'jwt-svid', key_ops: ['encrypt'] }, { ...rsa.publicJwk, use: 'jwt-svid', key_ops: ['verify'] })
  assert.deepEqual(parseSpiffeBundle(JSON.stringify(spiffe), 'b.json').jwtAuthorities.map((k) => k.kid), ['k2'])
  // not a list of strings: the bundle is refused
  assert.throws(() => parseJwks(JSON.stringify({ keys: [{ ...key.publicJwk, key_ops: 'verify' }] }), 'jwks.json'), { code: INVALID })
})

test('PEM authorities: every certificate; malformed PEM refused', () => {
  assert.equal(parsePemAuthorities(ca.pem + ca2.pem, 'ca.pem').x509Authorities.length, 2)
  assert.throws(() => parsePemAuthorities('', 'ca.pem'), { code: INVALID })
  assert.throws(() => parsePemAuthorities('-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n', 'ca.pem'), { code: INVALID })
  assert.throws(() => parsePemAuthorities(ca.pem.replace('-----END CERTIFICATE-----', ''), 'ca.pem'), { code: INVALID })
  assert.throws(() => parsePemAuthorities('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'ca.pem'), { code: INVALID })
  assert.throws(() => parsePemAuthorities('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'ca.pem'), { code: INVALID })
})

test('parseAnyBundle detects JSON and PEM', async () => {
  assert.equal(parseAnyBundle(ca.pem, 'x').x509Authorities.length, 1)
  assert.equal(parseAnyBundle(await spiffeBundle({ x509: [ca] }), 'x').x509Authorities.length, 1)
})

test('mergeBundle: union within a trust domain, duplicates once, digest stable under reordering', () => {
  const a = parsePemAuthorities(ca.pem, 'a')
  const b = parsePemAuthorities(ca2.pem + ca.pem, 'b')
  const m1 = mergeBundle('example.org', [a, b])
  const m2 = mergeBundle('example.org', [b, a])
  assert.equal(m1.x509Authorities.length, 2)
  assert.equal(m1.digest, m2.digest)
  assert.notEqual(mergeBundle('example.org', [a]).digest, m1.digest)
})

test('mergeBundle: a JWT key in two sources once (member order aside), distinct keys with one kid both', async () => {
  const k = await makeJwtKey('ES256', 'dup-1')
  const other = await makeJwtKey('ES256', 'dup-1')
  const reordered = JSON.stringify({ keys: [Object.fromEntries(Object.entries(k.publicJwk).reverse())] })
  const once = mergeBundle('example.org', [parseJwks(JSON.stringify({ keys: [k.publicJwk] }), 'a'), parseJwks(reordered, 'b')])
  assert.equal(once.jwtAuthorities.length, 1)
  assert.equal(once.digest, mergeBundle('example.org', [parseJwks(reordered, 'b')]).digest)
  const both = mergeBundle('example.org', [parseJwks(JSON.stringify({ keys: [k.publicJwk] }), 'a'), parseJwks(JSON.stringify({ keys: [other.publicJwk] }), 'b')])
  assert.equal(both.jwtAuthorities.length, 2)
})
