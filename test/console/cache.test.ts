/**
 * The console's caches are bounded by bytes (src/console/cache.ts, console.cache_max_bytes):
 * a real audit directory written by the real writer, small segments whose records carry long
 * callers and paths (so each segment summary and each overview partial is large), queried by
 * the console's own functions. The estimated bytes kept never exceed the bound, an entry larger
 * than its half of the bound is not kept at all, and answers do not depend on what was evicted.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { AuditLog } from '../../src/audit/log/writer.js'
import { configureConsoleCaches, consoleCacheStats, DEFAULT_CACHE_MAX_BYTES, estimateBytes } from '../../src/console/cache.js'
import { listDecisions } from '../../src/console/decisions.js'
import { ConsoleFilter } from '../../src/console/filter.js'
import { overview } from '../../src/console/overview.js'
import { listSegments, streamPaths } from '../../src/audit/log/layout.js'
import { logOptions, tempAuditDir } from '../helpers/audit.js'

const T0 = Date.parse('2026-11-01T00:00:00Z')
const N = 600
const LONG = 'x'.repeat(900)

describe('console caches bounded by bytes', () => {
  let base: { dir: string, cleanup: () => void }
  let sealed = 0
  const range = { from: new Date(T0).toISOString(), to: new Date(T0 + (N + 1) * 1000).toISOString() }

  before(async () => {
    base = tempAuditDir()
    const log = await AuditLog.open(logOptions(base.dir, { stream: 'main', durability: 'sync', segmentMaxBytes: 32 * 1024, checkpoint: { everyEvents: 100, everyMs: 600_000 } }))
    for (let i = 0; i < N; i++) {
      // every record names a different long caller and path: summaries and partials grow with them
      await log.append(JSON.stringify({
        decision_id: `d-${i}`, bundles: { authz: { revision: 'r1' } }, path: `authz/${LONG}/${i}`, input: {}, result: i % 2 === 0,
        timestamp: new Date(T0 + i * 1000).toISOString(), identity: { type: 'jwt_svid', spiffe_id: `spiffe://example.org/${LONG}/${i}` },
        cached: false, transport: 'http', outcome: i % 2 === 0 ? 'allow' : 'deny',
      }))
    }
    await log.close()
    sealed = (await listSegments(streamPaths(base.dir, 'main').segments)).length - 1
    assert.ok(sealed >= 20, `${sealed} sealed segments`)
  })
  after(() => { base.cleanup(); configureConsoleCaches(DEFAULT_CACHE_MAX_BYTES) })

  async function queryAll (): Promise<{ ids: string[], o: unknown }> {
    const page = await listDecisions(base.dir, new ConsoleFilter({}), 500, undefined, 10_000)
    const more = page.next_cursor !== null ? await listDecisions(base.dir, new ConsoleFilter({}), 500, page.next_cursor, 10_000) : undefined
    const o = await overview(base.dir, new ConsoleFilter(range), '60')
    return { ids: [...page.items, ...(more?.items ?? [])].map((x) => x.id), o }
  }

  test('the estimated bytes kept stay within the bound; the least recently used entries go', async () => {
    const bound = 1024 * 1024
    configureConsoleCaches(bound)
    const small = await queryAll()
    // repeated: what was evicted is read again
    const again = await queryAll()
    const s = consoleCacheStats()
    assert.equal(s.summaries.max_bytes, bound / 2)
    assert.ok(s.summaries.bytes <= bound / 2, `summaries ${s.summaries.bytes} <= ${bound / 2}`)
    assert.ok(s.partials.bytes <= bound / 2, `partials ${s.partials.bytes} <= ${bound / 2}`)
    assert.ok(s.summaries.entries >= 1, 'something is cached')
    assert.ok(s.summaries.entries < sealed, `${s.summaries.entries} < ${sealed}: a count bound alone would have kept all`)
    // answers do not depend on the bound
    configureConsoleCaches(256 * 1024 * 1024)
    const large = await queryAll()
    const warm = await queryAll()
    assert.equal(consoleCacheStats().summaries.entries, sealed, 'with room, every sealed segment is summarised once')
    assert.deepEqual(small.ids, large.ids)
    assert.equal(small.ids.length, N)
    assert.deepEqual(small.o, large.o)
    assert.deepEqual(again.o, large.o)
    assert.deepEqual(warm.o, large.o)
  })

  test('an entry larger than its half of the bound is not kept at all', async () => {
    configureConsoleCaches(65_536)
    await queryAll()
    const s = consoleCacheStats()
    assert.equal(s.summaries.entries, 0)
    assert.equal(s.partials.entries, 0)
    assert.equal(s.summaries.bytes, 0)
  })

  test('the estimate counts the strings an entry keeps (two bytes a character at least)', () => {
    const names = Array.from({ length: 100 }, (_, i) => `${LONG}${i}`)
    const chars = names.reduce((n, x) => n + x.length, 0)
    assert.ok(estimateBytes({ callers: new Set(names) }) >= 2 * chars)
    assert.ok(estimateBytes(new Map(names.map((n) => [n, { total: 1, deny: 0 }]))) >= 2 * chars)
    assert.throws(() => configureConsoleCaches(0), RangeError)
  })
})
