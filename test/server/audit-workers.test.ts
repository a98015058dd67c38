/**
 * `portcullis serve --workers 2 --audit-dir`: each worker process writes its own stream (w1,
 * w2) into the shared directory, and whichever worker answers a /v1/audit/* request reads the
 * whole directory — every answer lists both streams, and an export fetched over HTTP from the
 * group verifies offline against the directory's public key with both workers' events in it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bundlesCopy } from '../helpers/runtime.js'
import { tempDir } from '../helpers/opa.js'
import { serveChild } from '../helpers/serve.js'
import { verifiedCaller } from '../helpers/identity.js'
import { verifyExport } from '../../src/audit/export/verify.js'

const order = { service: 'orders', method: 'GET', path: '/orders/1' }

test('a worker group: every worker serves every stream of the shared audit directory', async (t) => {
  const caller = await verifiedCaller()
  const dir = tempDir(t)
  const auditDir = join(dir, 'audit')
  const config = join(dir, 'portcullis.yaml')
  writeFileSync(config, `server:\n  addr: 127.0.0.1:0\n  shutdown_grace_ms: 2000\nbundles:\n  dir: ${bundlesCopy()}\nlogging:\n  level: info\nidentity: ${JSON.stringify(caller.config())}\naudit:\n  checkpoint:\n    every_events: 1\n    every_seconds: 60\n`)
  const { url, child, exited } = await serveChild(t, ['--config', config, '--audit-dir', auditDir, '--audit-durability', 'sync'], { workers: 2 })

  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', body: JSON.stringify({ input: order }), headers: { 'connection': 'close', 'content-type': 'application/json', ...caller.headers } })
    assert.equal(((await r.json()) as { result: boolean }).result, true)
  }

  // consecutive requests are spread over the workers (round robin; the same spread is shown by
  // the pids /v1/status reports below): every answer lists both streams
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${url}/v1/audit/checkpoint`, { headers: { connection: 'close' } })
    assert.equal(r.status, 200)
    const streams = ((await r.json()) as { result: { streams: Array<{ stream: string, size: number }> } }).result.streams
    assert.deepEqual(streams.map((s) => s.stream), ['w1', 'w2'])
    assert.ok(streams.every((s) => s.size > 0))
  }
  const pids = new Set<number>()
  for (let i = 0; i < 40 && pids.size < 2; i++) {
    const s = await fetch(`${url}/v1/status`, { headers: { connection: 'close' } })
    pids.add(((await s.json()) as { result: { process: { pid: number } } }).result.process.pid)
  }
  assert.equal(pids.size, 2, 'requests reached both workers')
  const exp = await fetch(`${url}/v1/audit/events?path=authz/allow`, { headers: { connection: 'close' } })
  assert.equal(exp.status, 200)
  const file = join(dir, 'export.ndjson')
  writeFileSync(file, Buffer.from(await exp.arrayBuffer()))
  const report = await verifyExport(file, readFileSync(join(auditDir, 'checkpoint-key.pub.pem'), 'utf8'))
  assert.equal(report.ok, true, JSON.stringify(report.problem))
  assert.deepEqual(report.streams.map((s) => s.stream), ['w1', 'w2'])
  assert.ok(report.streams.every((s) => s.events > 0))
  // the 20 decisions, from whichever worker answered them (each checkpointed at once)
  assert.equal(report.events, 20)
  child.kill('SIGTERM')
  await exited
})
