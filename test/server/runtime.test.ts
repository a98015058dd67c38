/**
 * createRuntime's lifecycle (src/server/runtime.ts): a start that fails after the bundle
 * downloaders have started leaves nothing running. The bundle server is a real node:http server
 * on 127.0.0.1 that fails every request with 500, so a downloader left running retries on
 * OPA's backoff (100 ms, ×1.6 per retry): several requests a second that the server counts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/load.js'
import { createRuntime } from '../../src/server/runtime.js'
import { sleep } from '../helpers/wait.js'

// Regression: downloaders started before build() and the listener factories, and were left
// polling when one of those threw.
test('a listener factory that throws closes the bundle downloaders before the error propagates', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-runtime-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  let requests = 0
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    requests++
    res.writeHead(500).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const file = join(dir, 'portcullis.yaml')
  writeFileSync(file, `
server: { addr: "127.0.0.1:0", workers: 1 }
logging: { level: silent }
services:
  s1:
    url: http://127.0.0.1:${(server.address() as { port: number }).port}
bundles:
  dir: ${JSON.stringify(join(dir, 'no-such-dir'))}
  authz:
    service: s1
    polling: { min_delay_seconds: 1, max_delay_seconds: 60 }
`)
  const config = loadConfig({ file, env: {} })
  const boom = new Error('listener factory failed')
  await assert.rejects(createRuntime(config, {}, {
    logger: pino({ level: 'silent' }),
    listeners: [() => { throw boom }],
  }), (err) => err === boom)
  // A request the downloader wrote just before it was closed can still reach the server after the
  // rejection (the client aborts its side; the bytes are already on the wire): let it land first.
  await sleep(300)
  const afterStart = requests
  // A downloader left running would retry at ~100, 260, 520, 930, 1580, 2230 ms: at least three
  // requests in this window. A closed one makes none. (The window bounds the check; it measures no speed.)
  await sleep(2000)
  assert.equal(requests, afterStart, 'no request after the failed start: the downloader was closed')
  // (How many requests the downloader made before the failure depends on how long the start took
  // on a busy machine — its retries begin after ~100 ms — so that count is not asserted.)
})

test('stop(): the listeners beside the Data API stop first, while it still listens; a second stop() is the same stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-runtime-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'portcullis.yaml')
  writeFileSync(file, `
server: { addr: "127.0.0.1:0", workers: 1 }
logging: { level: silent }
bundles: { dir: ${JSON.stringify(join(process.cwd(), 'bundles'))}, watch: true }
`)
  const config = loadConfig({ file, env: {} })
  const events: string[] = []
  let app: { server: { listening: boolean } } | undefined
  const runtime = await createRuntime(config, {}, {
    logger: pino({ level: 'silent' }),
    listeners: [() => ({
      name: 'recorder',
      start: async () => { events.push('listener start'); return [] },
      stop: async () => { events.push(`listener stop (data api listening: ${String(app?.server.listening)})`) },
    })],
  })
  app = runtime.app
  await runtime.start()
  assert.equal(runtime.app.server.listening, true)
  await Promise.all([runtime.stop(), runtime.stop()])
  await runtime.stop()
  assert.deepEqual(events, ['listener start', 'listener stop (data api listening: true)'])
  assert.equal(runtime.app.server.listening, false)
})
