/**
 * `portcullis serve` as a process: a worker group behind one port with one /metrics view,
 * and graceful shutdown on SIGTERM (in-flight requests finish, exit code 0).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bundlesCopy } from '../helpers/runtime.js'
import { tempDir } from '../helpers/opa.js'
import { verifiedCaller, type VerifiedCaller } from '../helpers/identity.js'
import { serveChild, type ServeChild } from '../helpers/serve.js'

const order = { service: 'orders', method: 'GET', path: '/orders/1' }

async function serve (t: { after: (fn: () => void) => void }, workers: number, caller: VerifiedCaller): Promise<ServeChild> {
  return await serveChild(t, ['--config', writeConfig(t, caller, 5000)], { workers })
}

function writeConfig (t: { after: (fn: () => void) => void }, caller: VerifiedCaller, graceMs: number): string {
  const config = join(tempDir(t), 'portcullis.yaml')
  writeFileSync(config, `server:\n  addr: 127.0.0.1:0\n  shutdown_grace_ms: ${graceMs}\nbundles:\n  dir: ${bundlesCopy()}\nlogging:\n  level: info\nidentity: ${JSON.stringify(caller.config())}\n`)
  return config
}

async function json (url: string, init?: RequestInit): Promise<{ status: number, body: Record<string, unknown> }> {
  const r = await fetch(url, init)
  return { status: r.status, body: await r.json() as Record<string, unknown> }
}

test('a worker group shares one port and reports one /metrics view', async (t) => {
  const caller = await verifiedCaller()
  const { url } = await serve(t, 2, caller)
  const pids = new Set<number>()
  for (let i = 0; i < 40 && pids.size < 2; i++) {
    const s = await json(`${url}/v1/status`, { headers: { connection: 'close' } })
    pids.add((s.body.result as { process: { pid: number } }).process.pid)
  }
  assert.equal(pids.size, 2, 'requests reached both workers')
  for (let i = 0; i < 10; i++) {
    const r = await json(`${url}/v1/data/authz/allow`, { method: 'POST', body: JSON.stringify({ input: order }), headers: { connection: 'close', ...caller.headers } })
    assert.equal(r.body.result, true)
  }
  const text = await (await fetch(`${url}/metrics`)).text()
  const total = [...text.matchAll(/^portcullis_decisions_total\{[^}]*outcome="allow"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)
  assert.ok(total >= 10, `aggregated allow decisions ${total}`)
  // a flush reaches every worker
  const flushed = await json(`${url}/v1/cache/flush`, { method: 'POST' })
  assert.equal(flushed.status, 200)
})

test('SIGTERM: stop accepting, finish the in-flight request, exit 0', async (t) => {
  const caller = await verifiedCaller()
  const { child, url, exited } = await serve(t, 1, caller)
  const u = new URL(`${url}/v1/data/authz/allow`)
  const body = JSON.stringify({ input: order })
  const response = new Promise<{ status: number, text: string }>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...caller.headers } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    // half the body now; the request is in flight when SIGTERM arrives
    req.write(body.slice(0, 10))
    setTimeout(() => {
      child.kill('SIGTERM')
      setTimeout(() => req.end(body.slice(10)), 300)
    }, 200)
  })
  const r = await response
  assert.equal(r.status, 200)
  assert.equal((JSON.parse(r.text) as { result: boolean }).result, true)
  assert.equal(await exited, 0)
})

test('each worker has a stable slot (its audit stream w<slot>): a crashed worker is replaced in its slot', async (t) => {
  const caller = await verifiedCaller()
  const { child, lines, exited } = await serveChild(t, ['--config', writeConfig(t, caller, 2000)], { workers: 2 })
  const ready = (): Array<{ slot: number, pid: number }> => lines.filter((l) => l.msg === 'worker listening').map((l) => ({ slot: l.slot as number, pid: l.pid as number }))
  const waitReady = async (n: number): Promise<void> => {
    for (let i = 0; i < 600 && ready().length < n; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(ready().length >= n, `${n} workers listening (saw ${ready().length})`)
  }
  await waitReady(2)
  assert.deepEqual(ready().map((r) => r.slot).sort(), [1, 2])
  const victim = ready().find((r) => r.slot === 1) as { slot: number, pid: number }
  process.kill(victim.pid, 'SIGKILL')
  await waitReady(3)
  const replacement = ready()[2] as { slot: number, pid: number }
  assert.equal(replacement.slot, 1)
  assert.notEqual(replacement.pid, victim.pid)
  child.kill('SIGTERM')
  await exited
})
