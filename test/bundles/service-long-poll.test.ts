/**
 * Long polling (`Prefer: wait=N`) and the downloader's protocol details that nginx cannot show.
 * nginx does not implement OPA's long polling (it never holds a request), so this uses a small
 * real node:http server on 127.0.0.1 that holds a request the way a bundle server does, and
 * answers with or without `Content-Type: application/vnd.openpolicyagent.bundles`.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager } from '../../src/bundles/activate.js'
import { BundleDownloader, OPA_BUNDLE_CONTENT_TYPE, type RemoteBundleOptions } from '../../src/bundles/service/index.js'
import { buildFixture } from '../helpers/bundles.js'
import { waitFor } from '../helpers/wait.js'

let work: string
let archive: Buffer

before(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-longpoll-'))
  archive = readFileSync(buildFixture('basic', work, { revision: 'rev-lp' }))
})
after(() => { rmSync(work, { recursive: true, force: true }) })

interface Seen { prefer: string, ifNoneMatch: string }

/** A bundle server: serves `archive` with ETag "v1"; with `longPoll`, holds a conditional request `holdMs` then answers 304. */
async function bundleServer (opts: { contentType: string, holdMs?: number }): Promise<{ url: string, seen: Seen[], server: Server, close: () => Promise<void> }> {
  const seen: Seen[] = []
  const held = new Set<ServerResponse>()
  const timers = new Set<NodeJS.Timeout>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ prefer: String(req.headers.prefer ?? ''), ifNoneMatch: String(req.headers['if-none-match'] ?? '') })
    if (req.headers['if-none-match'] === '"v1"') {
      const wait = /wait=(\d+)/.exec(String(req.headers.prefer ?? ''))
      if (wait !== null) {
        // Long poll: hold the request (bounded by the test's hold, far below the asked wait).
        held.add(res)
        const timer = setTimeout(() => { timers.delete(timer); held.delete(res); res.writeHead(304, { etag: '"v1"', 'content-type': opts.contentType }).end() }, opts.holdMs ?? 50)
        timers.add(timer)
        return
      }
      res.writeHead(304, { etag: '"v1"' }).end()
      return
    }
    res.writeHead(200, { etag: '"v1"', 'content-type': opts.contentType, 'content-length': archive.length }).end(archive)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    server,
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      for (const r of held) r.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    },
  }
}

function options (url: string, longPollingTimeoutSeconds?: number): RemoteBundleOptions {
  return {
    name: 'lp',
    service: { name: 'svc', url, responseHeaderTimeoutMs: 10_000 },
    resource: '/bundles/lp/',
    polling: { minDelayMs: 60_000, maxDelayMs: 120_000, ...(longPollingTimeoutSeconds !== undefined ? { longPollingTimeoutSeconds } : {}) },
    load: {},
    maxBytes: 1 << 24,
  }
}

describe('long polling', () => {
  test('with the OPA bundle content type, the next request carries Prefer: wait=N and follows at once', async (t) => {
    const srv = await bundleServer({ contentType: OPA_BUNDLE_CONTENT_TYPE })
    const manager = new BundleManager()
    const d = new BundleDownloader(manager, options(srv.url, 30))
    t.after(async () => { await d.close(); await srv.close() })
    d.start()
    // No trigger: after the 200 the downloader long-polls again without waiting its 60 s delay.
    await waitFor(() => srv.seen.length >= 3, 'two long polls after the download')
    assert.equal(manager.statusOf('lp')?.active_revision, 'rev-lp')
    assert.equal(srv.seen[0]?.prefer, 'modes=snapshot;wait=30', 'OPA asks for a long poll from the first request when configured')
    assert.equal(srv.seen[0]?.ifNoneMatch, '')
    assert.deepEqual(srv.seen.slice(1, 3), [{ prefer: 'modes=snapshot;wait=30', ifNoneMatch: '"v1"' }, { prefer: 'modes=snapshot;wait=30', ifNoneMatch: '"v1"' }])
  })

  test('a server that answers long polls at once (holds nothing) is polled at most once a second, not in a loop', async (t) => {
    const srv = await bundleServer({ contentType: OPA_BUNDLE_CONTENT_TYPE, holdMs: 0 })
    const manager = new BundleManager()
    const d = new BundleDownloader(manager, options(srv.url, 30))
    t.after(async () => { await d.close(); await srv.close() })
    d.start()
    await waitFor(() => srv.seen.length >= 2, 'the first long poll')
    const from = srv.seen.length
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const polls = srv.seen.length - from
    assert.ok(polls >= 1 && polls <= 4, `long polls in 2.5 s: ${polls}`)
  })

  test('without the content type (or with a parameter on it: OPA compares it exactly), Portcullis does not long-poll: plain polling after the first answer', async (t) => {
    for (const contentType of ['application/gzip', `${OPA_BUNDLE_CONTENT_TYPE}; charset=binary`]) {
      const srv = await bundleServer({ contentType })
      const manager = new BundleManager()
      const d = new BundleDownloader(manager, options(srv.url, 30))
      t.after(async () => { await d.close(); await srv.close() })
      d.start()
      await waitFor(() => manager.statusOf('lp')?.active_revision !== undefined, 'first download')
      assert.equal(await d.trigger(), 'not_modified')
      assert.equal(srv.seen.length, 2, 'the loop waits its polling delay; only the trigger polled')
      assert.equal(srv.seen[1]?.prefer, 'modes=snapshot', contentType)
      assert.equal(srv.seen[1]?.ifNoneMatch, '"v1"')
    }
  })

  test('close() aborts a held long poll and clears the timers', async (t) => {
    const srv = await bundleServer({ contentType: OPA_BUNDLE_CONTENT_TYPE, holdMs: 60_000 })
    t.after(async () => { await srv.close() })
    const manager = new BundleManager()
    const d = new BundleDownloader(manager, options(srv.url, 30))
    d.start()
    await waitFor(() => srv.seen.length >= 2, 'a held long poll')
    await d.close()
    assert.equal(await d.trigger(), 'stopped')
    assert.equal(manager.statusOf('lp')?.active_revision, 'rev-lp')
  })
})

/** A bundle server that answers each request with the next scripted response. */
async function scriptedServer (script: Array<(res: ServerResponse) => void>): Promise<{ url: string, seen: Seen[], close: () => Promise<void> }> {
  const seen: Seen[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ prefer: String(req.headers.prefer ?? ''), ifNoneMatch: String(req.headers['if-none-match'] ?? '') })
    const step = script.shift()
    if (step === undefined) res.writeHead(500).end()
    else step(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    seen,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    },
  }
}

describe('not modified', () => {
  // Regression: any 304 cleared the error, even one for an ETag that was never activated.
  test('a 304 clears an earlier error only when its ETag is the active bundle\'s', async (t) => {
    const srv = await scriptedServer([
      (res) => { res.writeHead(200, { etag: '"v1"', 'content-length': archive.length }).end(archive) },
      (res) => { res.writeHead(200, { etag: '"v2"' }).end('not a gzip archive') },
      (res) => { res.writeHead(304, { etag: '"v2"' }).end() },
      (res) => { res.writeHead(304, { etag: '"v1"' }).end() },
    ])
    const manager = new BundleManager()
    const d = new BundleDownloader(manager, options(srv.url))
    t.after(async () => { await d.close(); await srv.close() })
    assert.equal(await d.pollOnce(), 'downloaded')
    assert.equal(await d.pollOnce(), 'rejected')
    assert.equal(manager.statusOf('lp')?.last_error?.code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')

    // 304 naming "v2", which never activated: the error stays, and the next request still asks with "v1".
    assert.equal(await d.pollOnce(), 'not_modified')
    assert.equal(manager.statusOf('lp')?.state, 'ERROR')
    assert.equal(manager.statusOf('lp')?.last_error?.code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')

    // 304 for the active ETag: the active bundle is current, the error is over.
    assert.equal(await d.pollOnce(), 'not_modified')
    assert.equal(srv.seen[3]?.ifNoneMatch, '"v1"')
    assert.equal(manager.statusOf('lp')?.state, 'OK')
    assert.equal(manager.statusOf('lp')?.last_error, undefined)
    assert.equal(manager.statusOf('lp')?.active_revision, 'rev-lp')
  })
})
