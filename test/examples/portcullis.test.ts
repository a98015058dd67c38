/**
 * The README quick start, end to end: the runtime started from examples/portcullis.yaml (and
 * examples/portcullis-mtls.yaml) on 127.0.0.1 with an ephemeral port, one process, the
 * committed bundles, and credentials issued by `portcullis identity issue --demo`.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpsRequest } from 'node:https'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { DEMO_FILES, demoTrustDomainDir, identityIssueCommand } from '../../src/cli/identity-issue.js'
import { loadConfig } from '../../src/config/load.js'
import { issueJwtSvid, loadJwtSigningKey } from '../../src/identity/issue.js'
import { createRuntime, type Runtime } from '../../src/server/runtime.js'
import { bundlesCopy } from '../helpers/runtime.js'
import { captureIo } from '../helpers/io.js'
import { makeCa, KU, privateKeyPem } from '../identity/support/pki.js'

const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'
const REPORTS = 'spiffe://example.org/ns/shop/sa/reports'
const order = { service: 'orders', method: 'GET', path: '/orders/42' }

async function start (file: string): Promise<{ runtime: Runtime, url: string }> {
  const config = loadConfig({
    file,
    env: {},
    overrides: { server: { addr: '127.0.0.1:0', workers: 1 }, bundles: { dir: bundlesCopy(), watch: false }, logging: { level: 'silent' } },
  })
  const runtime = await createRuntime(config, {}, { logger: pino({ level: 'silent' }) })
  return { runtime, url: await runtime.start() }
}

async function issue (args: string[]): Promise<string> {
  const io = captureIo()
  assert.equal(await identityIssueCommand.run(['--demo', ...args], io), 0, io.err())
  return io.out().trim()
}

async function decide (url: string, path: string, body: unknown, token?: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/data/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

describe('npm start (examples/portcullis.yaml) verifies identities', () => {
  let runtime: Runtime
  let url: string
  before(async () => { ({ runtime, url } = await start('examples/portcullis.yaml')) })
  after(async () => { await runtime.stop() })

  test('a demo JWT-SVID of an allowed caller is allowed, another demo identity is denied', async () => {
    const frontend = await issue(['--jwt', '--spiffe-id', FRONTEND])
    const reports = await issue(['--jwt', '--spiffe-id', REPORTS])
    assert.deepEqual((await decide(url, 'authz/allow', { input: order }, frontend)).body.result, true)
    assert.deepEqual((await decide(url, 'authz/allow', { input: order }, reports)).body.result, false)
  })

  test('a forged input.identity is not believed: without a credential 401, with one the verified identity wins', async () => {
    const forged = { input: { ...order, identity: { spiffe_id: FRONTEND } } }
    const anon = await decide(url, 'authz/allow', forged)
    assert.equal(anon.status, 401)
    assert.equal(anon.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
    const reports = await issue(['--jwt', '--spiffe-id', REPORTS])
    const d = await decide(url, 'authz/decision', forged, reports)
    assert.equal(d.status, 200)
    assert.equal((d.body.result as { allow: boolean }).allow, false)
  })

  test('expired, foreign-audience and unsigned-by-the-demo tokens are rejected', async () => {
    const key = await loadJwtSigningKey(readFileSync(join(demoTrustDomainDir(), DEMO_FILES.jwtKey), 'utf8'))
    const expired = await issueJwtSvid(key, FRONTEND, { audience: ['portcullis'], ttlSeconds: 60, now: new Date(Date.now() - 10 * 60_000) })
    const r = await decide(url, 'authz/allow', { input: order }, expired.token)
    assert.equal(r.status, 401)
    assert.equal(r.body.portcullis_code, 'PORTCULLIS_IDENTITY_EXPIRED')
    const elsewhere = await issue(['--jwt', '--spiffe-id', FRONTEND, '--audience', 'orders'])
    assert.equal((await decide(url, 'authz/allow', { input: order }, elsewhere)).body.portcullis_code, 'PORTCULLIS_IDENTITY_AUDIENCE')
    const [h, p] = (await issue(['--jwt', '--spiffe-id', REPORTS])).split('.')
    const [,, s] = (await issue(['--jwt', '--spiffe-id', FRONTEND])).split('.')
    assert.equal((await decide(url, 'authz/allow', { input: order }, `${h}.${p}.${s}`)).body.portcullis_code, 'PORTCULLIS_IDENTITY_SIGNATURE')
  })
})

describe('examples/portcullis-mtls.yaml requires a verified X.509-SVID', () => {
  let runtime: Runtime
  let url: string
  let dir: string
  const ca = readFileSync(join(demoTrustDomainDir(), DEMO_FILES.caCert), 'utf8')
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-example-mtls-'))
    ;({ runtime, url } = await start('examples/portcullis-mtls.yaml'))
  })
  after(async () => {
    await runtime.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const call = (cert?: { cert: string, key: string }): Promise<{ status: number, body: Record<string, unknown> }> => new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v1/data/authz/allow`, { method: 'POST', ca, ...(cert ?? {}), agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }) })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ input: order }))
  })

  test('a demo X.509-SVID is verified; a self-signed look-alike and no certificate are refused', async () => {
    const files = { cert: join(dir, 'frontend.pem'), key: join(dir, 'frontend.key') }
    await issue(['--x509', '--spiffe-id', FRONTEND, '--out-cert', files.cert, '--out-key', files.key])
    const ok = await call({ cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') })
    assert.equal(ok.body.result, true)
    const now = Date.now()
    const forged = await makeCa({ name: 'forged', uri: FRONTEND, ca: false, keyUsage: KU.digitalSignature, notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) })
    const refused = await call({ cert: forged.pem, key: await privateKeyPem(forged) })
    assert.equal(refused.status, 401)
    assert.equal(refused.body.portcullis_code, 'PORTCULLIS_IDENTITY_UNTRUSTED')
    const none = await call()
    assert.equal(none.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })
})
