/**
 * Console hardening over the wire (src/server/routes/console.ts, plugins/host-check.ts):
 *
 *   - DNS rebinding: every console route (pages, assets, every API call, reads included)
 *     refuses a request whose Host is not this server's (421 PORTCULLIS_HOST_REJECTED),
 *     counted and logged; the server's own names and admin.allowed_hosts are answered. On a
 *     loopback connection the admin guard's routes (/v1/status, /v1/audit/*) check it too.
 *   - The replay slot is claimed before the upload's body is read: a second upload is refused
 *     with 409 PORTCULLIS_CONSOLE_BUSY from its headers alone, and the slot is released on every
 *     path that does not start a job (a client abort, a bundle too large, a bad candidate).
 *
 * A real runtime on loopback (the console-system policy admits only the frontend workload,
 * built by the real opa), real JWT-SVID callers, raw node:http requests (fetch cannot send a
 * foreign Host). The job registry is the real LocalJobRegistry, wrapped only to let the test
 * wait until the server has claimed the slot (a claim is invisible from the wire until then).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { LocalJobRegistry, type JobRegistry, type JobView } from '../../src/console/jobs.js'
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js'
import { createRuntime, type Runtime } from '../../src/server/runtime.js'
import { buildBundleDir } from '../helpers/bundles.js'
import { consoleSetting } from '../helpers/console.js'
import { FRONTEND, verifiedCaller } from '../helpers/identity.js'
import { metricValue } from '../helpers/audit.js'

interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

/** Bounds a wait (not a timing assertion: a hang before the fix must fail, not stall the suite). */
async function within<T> (p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`gave up waiting: ${what}`)), ms) })
  try { return await Promise.race([p, t]) } finally { clearTimeout(timer) }
}

/** A registry that is the real one, and tells the test when a claim or a release happened. */
class WatchedRegistry implements JobRegistry {
  readonly inner = new LocalJobRegistry()
  #waiters: Array<{ test: (e: { op: string, view?: JobView, ok?: boolean }) => boolean, resolve: () => void }> = []

  #note (e: { op: string, view?: JobView, ok?: boolean }): void {
    this.#waiters = this.#waiters.filter((w) => { if (w.test(e)) { w.resolve(); return false } return true })
  }

  /** Resolves on the next event `test` accepts. */
  next (test: (e: { op: string, view?: JobView, ok?: boolean }) => boolean): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ test, resolve }))
  }

  /** A pause before each claim reaches the real registry: a worker's round trip to the primary. */
  claimDelayMs = 0

  async claim (kind: string, id: string, view: JobView): Promise<{ ok: true } | { ok: false, running: string }> {
    if (this.claimDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.claimDelayMs))
    const r = await this.inner.claim(kind, id, view)
    this.#note({ op: `claim:${kind}`, view, ok: r.ok })
    return r
  }

  update (kind: string, id: string, view: JobView): void {
    this.inner.update(kind, id, view)
    this.#note({ op: `update:${kind}`, view })
  }

  async get (kind: string, id: string): Promise<JobView | undefined> {
    return await this.inner.get(kind, id)
  }
}

describe('console hardening over the wire', () => {
  let work: string
  let runtime: Runtime
  let port: number
  let front: Record<string, string>
  let candidate: Buffer
  const registry = new WatchedRegistry()
  const logLines: Array<Record<string, unknown>> = []
  const MAX_BUNDLE = 2 * 1024 * 1024

  /** One request on a fresh connection with exactly these headers (Host included). */
  function send (method: string, path: string, headers: Record<string, string | number>, body?: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...headers }, setHost: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('error', reject)
      req.end(body)
    })
  }
  const codeOf = (a: Answer): string => (JSON.parse(a.body) as { portcullis_code: string }).portcullis_code
  const here = (): string => `127.0.0.1:${port}`

  function multipart (file: Buffer, fields: Record<string, string> = {}): { body: Buffer, type: string } {
    const boundary = `----portcullis${randomBytes(8).toString('hex')}`
    const parts: Buffer[] = []
    for (const [k, v] of Object.entries(fields)) parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`))
    parts.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="bundle"; filename="candidate.tar.gz"\r\ncontent-type: application/gzip\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`))
    return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` }
  }

  const uploadHeaders = (type: string, length: number): Record<string, string | number> => ({ host: here(), ...front, 'x-portcullis-console': '1', 'content-type': type, 'content-length': length })

  async function upload (file: Buffer): Promise<Answer> {
    const m = multipart(file, { path: 'authz' })
    return await send('POST', '/v1/console/replay', uploadHeaders(m.type, m.body.length), m.body)
  }

  async function jobDone (id: string): Promise<string> {
    let state = 'running'
    for (let i = 0; i < 400 && state === 'running'; i++) {
      const v = await send('GET', `/v1/console/replay/${id}`, { host: here(), ...front })
      assert.equal(v.status, 200)
      state = (JSON.parse(v.body) as { state: string }).state
      if (state === 'running') await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return state
  }

  before(async () => {
    const setting = consoleSetting('portcullis-console-hardening-')
    work = setting.work
    const bundles = setting.bundles
    candidate = readFileSync(buildBundleDir(setting.candidateSrc, join(work, 'candidate.tar.gz'), { revision: 'candidate' }))
    const caller = await verifiedCaller(FRONTEND)
    front = caller.headers
    const config = loadConfig({
      env: {},
      overrides: {
        server: { addr: '127.0.0.1:0', workers: 1 },
        bundles: { dir: bundles, watch: false, max_bytes: MAX_BUNDLE },
        logging: { level: 'warn' },
        identity: caller.config(),
        admin: { allowed_hosts: ['console.example.org', 'pinned.example.org:1'] },
        audit: setting.audit,
      } as ConfigOverrides,
    })
    const sink = new Writable({ write (chunk: Buffer, _enc, cb) { for (const l of chunk.toString('utf8').split('\n')) if (l !== '') logLines.push(JSON.parse(l) as Record<string, unknown>); cb() } })
    runtime = await createRuntime(config, { consoleJobs: registry }, { logger: pino({ level: 'warn' }, sink) })
    const url = await runtime.start()
    port = Number(new URL(url).port)
    for (let i = 0; i < 4; i++) {
      const r = await send('POST', '/v1/data/authz/allow', { host: here(), 'content-type': 'application/json', ...front }, Buffer.from(JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/1' } })))
      assert.equal(r.status, 200)
    }
  })

  after(async () => {
    await runtime?.stop()
    rmSync(work, { recursive: true, force: true })
  })

  const READS = ['/ui', '/ui/', '/ui/index.html', '/ui/assets/x.js', '/v1/console/decisions', '/v1/console/decisions/x/0', '/v1/console/overview', '/v1/console/integrity', '/v1/console/access-review', '/v1/console/access-review?format=csv', '/v1/console/verify/x', '/v1/console/replay/x']

  test('a foreign Host is refused on every console route (reads, assets, POSTs) with 421, counted and logged', async () => {
    const before = await metricValue(runtime.metrics, 'requestErrors', '', { code: 'PORTCULLIS_HOST_REJECTED' })
    let refused = 0
    for (const host of ['attacker.example', `attacker.example:${port}`, `localhost.attacker.example:${port}`, `127.0.0.1.nip.io:${port}`, `console.example.org.evil:${port}`, `pinned.example.org:${port}`, 'bad host', '[::1', `${here()}@evil`]) {
      for (const p of READS) {
        const r = await send('GET', p, { host, ...front })
        assert.equal(r.status, 421, `${host} ${p}`)
        assert.equal(codeOf(r), 'PORTCULLIS_HOST_REJECTED', `${host} ${p}`)
        refused++
      }
      for (const p of ['/v1/console/verify', '/v1/console/replay']) {
        const r = await send('POST', p, { host, ...front, 'x-portcullis-console': '1' })
        assert.equal(r.status, 421, `${host} POST ${p}`)
        refused++
      }
    }
    assert.equal(await metricValue(runtime.metrics, 'requestErrors', '', { code: 'PORTCULLIS_HOST_REJECTED' }) - before, refused)
    assert.ok(logLines.some((l) => l.code === 'PORTCULLIS_HOST_REJECTED' && (l.details as { host?: string } | undefined)?.host === 'attacker.example'))
    // no decision was asked for: the host check runs before the system policy's guard
  })

  /** A request written byte for byte on a fresh connection (what node:http's client will not send). */
  function sendRaw (head: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      // written, not ended: a half-closed connection is closed by the server before a slower answer is sent
      const s = connect(port, '127.0.0.1', () => s.write(head))
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      s.on('error', reject)
    })
  }

  test('a request without Host (HTTP/1.0) is refused too', async () => {
    const raw = await sendRaw(`GET /v1/console/integrity HTTP/1.0\r\nauthorization: ${front.authorization as string}\r\n\r\n`)
    assert.match(raw, /^HTTP\/1\.[01] 421 /)
    assert.ok(raw.includes('PORTCULLIS_HOST_REJECTED'))
  })

  test('two Host headers, an absolute-form target naming another host, and an IPv6 zone identifier are refused with 421, not answered or failed', async () => {
    const auth = `authorization: ${front.authorization as string}\r\n`
    for (const head of [
      `GET /v1/console/integrity HTTP/1.1\r\nhost: ${here()}\r\nhost: attacker.example\r\n${auth}connection: close\r\n\r\n`,
      `GET /v1/console/integrity HTTP/1.1\r\nhost: attacker.example\r\nhost: ${here()}\r\n${auth}connection: close\r\n\r\n`,
      `GET http://attacker.example/v1/console/integrity HTTP/1.1\r\nhost: ${here()}\r\n${auth}connection: close\r\n\r\n`,
      `GET http://attacker.example/v1/status HTTP/1.1\r\nhost: ${here()}\r\n${auth}connection: close\r\n\r\n`,
    ]) {
      const raw = await sendRaw(head)
      assert.match(raw, /^HTTP\/1\.1 421 /, head)
      assert.ok(raw.includes('PORTCULLIS_HOST_REJECTED'), head)
    }
    // an absolute-form target that names this server is answered
    const own = await sendRaw(`GET http://${here()}/v1/console/integrity HTTP/1.1\r\nhost: ${here()}\r\n${auth}connection: close\r\n\r\n`)
    assert.match(own, /^HTTP\/1\.1 200 /)
    for (const host of ['[fe80::1%eth0]', `[fe80::1%25eth0]:${port}`, `[::1%lo]:${port}`]) {
      const r = await send('GET', '/v1/console/integrity', { host, ...front })
      assert.equal(r.status, 421, host)
      assert.equal(codeOf(r), 'PORTCULLIS_HOST_REJECTED', host)
    }
  })

  test('on loopback the admin guard refuses a foreign Host too: /v1/status, the audit API and cache flush are not readable by a rebound page', async () => {
    for (const [method, path] of [['GET', '/v1/status'], ['GET', '/v1/audit/events'], ['GET', '/v1/audit/checkpoint'], ['GET', '/v1/audit/proof/inclusion?stream=w1&seq=0'], ['POST', '/v1/cache/flush']] as const) {
      for (const host of ['attacker.example', `attacker.example:${port}`, `localhost.attacker.example:${port}`]) {
        const r = await send(method, path, { host, ...front })
        assert.equal(r.status, 421, `${host} ${method} ${path}`)
        assert.equal(codeOf(r), 'PORTCULLIS_HOST_REJECTED', `${host} ${method} ${path}`)
      }
      for (const host of [here(), `localhost:${port}`, 'console.example.org']) {
        const r = await send(method, path, { host, ...front })
        assert.notEqual(r.status, 421, `${host} ${method} ${path}`)
      }
    }
  })

  test("the server's own names on loopback and admin.allowed_hosts are answered", async () => {
    for (const host of [here(), `localhost:${port}`, 'localhost', `localhost:${port + 1}` /* a tunnel's port */, `LOCALHOST.:${port}`, '127.0.0.1', `[::1]:${port}`, '[::1]', 'console.example.org', `console.example.org:${port}`, 'pinned.example.org:1']) {
      const r = await send('GET', '/v1/console/integrity', { host, ...front })
      assert.equal(r.status, 200, host)
    }
    // the guard still applies after the host check: no credential, no console
    const anon = await send('GET', '/v1/console/integrity', { host: here() })
    assert.ok(anon.status === 401 || anon.status === 403)
    // other endpoints are not console routes (the Data API is for workloads, not browsers)
    const data = await send('POST', '/v1/data/authz/allow', { host: 'attacker.example', 'content-type': 'application/json', ...front }, Buffer.from('{"input":{}}'))
    assert.equal(data.status, 200)
  })

  test('a second upload is refused with 409 CONSOLE_BUSY from its headers while the first is still sending its body; an abort frees the slot', async () => {
    const m = multipart(candidate, { path: 'authz' })
    const claimed = registry.next((e) => e.op === 'claim:replay' && e.ok === true)
    // the first upload: headers and half the body, then nothing
    let first: ClientRequest | undefined
    const firstAnswer = new Promise<number>((resolve) => {
      first = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/console/replay', headers: uploadHeaders(m.type, m.body.length), setHost: false }, (res) => { resolve(res.statusCode ?? 0); res.resume() })
      first.on('error', () => resolve(-1))
      first.write(m.body.subarray(0, Math.floor(m.body.length / 2)))
    })
    await within(claimed, 'the first upload to claim the replay slot before its body is complete')
    // a complete second upload is refused without compiling anything
    const second = await upload(candidate)
    assert.equal(second.status, 409)
    assert.equal(codeOf(second), 'PORTCULLIS_CONSOLE_BUSY')
    // and one that sends only its headers (a 1 GB body announced, none sent) is answered all the same
    const headersOnly = await within(new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/console/replay', headers: { ...uploadHeaders(m.type, 1_000_000_000), connection: 'close' }, setHost: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }); req.destroy() })
      })
      req.on('error', reject)
      req.flushHeaders()
    }), 'an answer to an upload whose body never comes')
    assert.equal(headersOnly.status, 409)
    assert.equal(codeOf(headersOnly), 'PORTCULLIS_CONSOLE_BUSY')
    // the first client goes away mid-body: the slot is released (the claimed job is marked failed)
    const released = registry.next((e) => e.op === 'update:replay' && e.view?.state === 'failed')
    first?.destroy()
    await within(released, 'the slot to be released after the client aborted')
    assert.equal(await firstAnswer, -1)
    const next = await upload(candidate)
    assert.equal(next.status, 202, next.body)
    assert.equal(await jobDone((JSON.parse(next.body) as { job: string }).job), 'done')
  })

  test('a client that goes away while the guard or the claim is still running does not keep the slot', async () => {
    // the claim takes a while (as a worker's round trip to the primary does); the client sends
    // its headers and is gone before the claim completes — 'close' has fired by then
    registry.claimDelayMs = 300
    try {
      const m = multipart(candidate, { path: 'authz' })
      const claimed = registry.next((e) => e.op === 'claim:replay' && e.ok === true)
      const released = registry.next((e) => e.op === 'update:replay' && e.view?.state === 'failed')
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/console/replay', headers: uploadHeaders(m.type, m.body.length), setHost: false })
      req.on('error', () => {})
      req.flushHeaders()
      await new Promise((resolve) => setTimeout(resolve, 50))
      req.destroy()
      await within(claimed, 'the aborted upload to claim the slot')
      await within(released, 'the slot to be released after the client was gone before the claim')
    } finally {
      registry.claimDelayMs = 0
    }
    const next = await upload(candidate)
    assert.equal(next.status, 202, next.body)
    assert.equal(await jobDone((JSON.parse(next.body) as { job: string }).job), 'done')
  })

  test('the slot is released on every refusal: too large, a corrupt candidate, no bundle field, a body that is not multipart', async () => {
    const tooLarge = await upload(randomBytes(MAX_BUNDLE + 1024))
    assert.equal(tooLarge.status, 400)
    assert.equal(codeOf(tooLarge), 'PORTCULLIS_BUNDLE_TOO_LARGE')
    const corrupt = await upload(Buffer.from('not a gzip archive'))
    assert.equal(corrupt.status, 400)
    assert.equal(codeOf(corrupt), 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')
    const noFile = multipart(Buffer.alloc(0))
    const fieldOnly = Buffer.from(noFile.body.toString('latin1').replace('name="bundle"', 'name="other"'), 'latin1')
    const none = await send('POST', '/v1/console/replay', uploadHeaders(noFile.type, fieldOnly.length), fieldOnly)
    assert.equal(none.status, 400)
    assert.equal(codeOf(none), 'PORTCULLIS_AUDIT_INVALID')
    const broken = await send('POST', '/v1/console/replay', uploadHeaders('multipart/form-data; boundary=x', 11), Buffer.from('--x\r\nbroken'))
    assert.equal(broken.status, 400)
    const json = await send('POST', '/v1/console/replay', uploadHeaders('application/json', 2), Buffer.from('{}'))
    assert.equal(json.status, 400)
    // after each of them, straight away: the slot is free
    const ok = await upload(candidate)
    assert.equal(ok.status, 202, ok.body)
    assert.equal(await jobDone((JSON.parse(ok.body) as { job: string }).job), 'done')
  })
})
