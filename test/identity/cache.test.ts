import { test } from 'node:test'
import assert from 'node:assert/strict'
import { credentialKey, VerifiedCredentialCache } from '../../src/identity/cache.js'
import type { IdentityDocument } from '../../src/identity/document.js'
import { T0 } from './support/pki.js'

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
