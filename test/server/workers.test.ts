/**
 * `portcullis serve` as a process: a worker group behind one port with one /metrics view,
 * and graceful shutdown on SIGTERM (in-flight requests finish, exit code 0).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bundlesCopy } from '../helpers/runtime.js'
import { tempDir } from '../helpers/opa.js'
import { buildBundleDir } from '../helpers/bundles.js'
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

test('the workers of a group build large data images one at a time (the build slot), at start and on a hot reload', async (t) => {
  const dir = tempDir(t)
  // A bundle whose data.json is over the off-thread threshold (1 MiB), built by the real opa.
  const build = (revision: string): string => {
    const src = join(dir, `src-${revision}`)
    mkdirSync(join(src, 'big'), { recursive: true })
    writeFileSync(join(src, 'big', 'policy.rego'), 'package big\nimport rego.v1\ndefault allow := false\nallow if data.big.users[input.user].rev == input.rev\n')
    const users: Record<string, { rev: string, pad: string }> = {}
    for (let i = 0; i < 12_000; i++) users[`u${i}`] = { rev: revision, pad: 'x'.repeat(100) }
    writeFileSync(join(src, 'big', 'data.json'), JSON.stringify({ users }))
    return buildBundleDir(src, join(dir, `big-${revision}.tar.gz`), { revision, extraArgs: ['-e', 'big/allow'] })
  }
  const bundles = join(dir, 'bundles')
  mkdirSync(bundles)
  renameSync(build('r1'), join(bundles, 'big.tar.gz'))
  const config = join(dir, 'portcullis.yaml')
  writeFileSync(config, `server:\n  addr: 127.0.0.1:0\nbundles:\n  dir: ${bundles}\n  watch: true\nlogging:\n  level: info\n`)
  const { child, url, lines, exited } = await serveChild(t, ['--config', config], { workers: 2, timeoutMs: 60_000 })
  const events = (): string[] => lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('data image build slot')).map((l) => `${l.msg === 'data image build slot granted' ? 'grant' : 'release'}:${String(l.claim)}`)
  const waitFor = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 600; i++) { if (await ok()) return; await new Promise((resolve) => setTimeout(resolve, 100)) }
    assert.fail(`timed out waiting for ${what}; slot events: ${events().join(' ')}`)
  }
  /** Every one of 12 fresh connections (both workers) answers true for revision `rev`. */
  const allAnswer = async (rev: string): Promise<boolean> => {
    for (let i = 0; i < 12; i++) {
      const r = await fetch(`${url}/v1/data/big/allow`, { method: 'POST', body: JSON.stringify({ input: { user: 'u11999', rev } }), headers: { connection: 'close' } })
      if ((await r.json() as { result?: unknown }).result !== true) return false
    }
    return true
  }
  /** Grants and releases alternate, each release for the claim just granted: never two builds at once. */
  const oneAtATime = (n: number): void => {
    const e = events()
    assert.equal(e.length, 2 * n, `slot events: ${e.join(' ')}`)
    for (let i = 0; i < e.length; i += 2) {
      assert.match(e[i] as string, /^grant:/, e.join(' '))
      assert.equal(e[i + 1], `release:${(e[i] as string).slice('grant:'.length)}`, e.join(' '))
    }
  }
  await waitFor('both workers to answer with r1', async () => await allAnswer('r1'))
  await waitFor('two builds', () => events().length >= 4)
  oneAtATime(2)
  renameSync(build('r2'), join(bundles, 'big.tar.gz'))
  await waitFor('both workers to answer with r2', async () => await allAnswer('r2'))
  await waitFor('four builds', () => events().length >= 8)
  oneAtATime(4)
  child.kill('SIGTERM')
  assert.equal(await exited, 0)
})
