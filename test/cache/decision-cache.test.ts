import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DecisionCache, decisionBytes, DEFAULT_CACHE_MAX_BYTES, type CachedDecision } from '../../src/cache/decision-cache.js'
import { Metrics } from '../../src/metrics/index.js'

test('hits, misses and stats', () => {
  const c = new DecisionCache({ maxEntries: 10, ttlMs: 1000 })
  assert.equal(c.get('k'), undefined)
  c.set('k', { defined: true, result: true, bundle: 'b' })
  assert.deepEqual(c.get('k'), { defined: true, result: true, bundle: 'b' })
  const { bytes, ...rest } = c.stats()
  assert.deepEqual(rest, { entries: 1, hits: 1, misses: 1, evictions: 0, max_entries: 10, ttl_ms: 1000, max_bytes: DEFAULT_CACHE_MAX_BYTES })
  assert.ok(bytes > 0 && bytes < 1024)
})

test('entries expire after the TTL (injected clock)', () => {
  let now = 1_000
  const c = new DecisionCache({ maxEntries: 10, ttlMs: 500, perf: { now: () => now } })
  c.set('k', { defined: false, bundle: 'b' })
  now += 499
  assert.notEqual(c.get('k'), undefined)
  now += 2
  assert.equal(c.get('k'), undefined)
})

test('the size bound evicts the least recently used entry and counts it', async () => {
  const metrics = new Metrics({ defaultMetrics: false })
  const c = new DecisionCache({ maxEntries: 2, ttlMs: 60_000, metrics })
  c.set('a', { defined: true, result: 1, bundle: 'b' })
  c.set('b', { defined: true, result: 2, bundle: 'b' })
  c.get('a')
  c.set('c', { defined: true, result: 3, bundle: 'b' })
  assert.equal(c.get('b'), undefined)
  assert.notEqual(c.get('a'), undefined)
  assert.equal(c.stats().evictions, 1)
  assert.match(await metrics.registry.metrics(), /portcullis_decision_cache_evictions_total 1/)
})

test('clear empties the cache and reports how many entries went', () => {
  const c = new DecisionCache({ maxEntries: 10, ttlMs: 1000 })
  c.set('a', { defined: true, result: 1, bundle: 'b' })
  c.set('b', { defined: true, result: 1, bundle: 'b' })
  assert.equal(c.clear(), 2)
  assert.equal(c.get('a'), undefined)
})

test('bounded in bytes: unique large results evict the oldest instead of growing without end; one above max_entry_bytes is not cached', () => {
  const c = new DecisionCache({ maxEntries: 100_000, ttlMs: 60_000, maxBytes: 1024 * 1024, maxEntryBytes: 256 * 1024 })
  const big = (i: number): CachedDecision => ({ defined: true, result: { echo: 'x'.repeat(50_000), i }, bundle: 'b' })
  for (let i = 0; i < 200; i++) c.set(`k${i}`, big(i))
  const s = c.stats()
  assert.ok(s.bytes <= 1024 * 1024, `bytes ${s.bytes}`)
  assert.ok(s.entries < 20 && s.entries > 0, `entries ${s.entries}`)
  assert.ok(c.get('k199') !== undefined, 'the newest stays')
  assert.equal(c.get('k0'), undefined, 'the oldest went')
  c.set('huge', { defined: true, result: ['y'.repeat(200_000)], bundle: 'b' })
  assert.equal(c.get('huge'), undefined, 'an entry above max_entry_bytes is not cached')
  assert.ok(decisionBytes('k', { defined: true, result: true, bundle: 'b' }, 1 << 20) < 512)
})
