/**
 * The bundle request over the wire (src/bundles/service/client.ts): redirects between real
 * loopback servers. Another port is another origin, so a redirect from one server to the other
 * is a cross-origin hop: the service's credentials and configured headers must not follow it,
 * an https service must never be redirected to plain http, and a redirect's body is never read
 * (its socket is closed at once, however slowly the server sends it).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fetchBundle, type ServiceOptions } from '../../src/bundles/service/client.js'
import { makeCa, makeServerCert, write } from '../identity/support/pki.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Recorder { url: string, seen: IncomingHttpHeaders[], server: Server, close: () => Promise<void> }

async function listen (server: Server, scheme: 'http' | 'https', handler: Handler): Promise<Recorder> {
  const seen: IncomingHttpHeaders[] = []
  server.on('request', (req: IncomingMessage, res: ServerResponse) => { seen.push(req.headers); handler(req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    seen,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

const BODY = Buffer.from('bundle bytes (not parsed by the client)')

function serveBody (_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/gzip', etag: '"b1"', 'content-length': BODY.length })
  res.end(BODY)
}

function redirectTo (target: () => string): Handler {
  return (req, res) => {
    res.writeHead(302, { location: `${target()}${req.url ?? '/'}` })
    res.end()
  }
}

const SECRET_HEADERS: Record<string, string> = { 'X-Api-Key': 'key-123', Cookie: 'session=abc', 'Proxy-Authorization': 'Basic cHJveHk=' }

function service (url: string, extra: Partial<ServiceOptions> = {}): ServiceOptions {
  return { name: 'acmecorp', url, headers: { ...SECRET_HEADERS }, bearer: { token: 'secret-token', scheme: 'Bearer' }, responseHeaderTimeoutMs: 5000, ...extra }
}

describe('bundle client redirects (two real loopback servers)', () => {
  // Regression: services.<n>.headers went to every redirect target.
  test('a cross-origin redirect target sees neither the bearer token nor any configured header', async (t) => {
    const other = await listen(createServer(), 'http', serveBody)
    t.after(other.close)
    const home = await listen(createServer(), 'http', redirectTo(() => other.url))
    t.after(home.close)

    const res = await fetchBundle(service(home.url), { resource: 'bundles/authz', maxBytes: 1 << 20 })
    assert.equal(res.status, 200)
    assert.deepEqual(res.status === 200 ? res.body : undefined, BODY)
    assert.equal(res.url, `${other.url}/bundles/authz`)

    const [atHome] = home.seen
    assert.equal(atHome?.authorization, 'Bearer secret-token')
    assert.equal(atHome?.['x-api-key'], 'key-123')
    assert.equal(atHome?.cookie, 'session=abc')
    assert.equal(atHome?.['proxy-authorization'], 'Basic cHJveHk=')

    const [atOther] = other.seen
    assert.ok(atOther !== undefined, 'the redirect was followed')
    for (const h of ['authorization', 'x-api-key', 'cookie', 'proxy-authorization']) assert.equal(atOther[h], undefined, h)
    const leaked = JSON.stringify(atOther)
    for (const secret of ['secret-token', 'key-123', 'session=abc', 'cHJveHk=']) assert.ok(!leaked.includes(secret), secret)
  })

  test('a same-origin redirect keeps the credentials and headers', async (t) => {
    const home = await listen(createServer(), 'http', (req, res) => {
      if (req.url === '/bundles/authz') {
        res.writeHead(302, { location: '/moved/authz' })
        res.end()
      } else serveBody(req, res)
    })
    t.after(home.close)
    const res = await fetchBundle(service(home.url), { resource: 'bundles/authz', maxBytes: 1 << 20 })
    assert.equal(res.status, 200)
    assert.equal(home.seen.length, 2)
    assert.equal(home.seen[1]?.authorization, 'Bearer secret-token')
    assert.equal(home.seen[1]?.['x-api-key'], 'key-123')
  })

  test('an https service redirected to plain http is refused; the http server never sees a request', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-bclient-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    const ca = await makeCa({ name: 'bundle server CA' })
    const cert = await makeServerCert(ca)
    const plain = await listen(createServer(), 'http', serveBody)
    t.after(plain.close)
    const secure = await listen(createHttpsServer({ cert: cert.cert, key: cert.key }), 'https', redirectTo(() => plain.url))
    t.after(secure.close)

    await assert.rejects(fetchBundle(service(secure.url, { tls: { caCert: write(dir, 'ca.pem', ca.pem) } }), { resource: 'bundles/authz', maxBytes: 1 << 20 }),
      (err: { code: string, details: { reason: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DOWNLOAD_FAILED')
        assert.equal(err.details.reason, 'redirect')
        return true
      })
    assert.equal(secure.seen.length, 1)
    assert.equal(plain.seen.length, 0)
  })

  // Regression: a redirect's response was drained, not destroyed, so a server trickling its
  // body held the socket open indefinitely.
  test('a redirect whose body trickles forever does not hold its socket open', async (t) => {
    const target = await listen(createServer(), 'http', serveBody)
    t.after(target.close)
    let trickle: NodeJS.Timeout | undefined
    let socketClosed: Promise<void> | undefined
    const slow = await listen(createServer(), 'http', (req, res) => {
      socketClosed = new Promise((resolve) => req.socket.once('close', () => resolve()))
      res.writeHead(302, { location: `${target.url}/bundles/authz`, 'content-length': 1 << 30 })
      trickle = setInterval(() => { if (!res.destroyed) res.write('x') }, 10)
    })
    t.after(async () => { clearInterval(trickle); await slow.close() })

    const res = await fetchBundle(service(slow.url, { headers: {} }), { resource: 'bundles/authz', maxBytes: 1 << 20 })
    assert.equal(res.status, 200)
    assert.ok(socketClosed !== undefined)
    // Bounded wait for the close; it never comes while the client keeps reading the trickle.
    let timer: NodeJS.Timeout | undefined
    const outcome = await Promise.race([
      socketClosed.then(() => 'closed'),
      new Promise<string>((resolve) => { timer = setTimeout(() => resolve('still open'), 5000) }),
    ])
    clearTimeout(timer)
    assert.equal(outcome, 'closed')
  })
})
