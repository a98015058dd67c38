import { test } from 'node:test'
import assert from 'node:assert/strict'
import { credentialKey, entryBytes, VerifiedCredentialCache } from '../../src/identity/cache.js'
import type { IdentityDocument } from '../../src/identity/document.js'
import { createIdentityVerifier, IDENTITY_DEFAULTS, validateIdentityConfig } from '../../src/identity/index.js'
import { Metrics } from '../../src/metrics/index.js'
import { makeTrustDomain, T0, tempDir, write } from './support/pki.js'

const doc = (expires: Date): IdentityDocument => ({ type: 'jwt-svid', source: 'header', subject: 's', expires_at: expires.toISOString() })

test('credentialKey covers every byte of every part, with boundaries', () => {
  const a = credentialKey('x', [Buffer.from('ab'), Buffer.from('c')])
  assert.equal(a.length, 64)
  assert.notEqual(a, credentialKey('x', [Buffer.from('a'), Buffer.from('bc')]))
  assert.notEqual(a, credentialKey('y', [Buffer.from('ab'), Buffer.from('c')]))
  assert.notEqual(a, credentialKey('x', [Buffer.from('ab'), Buffer.from('d')]))
  assert.equal(a, credentialKey('x', [Buffer.from('ab'), Buffer.from('c')]))
})

test('an entry lives until its credential expires (injected clock)', () => {
  let now = T0
  const cache = new VerifiedCredentialCache({ maxEntries: 10, maxTtlSeconds: 3600, now: () => now })
  const exp = new Date(T0.getTime() + 60_000)
  cache.set('k', doc(exp), exp)
  now = new Date(T0.getTime() + 59_000)
  assert.ok(cache.get('k'))
  now = new Date(T0.getTime() + 60_000)
  assert.equal(cache.get('k'), undefined)
  assert.deepEqual(cache.stats(), { size: 0, hits: 1, misses: 1, clears: 0 })
})

test('an entry lives no longer than max_ttl even when the credential lives longer', () => {
  let now = T0
  const cache = new VerifiedCredentialCache({ maxEntries: 10, maxTtlSeconds: 10, now: () => now })
  const exp = new Date(T0.getTime() + 3600_000)
  cache.set('k', doc(exp), exp)
  now = new Date(T0.getTime() + 9_000)
  assert.ok(cache.get('k'))
  now = new Date(T0.getTime() + 10_001)
  assert.equal(cache.get('k'), undefined)
})

test('an already expired credential is not cached; clear empties; LRU bound holds', () => {
  const cache = new VerifiedCredentialCache({ maxEntries: 2, maxTtlSeconds: 60, now: () => T0 })
  cache.set('old', doc(T0), T0)
  assert.equal(cache.get('old'), undefined)
  const exp = new Date(T0.getTime() + 30_000)
  for (const k of ['a', 'b', 'c']) cache.set(k, doc(exp), exp)
  assert.equal(cache.stats().size, 2)
  assert.equal(cache.get('a'), undefined)
  cache.clear()
  assert.equal(cache.stats().size, 0)
  assert.equal(cache.stats().clears, 1)
})

test('max_bytes bounds the summed entry estimates: least recently used entries go first', () => {
  const exp = new Date(T0.getTime() + 30_000)
  const one = entryBytes(doc(exp))
  const cache = new VerifiedCredentialCache({ maxEntries: 1000, maxBytes: one * 3, maxTtlSeconds: 60, now: () => T0 })
  for (const k of ['a', 'b', 'c', 'd', 'e']) cache.set(k, doc(exp), exp)
  assert.deepEqual(cache.memory(), { entries: 3, bytes: one * 3 })
  assert.equal(cache.get('a'), undefined)
  assert.equal(cache.get('b'), undefined)
  assert.ok(cache.get('e'))
  // A document with large claims counts for more.
  const big: IdentityDocument = { ...doc(exp), claims: { blob: 'x'.repeat(10 * one) } }
  assert.ok(entryBytes(big) > one * 3)
  cache.set('big', big, exp)
  assert.equal(cache.get('big'), undefined, 'an entry larger than the whole bound is not cached')
  assert.ok(cache.memory().bytes <= one * 3)
})

test('the estimate is at least the JSON text of the document', () => {
  const exp = new Date(T0.getTime() + 30_000)
  for (const d of [doc(exp), { ...doc(exp), claims: { a: 'é'.repeat(100), n: [1, 2, 3] } }]) {
    assert.ok(entryBytes(d) >= JSON.stringify(d).length)
  }
})

test('identity.cache.max_bytes has a default and is validated', () => {
  assert.equal(validateIdentityConfig({}).cache.max_bytes, IDENTITY_DEFAULTS.cache.max_bytes)
  assert.equal(validateIdentityConfig({ cache: { max_bytes: 1_048_576 } }).cache.max_bytes, 1_048_576)
  assert.throws(() => validateIdentityConfig({ cache: { max_bytes: 10 } }), (err: { code?: string }) => err.code === 'PORTCULLIS_CONFIG_INVALID')
})

test('the verifier counts cache hits and misses and reports its size in the metrics registry', async (t) => {
  const td = await makeTrustDomain('example.org')
  const dir = tempDir(t)
  const config = validateIdentityConfig({ trust_domains: { 'example.org': { x509_authorities: [write(dir, 'root.pem', td.root.pem)] } }, watch: { enabled: false } })
  const metrics = new Metrics({ defaultMetrics: false })
  const v = createIdentityVerifier(config, { now: () => T0, metrics })
  t.after(async () => await v.close())
  await v.ready
  for (let i = 0; i < 3; i++) assert.equal((await v.verify({ peerCertificates: td.chain })).kind, 'verified')
  const text = await metrics.registry.metrics()
  assert.match(text, /^portcullis_identity_cache_hits_total 2$/m)
  assert.match(text, /^portcullis_identity_cache_misses_total 1$/m)
  assert.match(text, /^portcullis_identity_cache_entries 1$/m)
  const bytes = Number(/^portcullis_identity_cache_bytes (\d+)$/m.exec(text)?.[1])
  assert.ok(bytes > 0 && bytes <= config.cache.max_bytes)
})
