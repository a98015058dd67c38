/**
 * Bundles from a bundle server (src/bundles/service/), end to end: a real nginx serving real
 * `opa build` bundles with ETags, a real Portcullis runtime configured with OPA's own keys
 * (services, bundles.<name>, persistence_directory) from a YAML file, decisions asked over HTTP.
 * Polls are started with `trigger()` instead of waiting for the 60–120 s polling delay, so
 * nothing here depends on timing.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/load.js'
import { createRuntime, type Runtime } from '../../src/server/runtime.js'
import type { BundleDownloader } from '../../src/bundles/service/index.js'
import { buildBundleDir, copyFixture } from '../helpers/bundles.js'
import { startNginx, type Nginx } from '../helpers/nginx.js'
import { tarGz } from '../helpers/tar.js'
import { makeCa, makeServerCert, write } from '../identity/support/pki.js'
import { waitFor } from '../helpers/wait.js'

let work: string
const built: Record<string, string> = {}
let pubPem: string

before(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-bsvc-'))
  const src = copyFixture('basic', work)
  built.rev1 = buildBundleDir(src, join(work, 'rev1.tar.gz'), { revision: 'rev-1' })
  writeFileSync(join(src, 'basic', 'data.json'), JSON.stringify({ admins: ['alice', 'bob', 'carol'], flag: true }))
  built.rev2 = buildBundleDir(src, join(work, 'rev2.tar.gz'), { revision: 'rev-2' })
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  pubPem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  writeFileSync(join(work, 'signing.key'), key.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  writeFileSync(join(work, 'other.key'), other.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  built.signed = buildBundleDir(src, join(work, 'signed.tar.gz'), { revision: 'rev-signed', signingKey: join(work, 'signing.key'), signingAlg: 'ES256', keyId: 'release' })
  built.signedByOther = buildBundleDir(src, join(work, 'signed-other.tar.gz'), { revision: 'rev-forged', signingKey: join(work, 'other.key'), signingAlg: 'ES256', keyId: 'release' })
})

after(() => { rmSync(work, { recursive: true, force: true }) })

interface Setup { nginx: Nginx, runtime: Runtime, url: string, dir: string, close: () => Promise<void> }

/** YAML config in OPA's shape (plus Portcullis's server/logging keys); returns a started runtime. */
async function setup (t: { after: (fn: () => Promise<void>) => void }, opts: {
  resource?: string
  bundle?: string
  extraBundle?: string
  extraService?: string
  nginx?: Nginx
  dir?: string
  bearerToken?: string
  startNginx?: boolean
  serviceUrl?: string
  /** The bundles directory (default: one that does not exist) and more Portcullis bundles settings. */
  bundlesDir?: string
  bundlesSettings?: string
} = {}): Promise<Setup> {
  const dir = opts.dir ?? mkdtempSync(join(work, 'case-'))
  const nginx = opts.nginx ?? await startNginx(dir, opts.bearerToken !== undefined ? { bearerToken: opts.bearerToken } : {})
  if (opts.bundle !== undefined) copyFileSync(opts.bundle, join(nginx.root, 'authz.tar.gz'))
  if (opts.startNginx === false) await nginx.stop()
  const yaml = `
server: { addr: "127.0.0.1:0", workers: 1 }
logging: { level: silent }
persistence_directory: ${JSON.stringify(join(dir, 'persist'))}
services:
  - name: acmecorp
    url: ${opts.serviceUrl ?? nginx.url}
${opts.extraService ?? ''}
bundles:
  dir: ${JSON.stringify(opts.bundlesDir ?? join(dir, 'no-such-dir'))}
${opts.bundlesSettings ?? ''}
  authz:
    service: acmecorp
    resource: ${opts.resource ?? 'bundles/authz.tar.gz'}
${opts.extraBundle ?? ''}
`
  const file = join(dir, 'portcullis.yaml')
  writeFileSync(file, yaml)
  const config = loadConfig({ file, env: {} })
  const runtime = await createRuntime(config, {}, { logger: pino({ level: 'silent' }) })
  const url = await runtime.start()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await runtime.stop()
    if (opts.nginx === undefined) await nginx.stop()
  }
  t.after(close)
  return { nginx, runtime, url, dir, close }
}

let mtime = Math.floor(Date.now() / 1000)
/**
 * Puts `bytes` where nginx serves the bundle. nginx's ETag is mtime (seconds) and size, so two
 * bundles of one size written in the same second would share an ETag: each write gets its own
 * modification time, as a deployment pipeline's writes seconds apart would.
 */
function serve (s: Setup, bytes: Buffer): void {
  const file = join(s.nginx.root, 'authz.tar.gz')
  writeFileSync(file, bytes)
  mtime += 10
  utimesSync(file, mtime, mtime)
}

function downloader (s: Setup): BundleDownloader {
  const d = s.runtime.bundleService?.downloaders.get('authz')
  assert.ok(d !== undefined)
  return d
}

async function allow (s: Setup, user: string): Promise<unknown> {
  const res = await fetch(`${s.url}/v1/data/basic/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { user } }) })
  assert.equal(res.status, 200)
  return ((await res.json()) as { result?: unknown }).result
}

async function bundleStatus (s: Setup): Promise<Record<string, unknown>> {
  const res = await fetch(`${s.url}/v1/status`)
  assert.equal(res.status, 200)
  const body = await res.json() as { result: { bundles: Array<Record<string, unknown>> } }
  const b = body.result.bundles.find((x) => x.name === 'authz')
  assert.ok(b !== undefined, 'authz bundle in /v1/status')
  return b
}

async function healthBundles (s: Setup): Promise<number> {
  return (await fetch(`${s.url}/health?bundles`)).status
}

async function metric (s: Setup, name: string): Promise<string> {
  return await s.runtime.metrics.registry.getSingleMetricAsString(name)
}

async function firstActivation (s: Setup): Promise<void> {
  await waitFor(() => s.runtime.manager.statusOf('authz')?.active_revision !== undefined || s.runtime.manager.statusOf('authz')?.last_error !== undefined, 'first poll')
}

describe('bundles from nginx (OPA bundle service protocol)', () => {
  test('first download activates; unchanged answers 304 and keeps the bundle; a replaced file is activated', async (t) => {
    const s = await setup(t, { bundle: built.rev1 })
    await firstActivation(s)
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await allow(s, 'alice'), true)
    assert.equal(await allow(s, 'carol'), false)
    assert.equal(await healthBundles(s), 200)
    const st = await bundleStatus(s)
    assert.equal(st.type, 'remote')
    assert.equal(st.service, 'acmecorp')
    assert.equal(st.state, 'OK')
    assert.equal(st.loaded_from, 'download')
    assert.equal(typeof st.etag, 'string')
    for (const k of ['last_request', 'last_successful_request', 'last_successful_download']) assert.equal(typeof st[k], 'string', k)

    // Unchanged: nginx answers If-None-Match with 304 and the bundle stays.
    assert.equal(await downloader(s).trigger(), 'not_modified')
    // nginx appends a request's log line after it has sent the response: wait for the line
    await waitFor(() => s.nginx.accessLog().at(-1)?.status === 304, 'nginx to log the 304')
    const log = s.nginx.accessLog()
    assert.equal(log[0]?.status, 200)
    assert.equal(log[0]?.ifNoneMatch, '')
    assert.equal(log[0]?.prefer, 'modes=snapshot')
    const last = log[log.length - 1]
    assert.equal(last?.status, 304)
    assert.equal(last?.ifNoneMatch, st.etag)
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.match(await metric(s, 'portcullis_bundle_downloads_total'), /bundle="authz",outcome="not_modified"\} 1/)
    assert.match(await metric(s, 'portcullis_bundle_downloads_total'), /bundle="authz",outcome="downloaded"\} 1/)
    assert.match(await metric(s, 'portcullis_bundle_last_success_timestamp_seconds'), /bundle="authz"\} \d/)
    assert.match(await metric(s, 'portcullis_bundle_download_duration_seconds'), /_count\{bundle="authz",outcome="downloaded"\} 1/)

    // Replaced: a new ETag, a 200, the new revision answers.
    serve(s, readFileSync(built.rev2 as string))
    assert.equal(await downloader(s).trigger(), 'downloaded')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-2')
    assert.equal(await allow(s, 'carol'), true)
    assert.notEqual((await bundleStatus(s)).etag, st.etag)
  })

  test('the server going away keeps the active bundle and reports the error; it recovers when the server is back', async (t) => {
    const s = await setup(t, { bundle: built.rev1 })
    await firstActivation(s)
    await s.nginx.stop()
    assert.equal(await downloader(s).trigger(), 'failed')
    const st = await bundleStatus(s)
    assert.equal(st.state, 'ERROR')
    assert.equal((st.last_error as { code: string }).code, 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED')
    assert.equal(st.active_revision, 'rev-1')
    assert.equal(await allow(s, 'alice'), true)
    assert.equal(await healthBundles(s), 200, 'activated once: OPA stays ready')
    assert.match(await metric(s, 'portcullis_bundle_downloads_total'), /outcome="failed"\} [1-9]/)

    await s.nginx.restart()
    assert.equal(await downloader(s).trigger(), 'not_modified')
    const back = await bundleStatus(s)
    assert.equal(back.state, 'OK')
    assert.equal(back.last_error, undefined)
  })

  test('a corrupt download (truncated gzip, hostile tar) keeps the active bundle with the archive code', async (t) => {
    const s = await setup(t, { bundle: built.rev1 })
    await firstActivation(s)
    const etag = s.runtime.manager.statusOf('authz')?.etag
    const good = readFileSync(built.rev2 as string)
    serve(s, good.subarray(0, Math.floor(good.length / 2)))
    assert.equal(await downloader(s).trigger(), 'rejected')
    assert.equal(s.runtime.manager.statusOf('authz')?.last_error?.code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')

    serve(s, await tarGz([{ name: '.manifest', content: '{"roots":["basic"]}' }, { name: '../../etc/evil', content: 'x' }]))
    assert.equal(await downloader(s).trigger(), 'rejected')
    assert.equal(s.runtime.manager.statusOf('authz')?.last_error?.code, 'PORTCULLIS_BUNDLE_UNSAFE_PATH')
    assert.equal(await allow(s, 'alice'), true)
    assert.equal(await allow(s, 'carol'), false)
    // After a failure the next request names the active bundle's ETag (OPA resets to it).
    await waitFor(() => s.nginx.accessLog().at(-1)?.ifNoneMatch === etag, 'nginx to log the request after the failure')
    const log = s.nginx.accessLog()
    assert.equal(log[log.length - 1]?.ifNoneMatch, etag)
    assert.match(await metric(s, 'portcullis_bundle_downloads_total'), /outcome="rejected"\} [2-9]/)

    // Backing off after the failures, the downloader may fetch the good file before the trigger.
    serve(s, readFileSync(built.rev2 as string))
    await downloader(s).trigger()
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-2')
    assert.equal(await allow(s, 'carol'), true)
  })

  test('signing: a signed bundle verifies with signing.keyid; a bad signature or no signature keeps the active bundle', async (t) => {
    const s = await setup(t, {
      bundle: built.signed,
      extraBundle: '    signing: { keyid: release }\nkeys:\n  release:\n    algorithm: ES256\n    key: |\n' + pubPem.trim().split('\n').map((l) => `      ${l}`).join('\n'),
    })
    await firstActivation(s)
    const st = s.runtime.manager.statusOf('authz')
    assert.equal(st?.active_revision, 'rev-signed')
    assert.equal(st?.signature?.state, 'verified')

    const lastDownload = s.runtime.manager.statusOf('authz')?.last_successful_download
    const lastSuccess = await metric(s, 'portcullis_bundle_last_success_timestamp_seconds')
    assert.equal(typeof lastDownload, 'string')
    serve(s, readFileSync(built.signedByOther as string))
    assert.equal(await downloader(s).trigger(), 'rejected')
    assert.equal(s.runtime.manager.statusOf('authz')?.last_error?.code, 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-signed')
    // Regression: a refused download advanced the success markers monitoring alerts on.
    assert.equal(s.runtime.manager.statusOf('authz')?.last_successful_download, lastDownload)
    assert.equal(await metric(s, 'portcullis_bundle_last_success_timestamp_seconds'), lastSuccess)

    serve(s, readFileSync(built.rev2 as string))
    assert.equal(await downloader(s).trigger(), 'rejected')
    assert.equal(s.runtime.manager.statusOf('authz')?.last_error?.code, 'PORTCULLIS_BUNDLE_UNSIGNED')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-signed')
    assert.equal(await allow(s, 'alice'), true)
  })

  test('bearer token_path is read again for every request: a rotated token is used at the next poll', async (t) => {
    const dir = mkdtempSync(join(work, 'case-'))
    const tokenFile = join(dir, 'token')
    writeFileSync(tokenFile, 'expired-token\n')
    const s = await setup(t, {
      dir,
      bearerToken: 'rotated-token',
      bundle: built.rev1,
      resource: 'private/authz.tar.gz',
      extraService: `    credentials: { bearer: { token_path: ${JSON.stringify(tokenFile)} } }`,
    })
    await firstActivation(s)
    const st = s.runtime.manager.statusOf('authz')
    assert.equal(st?.last_error?.code, 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED')
    assert.equal(st?.active_revision, undefined)
    assert.equal(await healthBundles(s), 500)

    writeFileSync(tokenFile, 'rotated-token\n')
    assert.equal(await downloader(s).trigger(), 'downloaded')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await healthBundles(s), 200)
    await waitFor(() => s.nginx.accessLog().at(-1)?.status === 200, 'nginx to log the download')
    const auth = s.nginx.accessLog().map((l) => `${l.status} ${l.authorization}`)
    assert.deepEqual([auth[0], auth[auth.length - 1]], ['401 Bearer expired-token', '200 Bearer rotated-token'])
  })

  test('readiness waits for the first activation', async (t) => {
    const s = await setup(t, { bundle: built.rev1, startNginx: false })
    await firstActivation(s)
    assert.equal(await healthBundles(s), 500)
    assert.equal((await fetch(`${s.url}/health/ready`)).status, 503)
    assert.equal(s.runtime.manager.statusOf('authz')?.state, 'ERROR')
    await s.nginx.restart()
    // The downloader is backing off from 100 ms and may get there first; either way it activates.
    await downloader(s).trigger()
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await healthBundles(s), 200)
    assert.equal((await fetch(`${s.url}/health/ready`)).status, 200)
  })

  test('persist: the last good download is loaded at start with the server down; a corrupt copy is refused', async (t) => {
    const dir = mkdtempSync(join(work, 'case-'))
    const persistExtra = '    persist: true'
    const first = await setup(t, { dir, bundle: built.rev1, extraBundle: persistExtra })
    await firstActivation(first)
    const etag = first.runtime.manager.statusOf('authz')?.etag
    const saved = join(dir, 'persist', 'bundles', 'authz', 'bundle.tar.gz')
    await waitFor(() => existsSync(join(dir, 'persist', 'bundles', 'authz', 'etag.json')), 'the download persisted')
    assert.deepEqual(readFileSync(saved), readFileSync(built.rev1 as string))
    await first.close()

    // Server down: the persisted bundle serves, the download error is reported.
    const down = await setup(t, { dir, extraBundle: persistExtra, startNginx: false })
    await waitFor(() => down.runtime.manager.statusOf('authz')?.last_error !== undefined, 'first poll against a stopped server')
    assert.equal(await healthBundles(down), 200)
    assert.equal(await allow(down, 'alice'), true)
    const st = await bundleStatus(down)
    assert.equal(st.loaded_from, 'persisted')
    assert.equal(st.active_revision, 'rev-1')
    assert.equal((st.last_error as { code: string }).code, 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED')
    // Back up: the persisted ETag makes the first request a 304.
    await down.nginx.restart()
    assert.equal(await downloader(down).trigger(), 'not_modified')
    await waitFor(() => down.nginx.accessLog().at(-1)?.ifNoneMatch === etag, 'nginx to log the 304')
    const log = down.nginx.accessLog()
    assert.equal(log[log.length - 1]?.ifNoneMatch, etag)
    await down.close()

    // A corrupt persisted file is refused and reported, never activated.
    writeFileSync(saved, readFileSync(saved).subarray(0, 100))
    const corrupt = await setup(t, { dir, extraBundle: persistExtra, startNginx: false })
    await waitFor(() => corrupt.runtime.manager.statusOf('authz')?.last_error?.code === 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED', 'first poll')
    assert.equal(corrupt.runtime.manager.statusOf('authz')?.active_revision, undefined)
    assert.equal(await healthBundles(corrupt), 500)
    assert.equal(corrupt.runtime.manager.snapshot.bundles.size, 0)
    assert.match(await metric(corrupt, 'portcullis_bundle_activation_failures_total'), /code="PORTCULLIS_BUNDLE_ARCHIVE_INVALID"\} 1/)
  })

  // Regression: a file in the bundles directory named like a remote bundle replaced it, and
  // removing the file unloaded the remote bundle.
  test('a bundle name belongs to one source: a directory file named like a remote bundle is refused and cannot remove it', async (t) => {
    const dir = mkdtempSync(join(work, 'case-'))
    const bundlesDir = join(dir, 'bundles')
    mkdirSync(bundlesDir)
    copyFileSync(built.rev2 as string, join(bundlesDir, 'authz.tar.gz'))
    const s = await setup(t, { dir, bundle: built.rev1, bundlesDir, bundlesSettings: '  watch: true\n  debounce_ms: 20\n  stability_ms: 20' })
    // The refused file sets last_error before the first download: wait for the activation itself.
    await waitFor(() => s.runtime.manager.statusOf('authz')?.active_revision !== undefined, 'first download')
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(s.runtime.manager.statusOf('authz')?.type, 'remote')
    assert.equal(await allow(s, 'carol'), false, 'the file (rev-2) did not replace the remote bundle')
    assert.match(await metric(s, 'portcullis_bundle_activation_failures_total'), /bundle="authz",code="PORTCULLIS_BUNDLE_NAME_CONFLICT"\} 1/)

    // The watcher: a changed file is refused again (logged, counted, in the status).
    copyFileSync(built.rev2 as string, join(bundlesDir, 'authz.tar.gz'))
    await waitFor(() => s.runtime.manager.statusOf('authz')?.last_error?.code === 'PORTCULLIS_BUNDLE_NAME_CONFLICT', 'the changed file refused')
    assert.match(await metric(s, 'portcullis_bundle_activation_failures_total'), /bundle="authz",code="PORTCULLIS_BUNDLE_NAME_CONFLICT"\} 2/)
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await allow(s, 'carol'), false)

    // Removing the file does not unload the remote bundle.
    rmSync(join(bundlesDir, 'authz.tar.gz'))
    assert.equal(await s.runtime.manager.remove('authz'), false)
    await s.runtime.manager.settled()
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await allow(s, 'alice'), true)
    // The remote bundle itself still updates.
    serve(s, readFileSync(built.rev2 as string))
    assert.equal(await downloader(s).trigger(), 'downloaded')
    assert.equal(await allow(s, 'carol'), true)
  })

  test('HTTPS with tls.ca_cert and client TLS: the client certificate is presented and required', async (t) => {
    const dir = mkdtempSync(join(work, 'case-'))
    const ca = await makeCa({ name: 'bundle server CA' })
    const server = await makeServerCert(ca)
    const client = await makeServerCert(ca)
    const caFile = write(dir, 'ca.pem', ca.pem)
    const nginx = await startNginx(dir, { tls: { cert: write(dir, 'server.pem', server.cert), key: write(dir, 'server.key', server.key), clientCa: caFile } })
    t.after(async () => { await nginx.stop() })
    copyFileSync(built.rev1 as string, join(nginx.root, 'authz.tar.gz'))
    const s = await setup(t, {
      dir,
      nginx,
      serviceUrl: nginx.httpsUrl as string,
      resource: 'mtls/authz.tar.gz',
      extraService: `    tls: { ca_cert: ${JSON.stringify(caFile)} }\n    credentials: { client_tls: { cert: ${JSON.stringify(write(dir, 'client.pem', client.cert))}, private_key: ${JSON.stringify(write(dir, 'client.key', client.key))} } }`,
    })
    await firstActivation(s)
    assert.equal(s.runtime.manager.statusOf('authz')?.active_revision, 'rev-1')
    assert.equal(await allow(s, 'alice'), true)
    assert.equal(s.nginx.accessLog()[0]?.status, 200)
  })

  test('HTTPS: a server certificate that does not chain to tls.ca_cert is a download failure', async (t) => {
    const dir = mkdtempSync(join(work, 'case-'))
    const ca = await makeCa({ name: 'bundle server CA' })
    const otherCa = await makeCa({ name: 'some other CA' })
    const server = await makeServerCert(ca)
    const nginx = await startNginx(dir, { tls: { cert: write(dir, 'server.pem', server.cert), key: write(dir, 'server.key', server.key) } })
    t.after(async () => { await nginx.stop() })
    copyFileSync(built.rev1 as string, join(nginx.root, 'authz.tar.gz'))
    const s = await setup(t, {
      dir,
      nginx,
      serviceUrl: nginx.httpsUrl as string,
      extraService: `    tls: { ca_cert: ${JSON.stringify(write(dir, 'other-ca.pem', otherCa.pem))} }`,
    })
    await firstActivation(s)
    const st = s.runtime.manager.statusOf('authz')
    assert.equal(st?.last_error?.code, 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED')
    assert.equal(st?.active_revision, undefined)
    assert.deepEqual(s.nginx.accessLog(), [], 'no request got through the TLS handshake')
  })
})
