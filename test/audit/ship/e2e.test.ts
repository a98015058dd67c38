/**
 * End to end: a real Portcullis runtime (config -> createRuntime, listening on loopback) with
 * the durable audit log and decision-log shipping configured with OPA's keys, answering real
 * HTTP Data API requests; its decisions arrive at a loopback collector (collector.ts: a small
 * node:http server standing in for an OPA-compatible collector, none of which exists here).
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { ConfigOverrides } from '../../../src/config/load.js'
import { readCursor } from '../../../src/audit/log/ship-cursor.js'
import { startRuntime } from '../../helpers/runtime.js'
import { Collector } from './collector.js'

async function decide (url: string, i: number): Promise<string> {
  const r = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { n: i } }) })
  assert.equal(r.status, 200)
  const body = await r.json() as { decision_id?: string }
  assert.equal(typeof body.decision_id, 'string')
  return body.decision_id as string
}

test('a server with audit and decision_logs ships every decision; the last ones at shutdown', async () => {
  const collector = new Collector()
  await collector.up()
  const auditDir = mkdtempSync(join(tmpdir(), 'ship-e2e-'))
  const started = await startRuntime({
    audit: { enabled: true, dir: auditDir, durability: 'sync' },
    services: { collector: { url: collector.url, credentials: { bearer: { token: 'e2e-token' } } } },
    decision_logs: { service: 'collector', reporting: { min_delay_seconds: 1, max_delay_seconds: 1 } },
  } as ConfigOverrides).catch(async (err: unknown) => { await collector.down(); throw err })
  const { runtime, url, close } = started
  let closed = false
  try {
    assert.ok(runtime.shipper !== undefined)
    const first: string[] = []
    for (let i = 0; i < 20; i++) first.push(await decide(url, i))
    // periodic upload
    await collector.until(() => first.every((id) => collector.accepted.some((e) => e.decision_id === id)))
    const status = await runtime.app.inject({ method: 'GET', url: '/v1/status' })
    assert.equal(status.statusCode, 200)
    const dl = (status.json() as { result: { decision_logs: { state: string, shipping: boolean, url: string } } }).result.decision_logs
    assert.equal(dl.state, 'OK')
    assert.equal(dl.shipping, true)
    assert.equal(dl.url, `${collector.url}/logs`)

    // the final upload at stop carries what the periodic one has not yet
    const last: string[] = []
    for (let i = 20; i < 25; i++) last.push(await decide(url, i))
    await close()
    closed = true
    const got = new Set(collector.accepted.map((e) => e.decision_id))
    for (const id of [...first, ...last]) assert.ok(got.has(id), `decision ${id} delivered`)
    for (const u of collector.uploads) {
      assert.equal(u.path, '/logs')
      assert.equal(u.headers.authorization, 'Bearer e2e-token')
      assert.equal(u.headers['content-encoding'], 'gzip')
    }
    const e = collector.accepted.find((x) => x.decision_id === first[0])
    assert.equal(e?.path, 'authz/allow')
    assert.deepEqual(e?.input, { n: 0 })
    assert.ok(typeof e?.timestamp === 'string')
    const streams = (await import('node:fs')).readdirSync(auditDir).filter((n) => !n.startsWith('.') && !n.endsWith('.pem'))
    let shipped = 0
    for (const s of streams) shipped += (await readCursor(join(auditDir, s)))?.next_seq ?? 0
    assert.ok(shipped >= 25)
  } finally {
    if (!closed) await close()
    await collector.down()
  }
})
