/**
 * The console's query layer over a real audit directory written by the real writer: two
 * streams, small segments (so there are many sealed ones), events with known timestamps,
 * outcomes and callers. Paging is checked against the records themselves; the segment
 * summaries against what a second, index-assisted scan reads.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { AuditLog } from '../../src/audit/log/writer.js'
import { ConsoleFilter } from '../../src/console/filter.js'
import { decodeCursor, listDecisions } from '../../src/console/decisions.js'
import { overview } from '../../src/console/overview.js'
import { integrity } from '../../src/console/integrity.js'
import { PortcullisError } from '../../src/errors.js'
import { logOptions, tempAuditDir } from '../helpers/audit.js'

const T0 = Date.parse('2026-11-01T00:00:00Z')
const N = 120
const A = 'spiffe://example.org/a'
const B = 'spiffe://example.org/b'

interface Ev { stream: string, seq: number, ts: number, outcome: string, caller: string, transport: string, cached: boolean, revision: string }
const events: Ev[] = []

function ev (i: number): Omit<Ev, 'stream' | 'seq'> {
  return { ts: T0 + i * 60_000, outcome: i % 3 === 0 ? 'deny' : 'allow', caller: i % 4 === 0 ? B : A, transport: i % 5 === 0 ? 'envoy-grpc' : 'http', cached: i % 7 === 0, revision: i < 60 ? 'r1' : 'r2' }
}

describe('console decisions, overview and integrity over a real log', () => {
  let base: { dir: string, cleanup: () => void }

  before(async () => {
    base = tempAuditDir()
    const logs = { main: await AuditLog.open(logOptions(base.dir, { stream: 'main', durability: 'sync', segmentMaxBytes: 1500, checkpoint: { everyEvents: 10, everyMs: 600_000 } })), w1: await AuditLog.open(logOptions(base.dir, { stream: 'w1', durability: 'sync', segmentMaxBytes: 1500, checkpoint: { everyEvents: 10, everyMs: 600_000 } })) }
    const seqs = { main: 0, w1: 0 }
    for (let i = 0; i < N; i++) {
      const stream = i % 2 === 0 ? 'main' : 'w1'
      const e = ev(i)
      await logs[stream].append(JSON.stringify({
        decision_id: `d-${i}`, bundles: { authz: { revision: e.revision } }, path: 'authz/allow', input: { method: 'GET', path: '/x' },
        result: e.outcome === 'allow', timestamp: new Date(e.ts).toISOString(), identity: { type: 'jwt_svid', spiffe_id: e.caller },
        cached: e.cached, transport: e.transport, outcome: e.outcome,
        ...(i % 10 === 0 ? { identity_error: 'PORTCULLIS_IDENTITY_EXPIRED' } : {}),
      }))
      events.push({ stream, seq: seqs[stream]++, ...e })
    }
    await logs.main.close()
    await logs.w1.close()
  })
  after(() => base.cleanup())

  const ids = (xs: Ev[]): string[] => xs.sort((a, b) => b.ts - a.ts).map((e) => `${e.stream}:${e.seq}`)

  async function allPages (filter: ConsoleFilter, limit: number, maxScan: number): Promise<{ seen: string[], pages: number }> {
    const seen: string[] = []
    let cursor: string | undefined
    for (let pages = 1; pages < 500; pages++) {
      const page = await listDecisions(base.dir, filter, limit, cursor, maxScan)
      assert.ok(page.scanned <= maxScan)
      seen.push(...page.items.map((x) => x.id))
      if (page.next_cursor === null) return { seen, pages }
      cursor = page.next_cursor
    }
    throw new Error('paging did not end')
  }

  test('segment summaries let a repeated narrow query skip sealed segments (runs first: nothing summarised yet)', async () => {
    const f = new ConsoleFilter({ to: new Date(T0 + 10 * 60_000).toISOString() })
    const first = await listDecisions(base.dir, f, 100, undefined, 10_000)
    const second = await listDecisions(base.dir, f, 100, undefined, 10_000)
    assert.deepEqual(second.items.map((x) => x.id), first.items.map((x) => x.id))
    assert.deepEqual(first.items.map((x) => x.id), ids(events.filter((e) => e.ts < T0 + 10 * 60_000)))
    // the first read examined the newer records too; the second skips the sealed segments outside the range unread
    assert.ok(first.scanned >= N - 20, `first scan ${first.scanned}`)
    assert.ok(second.scanned < first.scanned / 2, `${second.scanned} < ${first.scanned} / 2`)
  })

  test('pages cover every decision once, newest first, with a bounded scan per request', async () => {
    const { seen, pages } = await allPages(new ConsoleFilter({}), 7, 9)
    assert.deepEqual(seen, ids([...events]))
    assert.ok(pages > N / 9)
  })

  test('filters: outcome, caller, transport, cached, revision, time range', async () => {
    const f = new ConsoleFilter({ outcome: 'deny', caller: B, transport: 'http', cached: 'false', revision: 'r1' })
    const { seen } = await allPages(f, 10, 50)
    assert.deepEqual(seen, ids(events.filter((e) => e.outcome === 'deny' && e.caller === B && e.transport === 'http' && !e.cached && e.revision === 'r1')))
    const from = new Date(T0 + 30 * 60_000).toISOString()
    const to = new Date(T0 + 50 * 60_000).toISOString()
    const ranged = await allPages(new ConsoleFilter({ from, to }), 100, 1000)
    assert.deepEqual(ranged.seen, ids(events.filter((e) => e.ts >= T0 + 30 * 60_000 && e.ts < T0 + 50 * 60_000)))
  })

  test('a cursor this server did not issue is refused with PORTCULLIS_AUDIT_INVALID', async () => {
    for (const c of ['x', Buffer.from('{"v":1,"b":{"main":-1}}').toString('base64url'), Buffer.from('[]').toString('base64url')]) {
      await assert.rejects(listDecisions(base.dir, new ConsoleFilter({}), 5, c), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_AUDIT_INVALID')
    }
    assert.throws(() => decodeCursor('!!'), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_AUDIT_INVALID')
    assert.throws(() => new ConsoleFilter({ cached: 'maybe' }), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_AUDIT_INVALID')
  })

  test('overview numbers equal counts from the events, and a repeated (cached) overview is the same', async () => {
    const from = new Date(T0).toISOString()
    const to = new Date(T0 + N * 60_000).toISOString()
    for (const q of [{ from, to }, { from, to, caller: A }, { from: new Date(T0 + 17 * 60_000).toISOString(), to }]) {
      const f = new ConsoleFilter(q)
      const o = await overview(base.dir, f, '600') as { series: Array<{ t: string, allow: number, deny: number }>, top_denied_callers: Array<{ caller: string, deny: number }>, identity_rejections: Array<{ code: string, count: number }>, revisions: Array<{ revision: string, first_seen: string }> }
      const again = await overview(base.dir, f, '600')
      assert.deepEqual(again, o)
      const sel = events.filter((e) => e.ts >= Date.parse(q.from) && e.ts < Date.parse(to) && (q.caller === undefined || e.caller === q.caller))
      for (const b of o.series) {
        const t = Date.parse(b.t)
        const inB = sel.filter((e) => e.ts >= t && e.ts < t + 600_000)
        assert.equal(b.allow, inB.filter((e) => e.outcome === 'allow').length)
        assert.equal(b.deny, inB.filter((e) => e.outcome === 'deny').length)
      }
      assert.equal(o.series.reduce((n, b) => n + b.allow + b.deny, 0), sel.length)
      for (const c of o.top_denied_callers) assert.equal(c.deny, sel.filter((e) => e.caller === c.caller && e.outcome === 'deny').length)
      const rejected = events.filter((e, i) => i % 10 === 0 && sel.includes(e)).length
      assert.deepEqual(o.identity_rejections, rejected === 0 ? [] : [{ code: 'PORTCULLIS_IDENTITY_EXPIRED', count: rejected }])
      assert.deepEqual(o.revisions.map((r) => r.revision), [...new Set(sel.map((e) => e.revision))])
    }
    await assert.rejects(overview(base.dir, new ConsoleFilter({ from, to }), '1'), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_AUDIT_INVALID')
  })

  test('integrity: checkpoints consistent, signatures valid with the directory key, unsealed counted', async () => {
    const r = await integrity(base.dir, undefined) as { streams: Array<{ stream: string, events: number, signature: string, key_source: string, consistent_with_previous: boolean | null, unsealed_events: number, checkpoint: { size: number } }> }
    assert.deepEqual(r.streams.map((s) => s.stream), ['main', 'w1'])
    for (const s of r.streams) {
      assert.equal(s.events, N / 2)
      assert.equal(s.signature, 'valid')
      assert.equal(s.key_source, 'directory')
      assert.equal(s.consistent_with_previous, true)
      assert.equal(s.unsealed_events, s.events - s.checkpoint.size)
    }
  })
})
