/**
 * Console jobs: one at a time per kind (409 PORTCULLIS_CONSOLE_BUSY), progress while running,
 * the last result kept; and in a real worker group (`portcullis serve --workers 2`) a verify job
 * started on one worker is answered by every worker, because its state lives in the primary.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { JobSlot, LocalJobRegistry } from '../../src/console/jobs.js'
import { PortcullisError } from '../../src/errors.js'
import { bundlesCopy } from '../helpers/runtime.js'
import { tempDir } from '../helpers/opa.js'
import { serveChild } from '../helpers/serve.js'
import { verifiedCaller } from '../helpers/identity.js'

test('one job of a kind at a time; progress visible; the result kept; failures carry their code', async () => {
  const registry = new LocalJobRegistry()
  const slot = new JobSlot<{ n: number }>('verify', registry)
  const other = new JobSlot<{ n: number }>('replay', registry)
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let report: (p: { n: number }) => void = () => {}
  const id = await slot.start({ n: 0 }, async (progress) => { report = progress; await gate; return { ok: true } })
  await assert.rejects(slot.start({ n: 0 }, async () => 1), (e: unknown) => e instanceof PortcullisError && e.code === 'PORTCULLIS_CONSOLE_BUSY')
  // another kind is independent
  const r = await other.start({ n: 0 }, async () => { throw new PortcullisError('PORTCULLIS_BUNDLE_UNSIGNED', 'unsigned') })
  report({ n: 5 })
  assert.deepEqual(await slot.get(id), { state: 'running', progress: { n: 5 } })
  release()
  for (let i = 0; i < 100 && (await slot.get(id))?.state === 'running'; i++) await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(await slot.get(id), { state: 'done', progress: { n: 5 }, report: { ok: true } })
  assert.equal((await other.get(r))?.error?.code, 'PORTCULLIS_BUNDLE_UNSIGNED')
  const next = await slot.start({ n: 0 }, async () => 2)
  assert.equal(await slot.get(id), undefined, 'only the last job is kept')
  assert.notEqual(next, id)
})

test('in a worker group every worker answers for a verify job', async (t) => {
  const caller = await verifiedCaller()
  const dir = tempDir(t)
  const audit = join(dir, 'audit')
  mkdirSync(audit)
  const config = join(dir, 'portcullis.yaml')
  writeFileSync(config, `server:\n  addr: 127.0.0.1:0\n  shutdown_grace_ms: 2000\nbundles:\n  dir: ${bundlesCopy()}\nlogging:\n  level: info\naudit:\n  enabled: true\n  dir: ${audit}\n  checkpoint:\n    every_events: 2\nidentity: ${JSON.stringify(caller.config())}\n`)
  const { url } = await serveChild(t, ['--config', config], { workers: 2 })
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', body: JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/1' } }), headers: { connection: 'close', 'content-type': 'application/json', ...caller.headers } })
    assert.equal(r.status, 200)
    await r.arrayBuffer()
  }
  // new connections take turns between the workers (cluster round robin): shown on /v1/status
  const pid = async (): Promise<number> => ((await (await fetch(`${url}/v1/status`, { headers: { connection: 'close' } })).json()) as { result: { process: { pid: number } } }).result.process.pid
  const pids = new Set<number>()
  for (let i = 0; i < 20 && pids.size < 2; i++) pids.add(await pid())
  assert.equal(pids.size, 2, 'requests reached both workers')
  const start = await fetch(`${url}/v1/console/verify`, { method: 'POST', headers: { connection: 'close', 'x-portcullis-console': '1' } })
  assert.equal(start.status, 202)
  const { job } = await start.json() as { job: string }
  // at least 6 job reads on fresh connections: both workers answer (each read alone, so turns alternate)
  let state = 'running'
  let reads = 0
  for (let i = 0; i < 400 && (state === 'running' || reads < 6); i++) {
    const v = await fetch(`${url}/v1/console/verify/${job}`, { headers: { connection: 'close' } })
    assert.equal(v.status, 200, 'every worker knows the job')
    const body = await v.json() as { state: string, report?: { ok: boolean, streams: unknown[] } }
    reads++
    state = body.state
    if (state === 'done') {
      assert.equal(body.report?.ok, true)
      assert.ok((body.report?.streams.length ?? 0) >= 1)
    }
    if (state === 'running') await new Promise((resolve) => setTimeout(resolve, 20))
  }
  assert.equal(state, 'done')
})
