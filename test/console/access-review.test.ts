/**
 * Access review over a real log: method and path from Data API input and from Envoy request
 * attributes, allow/deny counts and first/last seen per (caller, path, method), unused grants
 * with `*`, and the CSV and HTML forms with hostile values (quoted, escaped).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'csv-parse/sync'
import { AuditLog } from '../../src/audit/log/writer.js'
import { ConsoleFilter } from '../../src/console/filter.js'
import { accessReview, accessReviewCsv, accessReviewHtml } from '../../src/console/access-review.js'
import { logOptions, tempAuditDir } from '../helpers/audit.js'

const T0 = Date.parse('2026-11-01T00:00:00Z')
const A = 'spiffe://example.org/a'
const EVIL = 'spiffe://example.org/<script>alert(1)</script>,"x"'
let base: { dir: string, cleanup: () => void }

before(async () => {
  base = tempAuditDir()
  const log = await AuditLog.open(logOptions(base.dir, { durability: 'sync', segmentMaxBytes: 1200 }))
  const rows: Array<[number, string, Record<string, unknown>, string]> = [
    [0, A, { method: 'GET', path: '/orders/1' }, 'allow'],
    [1, A, { method: 'GET', path: '/orders/1' }, 'allow'],
    [2, A, { method: 'GET', path: '/orders/1' }, 'deny'],
    [3, A, { attributes: { request: { http: { method: 'POST', path: '/pay' } } } }, 'allow'],
    [4, EVIL, { method: 'GET', path: '/orders/1' }, 'deny'],
    [5, A, { method: 'GET', path: '/orders/1' }, 'undefined'],
  ]
  for (const [i, caller, input, outcome] of rows) {
    await log.append(JSON.stringify({ decision_id: `d-${i}`, path: 'authz/allow', input, timestamp: new Date(T0 + i * 1000).toISOString(), identity: { type: 'jwt_svid', spiffe_id: caller }, transport: 'http', outcome }))
  }
  await log.close()
})
after(() => base.cleanup())

test('rows per caller, path and method; unused grants with wildcards', async () => {
  const filter = new ConsoleFilter({ from: new Date(T0).toISOString(), to: new Date(T0 + 60_000).toISOString() })
  const grants = [
    { caller: A, path: '/orders/1', method: 'GET' }, // used
    { caller: A, path: '/pay', method: '*' }, // used by the Envoy POST
    { caller: '*', path: '/refund', method: 'POST' }, // never
    { caller: EVIL, path: '/orders/1', method: 'GET' }, // only denied: unused
  ]
  const r = await accessReview(base.dir, filter, grants, 'system/console/grants')
  // code-unit order ('<' sorts before 'a')
  assert.deepEqual(r.rows.map((x) => [x.caller, x.path, x.method, x.allow, x.deny]), [
    [EVIL, '/orders/1', 'GET', 0, 1],
    [A, '/orders/1', 'GET', 2, 1],
    [A, '/pay', 'POST', 1, 0],
  ])
  assert.equal(r.rows[1]?.first_seen, new Date(T0).toISOString())
  assert.equal(r.rows[1]?.last_seen, new Date(T0 + 2000).toISOString())
  assert.deepEqual(r.unused, [grants[2], grants[3]])
  assert.equal(r.grants_source, 'system/console/grants')
  const none = await accessReview(base.dir, filter, undefined, 'system/console/grants')
  assert.deepEqual(none.unused, [])
  assert.equal(none.grants_source, null)

  const csv = parse(accessReviewCsv(r)) as string[][]
  assert.deepEqual(csv[0], ['kind', 'caller', 'path', 'method', 'allow', 'deny', 'first_seen', 'last_seen'])
  assert.deepEqual(csv.slice(1).map((l) => [l[0], l[1]]), [['used', EVIL], ['used', A], ['used', A], ['unused', '*'], ['unused', EVIL]])
  const html = accessReviewHtml(r)
  assert.ok(!html.includes('<script>'))
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'))
  assert.ok(!/<script|src=|href=/i.test(html))
})
