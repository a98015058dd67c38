/**
 * The console API over the wire: a real server with the durable audit log, a system policy
 * (built by the real opa) that admits only the frontend workload, real decisions by two
 * JWT-SVID callers, and every console route checked against the log itself.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { leafHash, verifyInclusion } from '../../src/audit/log/tree.js'
import { buildBundleDir } from '../helpers/bundles.js'
import { consoleSetting } from '../helpers/console.js'
import { FRONTEND, verifiedCaller } from '../helpers/identity.js'
import { startRuntime } from '../helpers/runtime.js'

const BACKEND = 'spiffe://example.org/ns/shop/sa/backend'

describe('console API', () => {
  let url: string
  let close: () => Promise<void>
  let auditDir: string
  let work: string
  let front: Record<string, string>
  let back: Record<string, string>
  let goodCandidate: string
  let badCandidate: string
  const records: Array<Record<string, unknown> & { stream: string, seq: number }> = []

  const get = async (path: string, who: Record<string, string> = front): Promise<Response> => await fetch(`${url}${path}`, { headers: who })

  before(async () => {
    const setting = consoleSetting('portcullis-console-')
    work = setting.work
    auditDir = setting.auditDir
    const bundles = setting.bundles
    // candidates: the service's own authz policy, signed by the configured key and by another
    const signer = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 })
    for (const [name, key] of [['signer', signer], ['stranger', stranger]] as const) writeFileSync(join(work, `${name}.pem`), key.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const src = setting.candidateSrc
    goodCandidate = buildBundleDir(src, join(work, 'good.tar.gz'), { revision: 'candidate', signingKey: join(work, 'signer.pem') })
    badCandidate = buildBundleDir(src, join(work, 'bad.tar.gz'), { revision: 'candidate', signingKey: join(work, 'stranger.pem') })
    const frontend = await verifiedCaller(FRONTEND)
    const backendToken = await frontend.issuer.sign(BACKEND, { expSeconds: 3600 })
    front = frontend.headers
    back = { authorization: `Bearer ${backendToken}` }
    const started = await startRuntime({
      identity: frontend.config(),
      // signatures are checked when present (the served bundles are unsigned, so not required)
      bundles: { dir: bundles, signing: { required: false, keys: { default: { key: signer.publicKey.export({ type: 'spki', format: 'pem' }) as string, algorithm: 'RS256' } } } },
      audit: setting.audit,
    } as never)
    url = started.url
    close = started.close
    const inputs = [{ service: 'orders', method: 'GET', path: '/orders/1' }, { service: 'admin', method: 'DELETE', path: '/admin' }]
    for (let i = 0; i < 15; i++) {
      const r = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json', ...(i % 3 === 0 ? back : front) }, body: JSON.stringify({ input: inputs[i % 2] }) })
      assert.equal(r.status, 200)
    }
    const reader = await AuditDirReader.open(auditDir)
    for (const id of reader.streams()) {
      for await (const { seq, bytes } of reader.stream(id).records(0)) records.push({ ...JSON.parse(bytes.toString('utf8')) as Record<string, unknown>, stream: id, seq })
    }
    reader.close()
  })
  after(async () => { await close(); rmSync(work, { recursive: true, force: true }) })

  test('every console route refuses a caller the system policy refuses', async () => {
    for (const p of ['/v1/console/decisions', '/v1/console/overview', '/v1/console/integrity', '/v1/console/access-review', '/v1/console/decisions/x/0', '/ui/', '/ui/assets/x.js', '/v1/console/verify/x', '/v1/console/replay/x']) {
      const r = await get(p, back)
      assert.equal(r.status, 403, p)
      assert.equal((await r.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_IDENTITY_DENIED')
      const anon = await get(p, {})
      assert.ok(anon.status === 401 || anon.status === 403, p)
    }
    for (const p of ['/v1/console/verify', '/v1/console/replay']) {
      const r = await fetch(`${url}${p}`, { method: 'POST', headers: back })
      assert.equal(r.status, 403, p)
    }
    const upload = new FormData()
    upload.append('bundle', new Blob([readFileSync(goodCandidate)]), 'candidate.tar.gz')
    const refused = await fetch(`${url}/v1/console/replay`, { method: 'POST', headers: back, body: upload })
    assert.equal(refused.status, 403)
    assert.equal((await refused.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_IDENTITY_DENIED')
  })

  test('decisions page newest first across pages without duplicates or gaps, and filters', async () => {
    const decisions = records.filter((r) => r.type !== 'gap' && r.path === 'authz/allow')
    const seen: string[] = []
    let cursor: string | null = null
    for (let i = 0; i < 50; i++) {
      const q: string = `/v1/console/decisions?path=authz&limit=4${cursor !== null ? `&cursor=${cursor}` : ''}`
      const body = await (await get(q)).json() as { items: Array<{ id: string, timestamp: string }>, next_cursor: string | null }
      seen.push(...body.items.map((x) => x.id))
      // (RFC3339Nano trims trailing zeros: compare instants, not strings)
      for (let k = 1; k < body.items.length; k++) assert.ok(Date.parse((body.items[k - 1] as { timestamp: string }).timestamp) >= Date.parse((body.items[k] as { timestamp: string }).timestamp))
      cursor = body.next_cursor
      if (cursor === null) break
    }
    assert.equal(new Set(seen).size, seen.length)
    assert.deepEqual([...seen].sort(), decisions.map((r) => `${r.stream}:${r.seq}`).sort())
    const denied = await (await get(`/v1/console/decisions?path=authz&outcome=deny&caller=${encodeURIComponent(BACKEND)}`)).json() as { items: Array<{ outcome: string, caller: string }> }
    const expected = decisions.filter((r) => r.outcome === 'deny' && (r.identity as { spiffe_id?: string } | undefined)?.spiffe_id === BACKEND)
    assert.equal(denied.items.length, expected.length)
    for (const it of denied.items) { assert.equal(it.outcome, 'deny'); assert.equal(it.caller, BACKEND) }
    const bad = await get('/v1/console/decisions?cursor=nonsense')
    assert.equal(bad.status, 400)
    assert.equal((await bad.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_AUDIT_INVALID')
  })

  test('decision detail: the proof folds to the signed checkpoint root and the note verifies with the key', async () => {
    const r = records.find((x) => x.seq === 0) as { stream: string, seq: number }
    const d = await (await get(`/v1/console/decisions/${r.stream}/${r.seq}`)).json() as { record: string, proof: { tree_size: number, leaf_index: number, hashes: string[] }, checkpoint: { note: string, root: string }, public_key: { pem: string, key_hash_hex: string, name: string } }
    const ok = verifyInclusion(d.proof.leaf_index, d.proof.tree_size, leafHash(Buffer.from(d.record, 'utf8')), d.proof.hashes.map((h) => Buffer.from(h, 'base64')), Buffer.from(d.checkpoint.root, 'base64'))
    assert.equal(ok, true)
    const note = d.checkpoint.note
    const split = note.indexOf('\n\n')
    const sig = Buffer.from((note.slice(split + 2).split(' ')[2] as string).trim(), 'base64')
    assert.equal(sig.subarray(0, 4).toString('hex'), d.public_key.key_hash_hex)
    assert.equal(verify(null, Buffer.from(note.slice(0, split + 1)), createPublicKey(d.public_key.pem), sig.subarray(4)), true)
    assert.equal((await get(`/v1/console/decisions/${r.stream}/99999`)).status, 404)
  })

  test('what does not exist is 404 in the error registry\'s shape (PORTCULLIS_AUDIT_NOT_FOUND), not a 400 code on a 404', async () => {
    const r = records.find((x) => x.seq === 0) as { stream: string, seq: number }
    for (const path of [`/v1/console/decisions/${r.stream}/99999`, '/v1/console/verify/no-such-job', '/v1/console/replay/no-such-job']) {
      const res = await get(path)
      assert.equal(res.status, 404, path)
      assert.deepEqual(Object.keys(await res.json() as object).sort(), ['code', 'message', 'portcullis_code'])
    }
    const res = await get('/v1/console/replay/no-such-job')
    assert.deepEqual({ ...(await res.json() as { code: string, portcullis_code: string }), message: '' }, { code: 'resource_not_found', message: '', portcullis_code: 'PORTCULLIS_AUDIT_NOT_FOUND' })
  })

  test('overview counts equal counts from the log', async () => {
    // the console's own requests are decisions of the system policy: look at the traffic's path
    const o = await (await get('/v1/console/overview?path=authz')).json() as { series: Array<{ allow: number, deny: number }>, top_denied_callers: Array<{ caller: string, deny: number }>, deny_by_path: Array<{ path: string, total: number, deny: number }> }
    const dec = records.filter((r) => r.type !== 'gap' && r.path === 'authz/allow')
    assert.equal(o.series.reduce((n, b) => n + b.allow, 0), dec.filter((r) => r.outcome === 'allow').length)
    assert.equal(o.series.reduce((n, b) => n + b.deny, 0), dec.filter((r) => r.outcome === 'deny').length)
    const backDenied = dec.filter((r) => r.outcome === 'deny' && (r.identity as { spiffe_id?: string } | undefined)?.spiffe_id === BACKEND).length
    assert.equal(o.top_denied_callers.find((c) => c.caller === BACKEND)?.deny ?? 0, backDenied)
    const authz = o.deny_by_path.find((p) => p.path === 'authz/allow')
    assert.equal(authz?.total, dec.filter((r) => r.path === 'authz/allow').length)
    const again = await (await get('/v1/console/overview?path=authz')).json()
    assert.deepEqual(again.series.map((b: { allow: number }) => b.allow).reduce((a: number, b: number) => a + b, 0), o.series.reduce((n, b) => n + b.allow, 0))
  })

  test('console POSTs without x-portcullis-console (a cross-site form) are refused before any work', async () => {
    for (const p of ['/v1/console/verify', '/v1/console/replay']) {
      const r = await fetch(`${url}${p}`, { method: 'POST', headers: front })
      assert.equal(r.status, 403)
      assert.equal((await r.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_CONSOLE_CROSS_SITE')
    }
  })

  test('integrity: valid signature, consistent checkpoints; a verify job completes', async () => {
    const i = await (await get('/v1/console/integrity')).json() as { streams: Array<{ signature: string, key_source: string, consistent_with_previous: boolean | null, checkpoint: { size: number } }> }
    assert.ok(i.streams.length > 0)
    for (const s of i.streams) { assert.equal(s.signature, 'valid'); assert.equal(s.key_source, 'configured'); assert.equal(s.consistent_with_previous, true) }
    const start = await fetch(`${url}/v1/console/verify`, { method: 'POST', headers: { ...front, 'x-portcullis-console': '1' } })
    assert.equal(start.status, 202)
    const { job } = await start.json() as { job: string }
    let v: { state: string, progress: { events_checked: number }, report?: { ok: boolean } } = { state: 'running', progress: { events_checked: 0 } }
    for (let k = 0; k < 200 && v.state === 'running'; k++) {
      await new Promise((r) => setTimeout(r, 25))
      v = await (await get(`/v1/console/verify/${job}`)).json() as typeof v
    }
    assert.equal(v.state, 'done')
    assert.equal(v.report?.ok, true)
  })

  test('access review: counts per caller/path/method and the unused grant; CSV and HTML', async () => {
    const r = await (await get('/v1/console/access-review')).json() as { rows: Array<{ caller: string, path: string, method: string, allow: number, deny: number }>, unused: Array<{ path: string }>, grants_source: string | null }
    const dec = records.filter((x) => x.type !== 'gap' && (x.outcome === 'allow' || x.outcome === 'deny'))
    const want = dec.filter((x) => (x.identity as { spiffe_id?: string } | undefined)?.spiffe_id === FRONTEND && (x.input as { path?: string }).path === '/orders/1' && x.outcome === 'allow').length
    assert.equal(r.rows.find((x) => x.caller === FRONTEND && x.path === '/orders/1' && x.method === 'GET')?.allow, want)
    assert.equal(r.grants_source, 'system/console/grants')
    assert.deepEqual(r.unused.map((g) => g.path), ['/admin'])
    const csv = await get('/v1/console/access-review?format=csv')
    assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/)
    const lines = (await csv.text()).trim().split('\n')
    assert.equal(lines[0], 'kind,caller,path,method,allow,deny,first_seen,last_seen')
    assert.equal(lines.length, 1 + r.rows.length + r.unused.length)
    const html = await (await get('/v1/console/access-review?format=html')).text()
    assert.ok(html.startsWith('<!doctype html>'))
    assert.ok(!html.includes('<script'))
  })

  test('replay of an uploaded signed candidate gives the report; a badly signed or corrupt upload is 400 with the bundle code', async () => {
    const form = new FormData()
    form.append('bundle', new Blob([readFileSync(goodCandidate)]), 'candidate.tar.gz')
    // the service's own authz bundle as the candidate, over the traffic's path: nothing changes
    form.append('path', 'authz')
    const start = await fetch(`${url}/v1/console/replay`, { method: 'POST', headers: { ...front, 'x-portcullis-console': '1' }, body: form })
    assert.equal(start.status, 202)
    const { job } = await start.json() as { job: string }
    let v: { state: string, report?: { portcullis_replay: number, totals: { events: number, changed: number } } } = { state: 'running' }
    for (let k = 0; k < 200 && v.state === 'running'; k++) {
      await new Promise((r) => setTimeout(r, 25))
      v = await (await get(`/v1/console/replay/${job}`)).json() as typeof v
    }
    assert.equal(v.state, 'done')
    assert.equal(v.report?.portcullis_replay, 1)
    assert.equal(v.report?.totals.changed, 0)
    assert.equal(v.report?.totals.events, records.filter((x) => x.path === 'authz/allow').length)
    const badlySigned = new FormData()
    badlySigned.append('bundle', new Blob([readFileSync(badCandidate)]), 'bad.tar.gz')
    const r = await fetch(`${url}/v1/console/replay`, { method: 'POST', headers: { ...front, 'x-portcullis-console': '1' }, body: badlySigned })
    assert.equal(r.status, 400)
    assert.equal((await r.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID')
    const corrupt = new FormData()
    corrupt.append('bundle', new Blob([Buffer.from('not a gzip archive')]), 'bad.tar.gz')
    const c = await fetch(`${url}/v1/console/replay`, { method: 'POST', headers: { ...front, 'x-portcullis-console': '1' }, body: corrupt })
    assert.equal(c.status, 400)
    assert.equal((await c.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')
    const none = await fetch(`${url}/v1/console/replay`, { method: 'POST', headers: { ...front, 'x-portcullis-console': '1' }, body: new FormData() })
    assert.equal(none.status, 400)
    assert.equal((await none.json() as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_AUDIT_INVALID')
  })

  test('the UI files are served with CSP, nosniff and cache headers when built', async () => {
    const r = await get('/ui/')
    const dist = join(process.cwd(), 'ui', 'dist')
    let built = false
    try { built = readdirSync(dist).includes('index.html') } catch { built = false }
    if (!built) { assert.equal(r.status, 404); return }
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'/)
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff')
    assert.equal(r.headers.get('cache-control'), 'no-cache')
  })
})
