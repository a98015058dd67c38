import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isTrustDomain, parseSpiffeId, parseSpiffeIdByRules, parseWorkloadSpiffeId } from '../../src/identity/spiffe-id.js'

const BAD = 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID'

test('valid SPIFFE IDs parse into trust domain and path', () => {
  assert.deepEqual(parseSpiffeId('spiffe://example.org/ns/prod/sa/api'), { id: 'spiffe://example.org/ns/prod/sa/api', trustDomain: 'example.org', path: '/ns/prod/sa/api' })
  assert.deepEqual(parseSpiffeId('spiffe://example.org'), { id: 'spiffe://example.org', trustDomain: 'example.org', path: '' })
  assert.equal(parseSpiffeId('spiffe://a-b_c.9/A.b-C_9/x').path, '/A.b-C_9/x')
  assert.equal(parseSpiffeId('spiffe://td/.../a..b/.x').path, '/.../a..b/.x')
})

test('IDs up to 2048 bytes are accepted, longer ones refused', () => {
  const prefix = 'spiffe://example.org/'
  const id2048 = prefix + 'a'.repeat(2048 - prefix.length)
  assert.equal(Buffer.byteLength(id2048), 2048)
  assert.equal(parseSpiffeId(id2048).id, id2048)
  assert.throws(() => parseSpiffeId(id2048 + 'a'), { code: BAD })
})

test('trust domain of 255 bytes accepted, 256 refused', () => {
  assert.equal(parseSpiffeId(`spiffe://${'a'.repeat(255)}/x`).trustDomain.length, 255)
  assert.throws(() => parseSpiffeId(`spiffe://${'a'.repeat(256)}/x`), { code: BAD })
})

const invalid: Array<[string, string]> = [
  ['', 'empty'],
  ['example.org/ns', 'no scheme'],
  ['SPIFFE://example.org/ns', 'uppercase scheme'],
  ['Spiffe://example.org/ns', 'mixed-case scheme'],
  ['https://example.org/ns', 'other scheme'],
  ['spiffe:/example.org/ns', 'one slash'],
  ['spiffe://', 'empty trust domain'],
  ['spiffe:///ns', 'empty trust domain with path'],
  ['spiffe://Example.org/ns', 'uppercase trust domain'],
  ['spiffe://user@example.org/ns', 'userinfo'],
  ['spiffe://user:pw@example.org/ns', 'userinfo with password'],
  ['spiffe://example.org:8443/ns', 'port'],
  ['spiffe://exa%6Dple.org/ns', 'percent-encoded trust domain'],
  ['spiffe://exam ple.org/ns', 'space in trust domain'],
  ['spiffe://example.org/ns?x=1', 'query'],
  ['spiffe://example.org/ns#frag', 'fragment'],
  ['spiffe://example.org?x', 'query without path'],
  ['spiffe://example.org/', 'trailing slash on root'],
  ['spiffe://example.org/ns/', 'trailing slash'],
  ['spiffe://example.org//ns', 'empty segment'],
  ['spiffe://example.org/ns//sa', 'empty inner segment'],
  ['spiffe://example.org/.', 'dot segment'],
  ['spiffe://example.org/ns/..', 'dot-dot segment'],
  ['spiffe://example.org/ns/./sa', 'inner dot segment'],
  ['spiffe://example.org/n%41s', 'percent-encoded path'],
  ['spiffe://example.org/ns/s@a', 'at sign in path'],
  ['spiffe://example.org/ns/sä', 'non-ASCII path'],
  ['spiffe://exämple.org/ns', 'non-ASCII trust domain'],
  ['spiffe://example.org/ns:x', 'colon in path'],
]

for (const [id, why] of invalid) {
  test(`rejects ${why}: ${JSON.stringify(id)}`, () => {
    assert.throws(() => parseSpiffeId(id), { code: BAD })
  })
}

test('workload IDs must have a non-root path', () => {
  assert.throws(() => parseWorkloadSpiffeId('spiffe://example.org'), { code: BAD })
  assert.equal(parseWorkloadSpiffeId('spiffe://example.org/w').path, '/w')
})

test('isTrustDomain', () => {
  assert.equal(isTrustDomain('example.org'), true)
  assert.equal(isTrustDomain('EXAMPLE.org'), false)
  assert.equal(isTrustDomain(''), false)
  assert.equal(isTrustDomain('a:1'), false)
})

test('the one-regex shortcut for usual IDs gives what the rules give, for IDs near the rules\' edges', () => {
  const outcome = (f: () => unknown): unknown => {
    try { return f() } catch (err) { return (err as { code?: string, details?: unknown }).code === BAD ? (err as { details?: unknown }).details : String(err) }
  }
  const piece = fc.constantFrom('a', 'Z', '9', '.', '..', '-', '_', '/', '//', '%2F', '?', '#', ':', '@', 'é', ' ', 'x'.repeat(255), 'y'.repeat(1800))
  const id = fc.tuple(fc.constantFrom('spiffe://', 'SPIFFE://', 'spiffe:/', ''), fc.array(piece, { maxLength: 8 })).map(([scheme, parts]) => scheme + parts.join(''))
  fc.assert(fc.property(id, (s) => {
    assert.deepEqual(outcome(() => parseSpiffeId(s)), outcome(() => parseSpiffeIdByRules(s)), s.slice(0, 120))
  }), { numRuns: 3000, seed: 20261201 })
  for (const s of ['spiffe://td/.', 'spiffe://td/./x', 'spiffe://td/x/..', 'spiffe://td/..x', 'spiffe://td/x.', `spiffe://${'a'.repeat(256)}/x`, `spiffe://td/${'a'.repeat(2048)}`]) {
    assert.deepEqual(outcome(() => parseSpiffeId(s)), outcome(() => parseSpiffeIdByRules(s)), s.slice(0, 60))
  }
})
