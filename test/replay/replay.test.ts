/**
 * portcullis replay end to end: a real server (config -> runtime, on loopback) with the durable
 * audit log on and verified JWT-SVID callers makes real decisions over HTTP against the policy
 * in service (test/fixtures/bundles/replay-current, compiled by the real opa); the CLI then
 * replays the audit directory against a candidate (replay-candidate) whose differences are
 * known: orders flips allow -> deny for the backend (and anonymous callers), admin flips
 * deny -> allow for the backend, quota's value changes, stable does not change. One decision's
 * input is erased by audit.erase (not replayable), one caller's credential is rejected (an
 * error event). The candidate is also built signed, and refused when the signature does not
 * verify with the configured key.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { main } from '../../src/cli/main.js'
import { EXIT_CHANGED } from '../../src/cli/replay.js'
import type { ReplayReport } from '../../src/replay/replay.js'
import { buildBundleDir, buildFixture, copyFixture } from '../helpers/bundles.js'
import { checkRequest, PERMISSION_DENIED, OK, startEnvoy, type EnvoyEnv } from '../envoy/support.js'
import { FRONTEND, verifiedCaller } from '../helpers/identity.js'
import { captureIo } from '../helpers/io.js'
import { startRuntime } from '../helpers/runtime.js'

const BACKEND = 'spiffe://example.org/ns/shop/sa/backend'
const ORDER = { service: 'orders', method: 'GET', path: '/orders/1' }

async function replayCli (args: string[]): Promise<{ code: number, out: string, err: string }> {
  const io = captureIo()
  const code = await main(['replay', ...args], io)
  return { code, out: io.out(), err: io.err() }
}

const byGroup = (r: ReplayReport): Record<string, Record<string, number>> => {
  const out: Record<string, Record<string, number>> = {}
  for (const g of r.groups) {
    out[`${g.path} ${g.caller}`] = Object.fromEntries(Object.entries(g.changes).filter(([, n]) => n > 0))
  }
  return out
}

describe('portcullis replay against a real audit log', () => {
  let work: string
  let auditDir: string
  let candidate: string
  let signedCandidate: string
  let goodConfig: string
  let wrongKeyConfig: string
  let close: () => Promise<void>
  let startedAt: Date
  const ids: Record<string, string[]> = {}

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-replay-'))
    const bundles = join(work, 'bundles')
    mkdirSync(bundles)
    buildFixture('replay-current', work, { out: join('bundles', 'replay.tar.gz'), revision: 'current' })
    candidate = buildFixture('replay-candidate', work, { out: 'candidate.tar.gz', revision: 'candidate' })
    // a signed candidate, and two serve configurations: the signer's key, and another key
    const signer = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const signingKey = join(work, 'signing.pem')
    writeFileSync(signingKey, signer.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    signedCandidate = buildFixture('replay-candidate', work, { out: 'candidate-signed.tar.gz', revision: 'candidate-signed', signingKey })
    const configWith = (pem: string, file: string): string => {
      writeFileSync(join(work, file), JSON.stringify({ bundles: { signing: { required: true, keys: { default: { key: pem, algorithm: 'RS256' } } } } }))
      return join(work, file)
    }
    goodConfig = configWith(signer.publicKey.export({ type: 'spki', format: 'pem' }) as string, 'good.json')
    wrongKeyConfig = configWith(other.publicKey.export({ type: 'spki', format: 'pem' }) as string, 'wrong.json')

    auditDir = join(work, 'audit')
    mkdirSync(auditDir)
    const { privateKeyPem } = generateCheckpointKey()
    writeFileSync(join(work, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
    const frontend = await verifiedCaller(FRONTEND)
    const backendToken = await frontend.issuer.sign(BACKEND, { expSeconds: 3600 })
    const server = await startRuntime({
      identity: frontend.config(),
      bundles: { dir: bundles },
      audit: {
        enabled: true,
        dir: auditDir,
        durability: 'sync',
        erase: ['/input/secret'],
        checkpoint: { every_events: 4, every_seconds: 3600, key_file: join(work, 'checkpoint.pem') },
      },
    } as Record<string, unknown>)
    close = server.close
    const headers: Record<string, Record<string, string>> = {
      frontend: frontend.headers,
      backend: { authorization: `Bearer ${backendToken}` },
      anonymous: {},
      forged: { authorization: 'Bearer not-a-token' },
    }
    startedAt = new Date()
    const decide = async (who: string, path: string, input: Record<string, unknown> = ORDER): Promise<void> => {
      const r = await fetch(`${server.url}/v1/data/replay/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers[who] }, body: JSON.stringify({ input }) })
      const body = await r.json() as { decision_id?: string }
      ;(ids[`${path} ${who}`] ??= []).push(body.decision_id as string)
    }
    for (let i = 0; i < 2; i++) await decide('frontend', 'orders') // unchanged allow
    for (let i = 0; i < 3; i++) await decide('backend', 'orders') // allow -> deny
    await decide('anonymous', 'orders') // allow -> deny (no identity)
    await decide('frontend', 'admin') // unchanged allow
    for (let i = 0; i < 2; i++) await decide('backend', 'admin') // deny -> allow
    await decide('frontend', 'quota') // {"limit":10} -> {"limit":20}
    for (let i = 0; i < 2; i++) await decide('backend', 'stable') // unchanged
    await decide('backend', 'orders', { ...ORDER, secret: 'hunter2' }) // input erased: not replayable
    await decide('forged', 'orders') // rejected credential: an error event
  })

  after(async () => {
    await close?.()
    rmSync(work, { recursive: true, force: true })
  })

  test('reports exactly the known changes, grouped by path and caller, with examples', async () => {
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--examples', '2'])
    assert.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out) as ReplayReport
    assert.equal(report.portcullis_replay, 1)
    assert.deepEqual(report.candidate.bundles, { candidate: { revision: 'candidate' } })
    assert.deepEqual(report.totals, { records_read: report.totals.records_read, events: 14, replayed: 12, unchanged: 5, changed: 7, not_replayable: 1, errors: 1, gaps: 0, gap_events: 0, unreadable: 0 })
    assert.deepEqual(report.changes, { allow_to_deny: 4, deny_to_allow: 2, result_changed: 1, undefined_to_defined: 0, defined_to_undefined: 0, to_error: 0 })
    assert.deepEqual(byGroup(report), {
      'replay/admin spiffe://example.org/ns/shop/sa/backend': { deny_to_allow: 2 },
      'replay/orders (anonymous)': { allow_to_deny: 1 },
      'replay/orders spiffe://example.org/ns/shop/sa/backend': { allow_to_deny: 3 },
      'replay/quota spiffe://example.org/ns/shop/sa/frontend': { result_changed: 1 },
    })
    const backendOrders = report.groups.find((g) => g.path === 'replay/orders' && g.caller === BACKEND)
    assert.equal(backendOrders?.examples.length, 2)
    assert.deepEqual(backendOrders?.examples.map((e) => e.decision_id), ids['orders backend']?.slice(0, 2))
    assert.deepEqual(backendOrders?.examples.map((e) => [e.old_result, e.new_result]), [[true, false], [true, false]])
    const quota = report.groups.find((g) => g.path === 'replay/quota')
    assert.deepEqual([quota?.examples[0]?.old_result, quota?.examples[0]?.new_result], [{ limit: 10 }, { limit: 20 }])
    assert.deepEqual(report.not_replayable, [{ path: 'replay/orders', caller: BACKEND, count: 1, reasons: { masked: 1, mask_error: 0 }, decision_ids: ids['orders backend']?.slice(3) }])
  })

  test('the policy in service replayed against itself changes nothing', async () => {
    const current = join(work, 'bundles', 'replay.tar.gz')
    const r = await replayCli(['--bundle', current, '--audit-dir', auditDir, '--format', 'json', '--fail-on-change'])
    assert.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out) as ReplayReport
    assert.equal(report.totals.changed, 0)
    assert.equal(report.totals.unchanged, 12)
    assert.deepEqual(report.groups, [])
  })

  test('--fail-on-change exits 3 when a decision would change', async () => {
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--fail-on-change'])
    assert.equal(r.code, EXIT_CHANGED)
    assert.match(r.out, /replay\/orders/)
  })

  test('filters: --path selects a path and what is below it; --from/--to select a time range', async () => {
    const orders = JSON.parse((await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--path', 'replay/orders'])).out) as ReplayReport
    assert.equal(orders.totals.events, 8)
    assert.deepEqual(Object.keys(byGroup(orders)).sort(), ['replay/orders (anonymous)', 'replay/orders spiffe://example.org/ns/shop/sa/backend'])
    assert.equal(orders.changes.deny_to_allow, 0)
    const later = new Date(Date.now() + 3600_000).toISOString()
    const none = JSON.parse((await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--from', later])).out) as ReplayReport
    assert.equal(none.totals.events, 0)
    const before = new Date(startedAt.getTime() - 60_000).toISOString()
    const early = JSON.parse((await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--to', before])).out) as ReplayReport
    assert.equal(early.totals.events, 0)
    const all = JSON.parse((await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--from', before, '--to', later])).out) as ReplayReport
    assert.equal(all.totals.events, 14)
    const bad = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--from', 'yesterday'])
    assert.equal(bad.code, 2)
    assert.match(bad.err, /^PORTCULLIS_AUDIT_INVALID:/)
  })

  test('a signed candidate loads with the configured key; a bad signature refuses the replay with the bundle error code', async () => {
    const ok = await replayCli(['--bundle', signedCandidate, '--audit-dir', auditDir, '--format', 'json', '--config', goodConfig])
    assert.equal(ok.code, 0, ok.err)
    assert.equal((JSON.parse(ok.out) as ReplayReport).totals.changed, 7)
    const wrong = await replayCli(['--bundle', signedCandidate, '--audit-dir', auditDir, '--config', wrongKeyConfig])
    assert.equal(wrong.code, 2)
    assert.match(wrong.err, /^PORTCULLIS_BUNDLE_SIGNATURE_INVALID:/)
    assert.equal(wrong.out, '')
    const unsigned = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--config', goodConfig])
    assert.equal(unsigned.code, 2)
    assert.match(unsigned.err, /^PORTCULLIS_BUNDLE_UNSIGNED:/)
  })

  test('HTML: one self-contained document, every value escaped', async () => {
    const out = join(work, 'report.html')
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'html', '--out', out])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '')
    const html = readFileSync(out, 'utf8')
    assert.match(html, /^<!doctype html>/)
    assert.match(html, /<\/html>\n$/)
    // no external assets: no script, no link, no src= or url(...)
    assert.doesNotMatch(html, /<script|<link|\bsrc=|url\(/i)
    // results are escaped JSON: {"limit":10} appears only as {&quot;limit&quot;:10}
    assert.match(html, /\{&quot;limit&quot;:10\}/)
    assert.doesNotMatch(html, /\{"limit":10\}/)
    for (const id of ids['orders backend']?.slice(0, 3) ?? []) assert.ok(html.includes(id))
    // balanced tables: every opened table is closed
    assert.equal(html.match(/<table>/g)?.length, html.match(/<\/table>/g)?.length)
  })

  test('the terminal table lists the changed groups and the not-replayable ones', async () => {
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir])
    assert.equal(r.code, 0, r.err)
    const lines = r.out.split('\n')
    const row = (path: string, caller: string, change: string): string | undefined => lines.find((l) => l.startsWith(path) && l.includes(caller) && l.includes(change))
    assert.match(row('replay/orders', BACKEND, 'allow → deny') ?? '', /\s3$/)
    assert.match(row('replay/admin', BACKEND, 'deny → allow') ?? '', /\s2$/)
    assert.match(row('replay/quota', FRONTEND, 'result changed') ?? '', /\s1$/)
    assert.ok(r.out.includes('Not replayable'))
    assert.equal(r.err, '') // not a terminal, no --progress: no progress lines
  })

  test('--progress reports records read on stderr', async () => {
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json', '--progress'])
    assert.equal(r.code, 0)
    assert.match(r.err, /^replay: \d+\/\d+ records read \(\d+\/s\)$/m)
  })

  test('usage errors: no bundle, no audit dir, unknown format', async () => {
    assert.equal((await replayCli(['--audit-dir', auditDir])).code, 2)
    assert.equal((await replayCli(['--bundle', candidate])).code, 2)
    assert.equal((await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'xml'])).code, 2)
  })
})

describe('portcullis replay of Envoy ext_authz decisions: the Envoy verdict rule', () => {
  let work: string
  let auditDir: string
  let candidate: string
  let env: EnvoyEnv

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-replay-envoy-'))
    const bundles = join(work, 'bundles')
    mkdirSync(bundles)
    buildFixture('envoy', work, { out: join('bundles', 'envoy.tar.gz'), revision: 'envoy-current' })
    // the candidate: a plain deny ({"allowed": false}) becomes an allow
    const src = copyFixture('envoy', work)
    const rego = join(src, 'envoy', 'authz', 'policy.rego')
    const text = readFileSync(rego, 'utf8')
    const changed = text.replace('} else := {"allowed": false} if {\n\tinput.parsed_path[0] == "plaindeny"', '} else := {"allowed": true} if {\n\tinput.parsed_path[0] == "plaindeny"')
    assert.notEqual(changed, text)
    writeFileSync(rego, changed)
    candidate = buildBundleDir(src, join(work, 'candidate.tar.gz'), { revision: 'envoy-candidate' })
    auditDir = join(work, 'audit')
    mkdirSync(auditDir)
    const { privateKeyPem } = generateCheckpointKey()
    writeFileSync(join(work, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
    env = await startEnvoy(bundles, { audit: { enabled: true, dir: auditDir, durability: 'sync', checkpoint: { every_events: 4, every_seconds: 3600, key_file: join(work, 'checkpoint.pem') } } })
    assert.equal((await env.check(checkRequest('/plaindeny'))).status?.code, PERMISSION_DENIED)
    assert.equal((await env.check(checkRequest('/plaindeny'))).status?.code, PERMISSION_DENIED)
    assert.equal((await env.check(checkRequest('/bool'))).status?.code, OK)
    // the default audit.erase removes the authorization header from the stored input: not replayable
    assert.equal((await env.check(checkRequest('/plaindeny', { headers: { ':path': '/plaindeny', 'host': 'shop.example', 'authorization': 'Bearer x' } }))).status?.code, PERMISSION_DENIED)
    // a malformed result is an error event: counted, not replayed
    await assert.rejects(env.check(checkRequest('/malformed')), (err: { code?: number }) => err.code === 13)
  })

  after(async () => {
    await env?.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('deny -> allow read with the Envoy rule; erased inputs not replayable; error events counted', async () => {
    const r = await replayCli(['--bundle', candidate, '--audit-dir', auditDir, '--format', 'json'])
    assert.equal(r.code, 0, r.err)
    const report = JSON.parse(r.out) as ReplayReport
    assert.equal(report.totals.events, 5)
    assert.equal(report.totals.errors, 1)
    assert.equal(report.totals.not_replayable, 1)
    assert.equal(report.totals.replayed, 3)
    assert.equal(report.totals.unchanged, 1)
    assert.deepEqual(byGroup(report), { 'envoy/authz/allow (anonymous)': { deny_to_allow: 2 } })
    assert.deepEqual(report.groups[0]?.examples[0]?.old_result, { allowed: false })
    assert.deepEqual(report.groups[0]?.examples[0]?.new_result, { allowed: true })
    assert.equal(report.not_replayable[0]?.reasons.masked, 1)
  })
})
