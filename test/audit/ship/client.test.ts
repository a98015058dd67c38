/** Upload format and failures over a real loopback HTTP collector (see collector.ts for why it is ours). */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { UploadClient } from '../../../src/audit/ship/client.js'
import { Collector } from './collector.js'

const collector = new Collector()
before(async () => { await collector.up() })
after(async () => { await collector.down() })

const body = gzipSync(Buffer.from('[{"seq":0,"decision_id":"a"},{"seq":1,"decision_id":"b"}]'))

test('POSTs a gzip JSON array to {url}{resource} with OPA headers, service headers and the bearer token', async () => {
  const client = new UploadClient({ url: `${collector.url}/base/`, headers: { 'x-tenant': 't1' }, credentials: { bearer: { token: 's3cret' } } }, '/logs/part')
  const n = collector.uploads.length
  const r = await client.upload(body, new AbortController().signal)
  assert.deepEqual(r, { ok: true, status: 200 })
  const u = collector.uploads[n]
  assert.ok(u !== undefined)
  assert.equal(u.method, 'POST')
  assert.equal(u.path, '/base/logs/part')
  assert.equal(u.headers['content-encoding'], 'gzip')
  assert.equal(u.headers['content-type'], 'application/json')
  assert.equal(u.headers.authorization, 'Bearer s3cret')
  assert.equal(u.headers['x-tenant'], 't1')
  assert.deepEqual(u.events?.map((e) => e.decision_id), ['a', 'b'])
})

test('token_path is re-read for every upload (rotated tokens are used) and scheme is honoured', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ship-token-'))
  const file = join(dir, 'token')
  writeFileSync(file, 'one\n')
  const client = new UploadClient({ url: collector.url, credentials: { bearer: { token_path: file, scheme: 'Token' } } }, '/logs')
  const n = collector.uploads.length
  assert.equal((await client.upload(body, new AbortController().signal)).ok, true)
  writeFileSync(file, 'two\n')
  assert.equal((await client.upload(body, new AbortController().signal)).ok, true)
  assert.deepEqual(collector.uploads.slice(n).map((u) => u.headers.authorization), ['Token one', 'Token two'])
})

test('a non-2xx answer is a failure carrying the status', async () => {
  const client = new UploadClient({ url: collector.url }, '/logs')
  collector.answer = 500
  try {
    const r = await client.upload(body, new AbortController().signal)
    assert.equal(r.ok, false)
    assert.equal(r.status, 500)
  } finally {
    collector.answer = 200
  }
})

test('connection refused is a failure without a status; a missing token file too', async () => {
  const down = new Collector()
  await down.up()
  const url = down.url
  await down.down()
  const r = await new UploadClient({ url }, '/logs').upload(body, new AbortController().signal)
  assert.equal(r.ok, false)
  assert.equal(r.status, undefined)
  const r2 = await new UploadClient({ url: collector.url, credentials: { bearer: { token_path: '/nonexistent/token' } } }, '/logs').upload(body, new AbortController().signal)
  assert.equal(r2.ok, false)
  assert.equal(r2.status, undefined)
})

test('an aborted signal ends the upload', async () => {
  const ctl = new AbortController()
  ctl.abort()
  const r = await new UploadClient({ url: collector.url }, '/logs').upload(body, ctl.signal)
  assert.equal(r.ok, false)
})

test('https: the service CA (tls.ca_cert) and a client certificate (credentials.client_tls); an unknown CA fails', async () => {
  const { createServer } = await import('node:https')
  const { HOUR, DAY, makeCa, makeLeaf, makeServerCert, privateKeyPem } = await import('../../identity/support/pki.js')
  const now = Date.now()
  const root = await makeCa({ name: 'collector root', notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) })
  const server = await makeServerCert(root)
  const client = await makeLeaf({ issuer: root, uris: [], subject: 'CN=portcullis', notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
  const dir = mkdtempSync(join(tmpdir(), 'ship-tls-'))
  writeFileSync(join(dir, 'ca.pem'), root.pem)
  writeFileSync(join(dir, 'client.pem'), client.pem)
  writeFileSync(join(dir, 'client.key'), await privateKeyPem(client))
  const seen: Array<{ authorized: boolean, subject: string | undefined }> = []
  const srv = createServer({ cert: server.cert, key: server.key, ca: root.pem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const sock = req.socket as import('node:tls').TLSSocket
    seen.push({ authorized: sock.authorized, subject: String(sock.getPeerCertificate().subject?.CN) })
    req.resume()
    req.on('end', () => { res.writeHead(204).end() })
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  try {
    const url = `https://127.0.0.1:${(srv.address() as import('node:net').AddressInfo).port}`
    const ok = await new UploadClient({ url, tls: { ca_cert: join(dir, 'ca.pem') }, credentials: { client_tls: { cert: join(dir, 'client.pem'), private_key: join(dir, 'client.key') } } }, '/logs').upload(body, new AbortController().signal)
    assert.deepEqual(ok, { ok: true, status: 204 })
    assert.deepEqual(seen, [{ authorized: true, subject: 'portcullis' }])
    const unknownCa = await new UploadClient({ url, credentials: { client_tls: { cert: join(dir, 'client.pem'), private_key: join(dir, 'client.key') } } }, '/logs').upload(body, new AbortController().signal)
    assert.equal(unknownCa.ok, false)
    assert.equal(unknownCa.status, undefined)
    assert.equal(seen.length, 1)
  } finally {
    srv.closeAllConnections()
    await new Promise<void>((resolve) => srv.close(() => { resolve() }))
  }
})

test('a 2xx is the acknowledgement: a body that breaks off or never ends does not make it a failure (the chunk is not sent again); an error body that trickles is bounded', async () => {
  const { createServer } = await import('node:http')
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.url === '/cut') { res.writeHead(200, { 'content-length': '100' }); res.write('abc'); setTimeout(() => { res.socket?.destroy() }, 20) } else if (req.url === '/hang') { res.writeHead(200, { 'content-length': '100' }); res.write('a') } else { res.writeHead(500, { 'content-length': '100000' }); const t = setInterval(() => { if (res.writableEnded || res.destroyed) clearInterval(t); else res.write('x') }, 50); res.on('close', () => { clearInterval(t) }) }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  try {
    assert.deepEqual(await new UploadClient({ url }, '/cut').upload(body, new AbortController().signal), { ok: true, status: 200 })
    assert.deepEqual(await new UploadClient({ url }, '/hang').upload(body, new AbortController().signal), { ok: true, status: 200 })
    const slow = await new UploadClient({ url, response_header_timeout_seconds: 1 }, '/trickle').upload(body, new AbortController().signal)
    assert.equal(slow.ok, false)
  } finally {
    server.closeAllConnections()
    server.close()
  }
})
