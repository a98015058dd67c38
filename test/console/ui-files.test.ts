/**
 * The static UI files: content types, CSP / nosniff / cache headers, and nothing outside the
 * UI directory. The routes run on a real fastify app; the guard here admits every request
 * because the guard is not what is under test (test/server/console-routes.test.ts checks that
 * /ui/ is refused to a caller the system policy refuses).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { consoleRoutes } from '../../src/server/routes/console.js'
import { PolicySnapshot } from '../../src/policy/snapshot.js'

let work: string
let app: FastifyInstance

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-ui-'))
  const dist = join(work, 'dist')
  mkdirSync(join(dist, 'assets'), { recursive: true })
  writeFileSync(join(dist, 'index.html'), '<!doctype html><script type="module" src="/ui/assets/app-1a2b.js"></script>')
  writeFileSync(join(dist, 'assets', 'app-1a2b.js'), 'console.log(1)')
  writeFileSync(join(dist, 'assets', 'app-1a2b.css'), 'body{}')
  writeFileSync(join(work, 'secret.txt'), 'outside')
  app = Fastify()
  await app.register(consoleRoutes, {
    guard: async () => {},
    auditDir: undefined,
    checkpointKeyFile: undefined,
    grantsPath: 'system/console/grants',
    snapshot: () => new PolicySnapshot(0, []),
    loadCandidate: undefined,
    maxBundleBytes: 1024,
    strictBuiltinErrors: false,
    uiDir: dist,
    // app.inject has no real connection (no local address) and sends Host: localhost:80; the
    // Host check itself is tested over the wire in test/server/console-hardening.test.ts
    host: { allowedHosts: ['localhost'] },
  })
})
after(async () => { await app.close(); rmSync(work, { recursive: true, force: true }) })

test('index.html and hashed assets with their types, CSP, nosniff and cache headers', async () => {
  for (const url of ['/ui', '/ui/']) {
    const r = await app.inject({ url })
    assert.equal(r.statusCode, 200)
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8')
    assert.equal(r.headers['cache-control'], 'no-cache')
    const csp = String(r.headers['content-security-policy'])
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/)
    assert.equal(r.headers['x-content-type-options'], 'nosniff')
  }
  const js = await app.inject({ url: '/ui/assets/app-1a2b.js' })
  assert.equal(js.statusCode, 200)
  assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8')
  assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable')
  assert.equal(js.body, 'console.log(1)')
  assert.equal((await app.inject({ url: '/ui/assets/app-1a2b.css' })).headers['content-type'], 'text/css; charset=utf-8')
})

test('nothing outside the UI directory, no listings, missing files 404', async () => {
  for (const url of ['/ui/../secret.txt', '/ui/%2e%2e/secret.txt', '/ui/assets/%2e%2e%2f%2e%2e%2fsecret.txt', '/ui/assets', '/ui/assets/', '/ui/missing.js']) {
    const r = await app.inject({ url })
    assert.equal(r.statusCode, 404, url)
    assert.doesNotMatch(r.body, /outside/)
  }
})
