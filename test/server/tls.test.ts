/**
 * The TLS listener: server certificate from files (reloaded on change), client X.509-SVIDs
 * verified by the identity plugin so the caller's SPIFFE ID reaches the policy. Certificates
 * are generated in setup with @peculiar/x509 (test/identity/support/pki.ts), valid around now.
 */
import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request as httpsRequest } from 'node:https'
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DAY, HOUR, makeCa, makeLeaf, makeServerCert, pemOf, privateKeyPem, type Issued } from '../identity/support/pki.js'
import { startRuntime } from '../helpers/runtime.js'

const order = { service: 'orders', method: 'GET', path: '/orders/1' }

interface Reply { status: number, body: Record<string, unknown>, fingerprint: string }

function call (url: string, opts: { ca: string, cert?: string, key?: string }, payload: unknown = { input: order }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/v1/data/authz/allow`, {
      method: 'POST',
      ca: opts.ca,
      ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
      headers: { 'content-type': 'application/json' },
      agent: false,
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate()
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>, fingerprint: peer.fingerprint256 })
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify(payload))
  })
}

describe('TLS and mTLS listener', () => {
  let dir: string
  let root: Issued
  let svid: { cert: string, key: string }
  let foreign: { cert: string, key: string }
  let serverCertFile: string
  let serverKeyFile: string

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-'))
    const now = Date.now()
    const valid = { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) }
    root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', ...valid })
    const intermediate = await makeCa({ name: 'example.org intermediate', uri: 'spiffe://example.org', issuer: root, ...valid })
    const leaf = await makeLeaf({ issuer: intermediate, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    svid = { cert: pemOf(leaf, intermediate), key: await privateKeyPem(leaf) }
    // same trust-domain name, different (untrusted) root
    const evilRoot = await makeCa({ name: 'evil root', uri: 'spiffe://example.org', ...valid })
    const evilLeaf = await makeLeaf({ issuer: evilRoot, uris: ['spiffe://example.org/ns/shop/sa/frontend'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    foreign = { cert: pemOf(evilLeaf), key: await privateKeyPem(evilLeaf) }
    const server = await makeServerCert(root)
    serverCertFile = join(dir, 'server.pem')
    serverKeyFile = join(dir, 'server.key')
    writeFileSync(serverCertFile, server.cert)
    writeFileSync(serverKeyFile, server.key)
    writeFileSync(join(dir, 'bundle.pem'), root.pem)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const identity = (): Record<string, unknown> => ({
    trust_domains: { 'example.org': { x509_authorities: [join(dir, 'bundle.pem')] } },
    x509_svid: { sources: ['mtls'] },
    watch: { enabled: false },
  })

  test('a client X.509-SVID is verified and its SPIFFE ID reaches the policy', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: { cert_file: serverCertFile, key_file: serverKeyFile, client_auth: 'request' } }, identity: identity() })
    t.after(close)
    assert.match(url, /^https:/)
    const ok = await call(url, { ca: root.pem, ...svid })
    assert.equal(ok.status, 200)
    assert.equal(ok.body.result, true)
    // no client certificate: anonymous, denied before the policy (default)
    const anon = await call(url, { ca: root.pem })
    assert.equal(anon.status, 401)
    assert.equal(anon.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
    // a certificate from an untrusted root with the same trust-domain name is rejected
    const evil = await call(url, { ca: root.pem, ...foreign })
    assert.equal(evil.status, 401)
    assert.equal(evil.body.code, 'unauthorized')
    assert.notEqual(evil.body.portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('client_auth: require refuses requests without a client certificate', async (t) => {
    const { url, close } = await startRuntime({ server: { tls: { cert_file: serverCertFile, key_file: serverKeyFile, client_auth: 'require' } }, identity: identity() })
    t.after(close)
    const anon = await call(url, { ca: root.pem })
    assert.equal(anon.status, 401)
    assert.equal((await call(url, { ca: root.pem, ...svid })).body.result, true)
  })

  test('the server certificate is reloaded when its files change', async (t) => {
    const certFile = join(dir, 'reload.pem')
    const keyFile = join(dir, 'reload.key')
    const first = await makeServerCert(root)
    writeFileSync(certFile, first.cert)
    writeFileSync(keyFile, first.key)
    const { url, close } = await startRuntime({ server: { tls: { cert_file: certFile, key_file: keyFile, client_auth: 'none' } } })
    t.after(close)
    const before = (await call(url, { ca: root.pem })).fingerprint
    const second = await makeServerCert(root)
    // write both, then swap them in by rename
    writeFileSync(join(dir, '.k'), second.key)
    writeFileSync(join(dir, '.c'), second.cert)
    renameSync(join(dir, '.k'), keyFile)
    renameSync(join(dir, '.c'), certFile)
    let now = before
    for (let i = 0; i < 50 && now === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      now = (await call(url, { ca: root.pem })).fingerprint
    }
    assert.notEqual(now, before)
    // a broken replacement keeps the current certificate
    writeFileSync(certFile, 'not a certificate')
    await new Promise((resolve) => setTimeout(resolve, 600))
    assert.equal((await call(url, { ca: root.pem })).fingerprint, now)
  })
})
