/**
 * Connection-level failures (src/metrics/connections.ts) over real sockets: requests Node's HTTP
 * parser refuses and failed TLS handshakes are answered or closed as before, and counted in
 * portcullis_connection_errors_total and logged (once per window) by the Data API and the Envoy
 * HTTP listeners. Certificates are generated per run (test/identity/support/pki.ts).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Metrics } from '../../src/metrics/index.js'
import { watchConnectionErrors } from '../../src/metrics/connections.js'
import { startRuntime } from '../helpers/runtime.js'
import { envoyBundles, startEnvoy } from '../envoy/support.js'
import { DAY, HOUR, makeCa, makeLeaf, makeServerCert, pemOf, privateKeyPem, type Issued } from '../identity/support/pki.js'

/** Writes raw bytes to host:port and resolves with everything the server answers before it closes. */
function raw (port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('the server did not close the connection')) }, 10_000)
    sock.on('data', (c) => { text += c.toString() })
    sock.on('close', () => { clearTimeout(timer); resolve(text) })
    sock.on('error', () => {})
    sock.write(bytes)
  })
}

async function counted (metrics: Metrics, labels: Record<string, string>): Promise<number> {
  const m = await metrics.connectionErrors.get()
  return m.values.filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x)).reduce((n, v) => n + v.value, 0)
}

test('a plain node:http server: refused requests are answered as Node does, counted by code, and logged once per window', async (t) => {
  const metrics = new Metrics({ defaultMetrics: false })
  const warnings: Array<Record<string, unknown>> = []
  const log = { info: () => {}, error: () => {}, warn: (o: object) => { warnings.push(o as Record<string, unknown>) } }
  const server = createServer({ maxHeaderSize: 1024 }, (_req, res) => { res.end('ok') })
  watchConnectionErrors(server, { listener: 'test', metrics, log, answer: true })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as { port: number }).port

  assert.match(await raw(port, 'BLAH / HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.match(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`), /^HTTP\/1\.1 431 /)
  assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n'), /^HTTP\/1\.1 400 /)
  assert.equal(await counted(metrics, { listener: 'test', kind: 'http_request', code: 'HPE_INVALID_METHOD' }), 1)
  assert.equal(await counted(metrics, { listener: 'test', kind: 'http_request', code: 'HPE_HEADER_OVERFLOW' }), 1)
  assert.equal(await counted(metrics, { listener: 'test', kind: 'http_request' }), 3)
  // three refusals inside one window: one warning, naming the first
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0]?.code, 'HPE_INVALID_METHOD')
  assert.equal(warnings[0]?.kind, 'http_request')
  // the server still answers good requests
  assert.match(await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
})

test('the Data API: fastify still answers a malformed request with 400, and the refusal is in /metrics', async (t) => {
  const { url, close } = await startRuntime()
  t.after(close)
  const port = Number(new URL(url).port)
  assert.match(await raw(port, 'GET /v1/data HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), /^HTTP\/1\.1 400 /)
  const text = await (await fetch(`${url}/metrics`)).text()
  assert.match(text, /portcullis_connection_errors_total\{listener="data-api",kind="http_request",code="HPE_[A-Z_]+"\} 1/)
})

test('the Envoy HTTP service listener: a malformed request gets 400 and is counted', async (t) => {
  const bundles = envoyBundles()
  t.after(bundles.cleanup)
  const env = await startEnvoy(bundles.dir)
  t.after(env.close)
  const port = Number(new URL(env.httpUrl).port)
  assert.match(await raw(port, 'GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), /^HTTP\/1\.1 400 /)
  assert.equal(await counted(env.runtime.metrics, { listener: 'envoy-http', kind: 'http_request' }), 1)
})

describe('TLS handshakes the Data API listener refuses are counted', () => {
  let dir: string
  let root: Issued
  let clientCaFile: string
  let selfSigned: { cert: string, key: string }
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-conn-errors-'))
    const now = Date.now()
    const valid = { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) }
    root = await makeCa({ name: 'server root', ...valid })
    const server = await makeServerCert(root)
    writeFileSync(join(dir, 'server.pem'), server.cert)
    writeFileSync(join(dir, 'server.key'), server.key)
    const clientCa = await makeCa({ name: 'client CA', ...valid })
    clientCaFile = join(dir, 'client-ca.pem')
    writeFileSync(clientCaFile, clientCa.pem)
    const other = await makeCa({ name: 'someone else', ...valid })
    const leaf = await makeLeaf({ issuer: other, uris: [], dns: ['client.internal'], subject: 'CN=client', notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    selfSigned = { cert: pemOf(leaf), key: await privateKeyPem(leaf) }
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  test('plain HTTP to the TLS port is counted; a client certificate OpenSSL refuses is closed by Node without an event', async (t) => {
    const { url, close, runtime } = await startRuntime({ server: { tls: { cert_file: join(dir, 'server.pem'), key_file: join(dir, 'server.key'), client_auth: 'require', client_ca_file: clientCaFile } } } as never)
    t.after(close)
    const port = Number(new URL(url).port)
    await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise<void>((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port, ca: root.pem, servername: 'localhost', cert: selfSigned.cert, key: selfSigned.key })
      sock.on('error', () => {})
      sock.on('close', () => { resolve() })
      sock.on('secureConnect', () => { sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n') })
    })
    assert.equal(await counted(runtime.metrics, { listener: 'data-api', kind: 'tls_handshake', code: 'ERR_SSL_HTTP_REQUEST' }), 1)
    // Node destroys a socket whose certificate fails rejectUnauthorized without emitting
    // tlsClientError (_tls_wrap.js onServerSocketSecure): that refusal is not counted (documented
    // in connections.ts); the listener gate's refusals are requestErrors (test/server/tls.test.ts).
    assert.equal(await counted(runtime.metrics, { listener: 'data-api', kind: 'tls_handshake' }), 1)
  })
})
