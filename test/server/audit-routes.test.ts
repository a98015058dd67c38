/**
 * The /v1/audit/* endpoints of a real server (audit on, sync, pinned checkpoint key) called over
 * a real socket: the streamed export verifies offline; every inclusion proof the server gives
 * verifies against the *signed* checkpoint with the tree functions, and so do consistency
 * proofs between two signed checkpoints; a second stream in the directory (as another worker
 * process writes it) is served too; bad parameters are 400 PORTCULLIS_AUDIT_INVALID; a caller
 * the system authorization policy refuses gets 403; a server without the audit log says 503.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AuditLog } from '../../src/audit/log/writer.js'
import { parseCheckpoint, verifyCheckpoint } from '../../src/audit/log/checkpoint.js'
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/log/tree.js'
import { verifyExport } from '../../src/audit/export/verify.js'
import { logOptions } from '../helpers/audit.js'
import { auditedServer, BACKEND, type AuditedServer, type Decided } from '../helpers/audit-runtime.js'
import { startRuntime } from '../helpers/runtime.js'

interface Cp { stream: string, origin: string, size: number, root: string, note: string }

describe('/v1/audit endpoints', () => {
  let server: AuditedServer
  const decided: Decided[] = []
  const get = async (path: string): Promise<Response> => await fetch(`${server.url}${path}`)
  const json = async (path: string): Promise<{ status: number, body: Record<string, any> }> => {
    const r = await get(path)
    return { status: r.status, body: await r.json() as Record<string, any> }
  }
  const checkpoints = async (): Promise<Cp[]> => {
    const { status, body } = await json('/v1/audit/checkpoint')
    assert.equal(status, 200)
    return body.result.streams as Cp[]
  }

  before(async () => {
    server = await auditedServer()
    // another writer's stream in the same directory, as a second worker process writes it
    const other = await AuditLog.open(logOptions(server.auditDir, { stream: 'w7', durability: 'sync', checkpoint: { everyEvents: 3, everyMs: 600_000, keyFile: join(server.keyDir, 'checkpoint.pem') } }))
    for (let i = 0; i < 7; i++) await other.append(JSON.stringify({ decision_id: `w7-${i}`, path: 'authz/allow', timestamp: new Date().toISOString(), outcome: 'deny', transport: 'http', cached: false }))
    await other.close()
    for (let i = 0; i < 4; i++) decided.push(await server.decide('frontend'))
    for (let i = 0; i < 4; i++) decided.push(await server.decide('backend'))
  })
  after(async () => { await server.close() })

  test('GET /v1/audit/checkpoint: the latest signed checkpoint of every stream, signed by the pinned key', async () => {
    const cps = await checkpoints()
    assert.deepEqual(cps.map((c) => c.stream), ['main', 'w7'])
    for (const c of cps) {
      assert.equal(verifyCheckpoint(c.note, server.publicKeyPem), true)
      const parsed = parseCheckpoint(c.note)
      assert.equal(parsed.size, c.size)
      assert.equal(parsed.root.toString('base64'), c.root)
      assert.equal(parsed.origin, c.origin)
    }
    assert.equal(cps[1]?.size, 7)
    assert.ok((cps[0]?.size ?? 0) >= 4)
  })

  test('GET /v1/audit/events streams an export that verifies offline, and each proof the server gives verifies against the signed root', async () => {
    for (const format of ['ndjson', 'csv'] as const) {
      const r = await get(`/v1/audit/events?format=${format}`)
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type') ?? '', format === 'csv' ? /^text\/csv/ : /^application\/x-ndjson/)
      const file = join(server.keyDir, `http-export.${format}`)
      writeFileSync(file, Buffer.from(await r.arrayBuffer()))
      const report = await verifyExport(file, server.publicKeyPem)
      assert.equal(report.ok, true, JSON.stringify(report.problem))
      assert.deepEqual(report.streams.map((s) => s.stream), ['main', 'w7'])
      assert.equal(report.streams[1]?.events, 7)
      // every decision answered before the export's checkpoint is in it
      assert.ok((report.streams[0]?.events ?? 0) >= 4)
    }
    const text = await (await get('/v1/audit/events')).text()
    const items = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>)
    const header = items[0] as { streams: Cp[] }
    let checked = 0
    for (const ev of items.filter((i) => i.type === 'event')) {
      const cp = header.streams.find((s) => s.stream === ev.stream) as Cp
      assert.equal(verifyCheckpoint(cp.note, server.publicKeyPem), true)
      const signed = parseCheckpoint(cp.note)
      const { status, body } = await json(`/v1/audit/proof/inclusion?stream=${ev.stream as string}&index=${ev.index as number}&tree_size=${signed.size}`)
      assert.equal(status, 200)
      const proof = (body.result.inclusion_proof as string[]).map((h) => Buffer.from(h, 'base64'))
      assert.equal(verifyInclusion(ev.index as number, signed.size, leafHash(Buffer.from(ev.record as string)), proof, signed.root), true)
      // and not for another record
      assert.equal(verifyInclusion(ev.index as number, signed.size, leafHash(Buffer.from((ev.record as string) + ' ')), proof, signed.root), false)
      checked++
    }
    assert.ok(checked >= 11)
  })

  test('GET /v1/audit/proof/consistency: a later signed checkpoint extends an earlier one', async () => {
    const before = (await checkpoints())[0] as Cp
    for (let i = 0; i < 5; i++) decided.push(await server.decide('frontend'))
    const later = (await checkpoints())[0] as Cp
    assert.ok(later.size > before.size)
    const { status, body } = await json(`/v1/audit/proof/consistency?stream=main&first=${before.size}&second=${later.size}`)
    assert.equal(status, 200)
    const proof = (body.result.consistency_proof as string[]).map((h) => Buffer.from(h, 'base64'))
    const a = parseCheckpoint(before.note)
    const b = parseCheckpoint(later.note)
    assert.equal(verifyCheckpoint(b.note, server.publicKeyPem), true)
    assert.equal(verifyConsistency(a.size, b.size, a.root, b.root, proof), true)
    assert.equal(verifyConsistency(a.size, b.size, b.root, b.root, proof), false)
    // second defaults to the latest signed size
    const dflt = await json(`/v1/audit/proof/consistency?stream=main&first=${before.size}`)
    assert.ok(dflt.body.result.second >= later.size)
  })

  test('GET /v1/audit/events filters as the CLI does (repeatable parameters)', async () => {
    const text = await (await get(`/v1/audit/events?spiffe_id=${encodeURIComponent(BACKEND)}&outcome=deny&outcome=allow`)).text()
    const ids = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>).filter((i) => i.type === 'event').map((i) => (JSON.parse(i.record as string) as { decision_id: string }).decision_id)
    assert.deepEqual(ids.sort(), decided.filter((d) => d.spiffe_id === BACKEND).map((d) => d.decision_id).sort())
    const none = await (await get(`/v1/audit/events?from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).text()
    assert.equal(JSON.parse(none.trimEnd().split('\n').at(-1) as string).events, 0)
  })

  test('bad parameters: 400 PORTCULLIS_AUDIT_INVALID', async () => {
    const size = ((await checkpoints())[0] as Cp).size
    for (const path of [
      '/v1/audit/events?from=yesterday',
      '/v1/audit/events?outcome=maybe',
      '/v1/audit/events?format=xml',
      '/v1/audit/events?spiffe_id=frontend',
      '/v1/audit/events?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z',
      `/v1/audit/proof/inclusion?stream=main&index=0&tree_size=${size + 1000}`,
      `/v1/audit/proof/inclusion?stream=main&index=${size}&tree_size=${size}`,
      '/v1/audit/proof/inclusion?stream=main&index=abc',
      '/v1/audit/proof/inclusion?stream=main&index=-1',
      '/v1/audit/proof/inclusion?index=0',
      '/v1/audit/proof/inclusion?stream=nope&index=0',
      '/v1/audit/proof/inclusion?stream=..&index=0',
      `/v1/audit/proof/consistency?stream=main&first=${size + 1}&second=${size}`,
      `/v1/audit/proof/consistency?stream=main&first=1&second=${size + 1000}`,
    ]) {
      const { status, body } = await json(path)
      assert.equal(status, 400, path)
      assert.equal(body.portcullis_code, 'PORTCULLIS_AUDIT_INVALID', path)
    }
  })

  test('a caller the system authorization policy refuses gets 403 from every audit endpoint', async () => {
    for (const url of ['/v1/audit/events', '/v1/audit/checkpoint', '/v1/audit/proof/inclusion?stream=main&index=0', '/v1/audit/proof/consistency?stream=main&first=0']) {
      const r = await server.runtime.app.inject({ method: 'GET', url, remoteAddress: '10.9.8.7' })
      assert.equal(r.statusCode, 403, url)
      assert.equal(r.json().portcullis_code, 'PORTCULLIS_IDENTITY_DENIED', url)
      // the same request from loopback (which the system policy allows) is answered
      const ok = await server.runtime.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1' })
      assert.equal(ok.statusCode, 200, url)
    }
  })

  test('without the audit log the endpoints answer 503 PORTCULLIS_AUDIT_UNAVAILABLE', async () => {
    const plain = await startRuntime({}, { listen: false })
    try {
      for (const url of ['/v1/audit/events', '/v1/audit/checkpoint', '/v1/audit/proof/inclusion?stream=main&index=0']) {
        const r = await plain.runtime.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1' })
        assert.equal(r.statusCode, 503, url)
        assert.equal(r.json().portcullis_code, 'PORTCULLIS_AUDIT_UNAVAILABLE', url)
      }
    } finally { await plain.close() }
  })
})
