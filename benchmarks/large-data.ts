/**
 * npm run bench:large-data — large data documents, Portcullis vs OPA, side by side (issue 12).
 *
 * For each size (LD_SIZES, MB, default 1,10,40,100) it generates an entitlement data set of the
 * issue's shape (users with roles and attributes, ~150 bytes per user: 38 MB is ~250,000 users;
 * generated into a temporary directory, never committed) and a four-line policy, builds it with
 * the real opa twice from the same sources (a wasm bundle for Portcullis, a Rego bundle for
 * OPA; the data.json bytes are the same), and measures on loopback:
 *   - time until the first correct answer: from spawning the server to the first
 *     `POST /v1/data/entitlements/allow` that answers true for a user the data grants;
 *   - RSS once ready: VmRSS of the server process (Portcullis: of each worker and of the whole
 *     process group, primary included; 1 worker and the default of one per core);
 *   - hot reload under load (LD_RELOAD_SIZES, default 40): an open-loop generator sends
 *     LD_RATE requests/s (default 200) for LD_RELOAD_SECONDS (default 16) while a new
 *     revision of the bundle replaces the old one halfway through; it counts failed or wrong
 *     answers, compares p99 during the swap (from the swap until the new revision answers, plus
 *     one second) with the steady p99 before it, and samples the group's RSS every 50 ms.
 * With LD_SIGNED=1 both bundles are signed (`opa build --signing-key`, ES256, a key generated
 * per run) and both servers verify them (Portcullis `bundles.signing`, signatures required;
 * OPA `--verification-key`), so the times include signature verification.
 * Every server is killed at the end of its run; everything is bounded in time.
 *
 * Portcullis runs as `npm start` runs it: bin/portcullis.cjs, the bundled build with its code cache.
 *
 *   flock /tmp/bench.lock npm run bench:large-data     (needs npm run build, npm run install:opa)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot, requireOpa } from '../scripts/lib/opa.js'
import { machine } from './lib.js'
import { generateData, probe, STEADY } from './entitlements-data.js'

const SIZES = (process.env.LD_SIZES ?? '1,10,40,100').split(',').map(Number)
const RELOAD_SIZES = (process.env.LD_RELOAD_SIZES ?? '40').split(',').filter((s) => s !== '').map(Number)
const RATE = Number(process.env.LD_RATE ?? 200)
const RELOAD_SECONDS = Number(process.env.LD_RELOAD_SECONDS ?? 16)
const SIGNED = process.env.LD_SIGNED === '1'
const READY_TIMEOUT_MS = 180_000
/** What `npm start` and the `portcullis` command run: the launcher of the bundled build (issue 12). */
const ENTRY = 'bin/portcullis.cjs'
const cores = availableParallelism()
const work = mkdtempSync(join(tmpdir(), 'portcullis-large-data-'))
const children: ChildProcess[] = []

const POLICY = `package entitlements
import rego.v1
default allow := false
allow if input.role in data.users[input.user].roles
`

let keyFiles: { priv: string, pub: string } | undefined
/** The ES256 key pair of this run (LD_SIGNED), as PEM files in the work directory. */
function signingKey (): { priv: string, pub: string } {
  if (keyFiles === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    keyFiles = { priv: join(work, 'signing.key'), pub: join(work, 'signing.pub') }
    writeFileSync(keyFiles.priv, privateKey.export({ type: 'pkcs8', format: 'pem' }))
    writeFileSync(keyFiles.pub, publicKey.export({ type: 'spki', format: 'pem' }))
  }
  return keyFiles
}

/** Builds the wasm bundle (Portcullis) and the Rego bundle (OPA) of one data set from the same sources. */
function buildBundles (opa: string, sizeMb: number, revision: number): { wasm: string, rego: string, dataBytes: number } {
  const src = join(work, `src-${sizeMb}-${revision}`)
  mkdirSync(join(src, 'entitlements'), { recursive: true })
  writeFileSync(join(src, 'entitlements', 'policy.rego'), POLICY)
  const data = generateData(sizeMb * 1e6, revision)
  writeFileSync(join(src, 'data.json'), data)
  const wasm = join(work, `wasm-${sizeMb}-${revision}.tar.gz`)
  const rego = join(work, `rego-${sizeMb}-${revision}.tar.gz`)
  const sign = SIGNED ? ['--signing-key', signingKey().priv, '--signing-alg', 'ES256'] : []
  execFileSync(opa, ['build', '-t', 'wasm', '-e', 'entitlements/allow', '-b', '.', '-o', wasm, '--revision', `r${revision}`, ...sign], { cwd: src, stdio: 'ignore' })
  execFileSync(opa, ['build', '-b', '.', '-o', rego, '--revision', `r${revision}`, ...sign], { cwd: src, stdio: 'ignore' })
  rmSync(src, { recursive: true, force: true })
  return { wasm, rego, dataBytes: data.length }
}

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 })

/** POSTs an input to the entitlements decision; resolves to the result (undefined on any failure) and the latency. */
function decide (port: number, input: { user: string, role: string }, timeoutMs = 5000): Promise<{ result: unknown, ms: number, ok: boolean }> {
  const body = JSON.stringify({ input })
  const t0 = performance.now()
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/data/entitlements/allow', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        let result: unknown
        try { result = (JSON.parse(Buffer.concat(chunks).toString()) as { result?: unknown }).result } catch {}
        resolve({ result, ms: performance.now() - t0, ok: res.statusCode === 200 })
      })
      res.on('error', () => resolve({ result: undefined, ms: performance.now() - t0, ok: false }))
    })
    req.on('error', () => resolve({ result: undefined, ms: performance.now() - t0, ok: false }))
    req.on('timeout', () => req.destroy())
    req.end(body)
  })
}

function spawnServer (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env }, cwd: repoRoot })
  children.push(child)
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  })
}

function statusKb (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

function childPids (pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number)
  } catch {
    return []
  }
}

/** VmRSS (MB) of a server: the process itself and each child (cluster workers). */
function rssOf (pid: number): { total: number, self: number, workers: number[] } {
  const self = statusKb(pid, 'VmRSS') / 1024
  const workers = childPids(pid).map((c) => statusKb(c, 'VmRSS') / 1024)
  return { total: self + workers.reduce((a, b) => a + b, 0), self, workers }
}

/** Polls until the server answers `input` with true; resolves to ms since `t0`. */
async function untilAnswer (port: number, input: { user: string, role: string }, t0: number, child: ChildProcess): Promise<number> {
  for (;;) {
    const r = await decide(port, input, 2000)
    if (r.ok && r.result === true) return performance.now() - t0
    if (child.exitCode !== null) throw new Error('server exited before answering')
    if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error('no correct answer within the time limit')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface Started { child: ChildProcess, port: number, bundlePath: string }

async function startOpa (opa: string, bundle: string, watch: boolean): Promise<Started> {
  const port = await freePort()
  const dir = join(work, `opa-${port}`)
  mkdirSync(dir)
  const bundlePath = join(dir, 'entitlements.tar.gz')
  copyFileSync(bundle, bundlePath)
  const verify = SIGNED ? ['--verification-key', signingKey().pub, '--signing-alg', 'ES256'] : []
  const child = spawnServer(opa, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', ...(watch ? ['--watch'] : []), ...verify, '--bundle', bundlePath])
  return { child, port, bundlePath }
}

async function startPortcullis (bundle: string, workers: number): Promise<Started> {
  const port = await freePort()
  const dir = join(work, `portcullis-${port}`)
  mkdirSync(join(dir, 'bundles'), { recursive: true })
  const bundlePath = join(dir, 'bundles', 'entitlements.tar.gz')
  copyFileSync(bundle, bundlePath)
  const config = join(dir, 'portcullis.yaml')
  const signing = SIGNED ? ['  signing:', '    required: true', '    keys:', '      default:', `        key_file: ${signingKey().pub}`, '        algorithm: ES256'] : []
  writeFileSync(config, ['server:', '  addr: 127.0.0.1:0', 'bundles:', `  dir: ${join(dir, 'bundles')}`, '  watch: true', ...signing, 'logging:', '  level: error'].join('\n') + '\n')
  const child = spawnServer(process.execPath, [ENTRY, 'serve', '--config', config, '--workers', String(workers), '--addr', `127.0.0.1:${port}`])
  return { child, port, bundlePath }
}

interface ReadyRow { server: string, sizeMb: number, users: string, readyMs: number, rssTotal: number, rssPerWorker: number }

async function measureReady (name: string, sizeMb: number, launch: () => Promise<Started>): Promise<ReadyRow> {
  const t0 = performance.now()
  const s = await launch()
  const readyMs = await untilAnswer(s.port, STEADY, t0, s.child)
  // Let the other workers of a group finish loading too before reading memory.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  for (let i = 0; i < 20; i++) { if ((await decide(s.port, STEADY)).result !== true) throw new Error(`${name}: wrong answer once ready`) }
  const rss = rssOf(s.child.pid as number)
  await stop(s.child)
  const perWorker = rss.workers.length > 0 ? Math.max(...rss.workers) : rss.self
  const row = { server: name, sizeMb, users: '', readyMs, rssTotal: rss.total, rssPerWorker: perWorker }
  console.error(`${name} ${sizeMb} MB: first correct answer ${Math.round(readyMs)} ms, RSS ${Math.round(rss.total)} MB (per worker ${Math.round(perWorker)} MB)`)
  return row
}

/** Time until a Portcullis worker with an empty bundles directory answers /health: the process start every row above includes. */
async function startupFloor (): Promise<number> {
  const port = await freePort()
  const dir = join(work, `floor-${port}`)
  mkdirSync(join(dir, 'bundles'), { recursive: true })
  const config = join(dir, 'portcullis.yaml')
  const signing = SIGNED ? ['  signing:', '    required: true', '    keys:', '      default:', `        key_file: ${signingKey().pub}`, '        algorithm: ES256'] : []
  writeFileSync(config, ['server:', '  addr: 127.0.0.1:0', 'bundles:', `  dir: ${join(dir, 'bundles')}`, '  watch: true', ...signing, 'logging:', '  level: error'].join('\n') + '\n')
  const t0 = performance.now()
  const child = spawnServer(process.execPath, [ENTRY, 'serve', '--config', config, '--workers', '1', '--addr', `127.0.0.1:${port}`])
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/health', agent }, (res) => { res.resume(); resolve(res.statusCode === 200) })
      req.on('error', () => resolve(false))
      req.end()
    })
    if (ok) break
    if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error('no /health')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const ms = performance.now() - t0
  await stop(child)
  console.error(`portcullis startup floor (no data): ${Math.round(ms)} ms`)
  return ms
}

interface ReloadRow { server: string, sizeMb: number, sent: number, failed: number, steadyP99: number, swapP99: number, swapMs: number, steadyRss: number, peakRss: number }

const p99 = (xs: number[]): number => {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] as number
}

async function measureReload (name: string, sizeMb: number, launch: () => Promise<Started>, next: string): Promise<ReloadRow> {
  const s = await launch()
  await untilAnswer(s.port, STEADY, performance.now(), s.child)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const pid = s.child.pid as number
  const samples: Array<{ t: number, rss: number }> = []
  const sampler = setInterval(() => samples.push({ t: performance.now(), rss: rssOf(pid).total }), 50)
  const results: Array<{ at: number, ms: number, good: boolean }> = []
  const pending: Array<Promise<void>> = []
  const start = performance.now()
  const total = Math.round(RATE * RELOAD_SECONDS)
  let swapAt = 0
  let swappedAt = 0
  // Open loop: request i falls due at start + i/RATE whatever happened to earlier ones.
  const swapper = (async () => {
    await new Promise((resolve) => setTimeout(resolve, (RELOAD_SECONDS * 1000) / 2))
    const tmp = join(s.bundlePath, '..', '.entitlements.tar.gz.tmp')
    copyFileSync(next, tmp)
    swapAt = performance.now()
    renameSync(tmp, s.bundlePath)
    const deadline = swapAt + READY_TIMEOUT_MS
    while (performance.now() < deadline) {
      const r = await decide(s.port, probe(2), 2000)
      if (r.ok && r.result === true) { swappedAt = performance.now(); return }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE
    const wait = due - performance.now()
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    pending.push(decide(s.port, STEADY, 10_000).then((r) => { results.push({ at: due, ms: r.ms, good: r.ok && r.result === true }) }))
  }
  await Promise.all(pending)
  await swapper
  clearInterval(sampler)
  await stop(s.child)
  const swapEnd = (swappedAt === 0 ? performance.now() : swappedAt) + 1000
  const steady = results.filter((r) => r.at < swapAt).map((r) => r.ms)
  const during = results.filter((r) => r.at >= swapAt && r.at <= swapEnd).map((r) => r.ms)
  const steadyRss = Math.max(...samples.filter((x) => x.t < swapAt).map((x) => x.rss))
  const peakRss = Math.max(...samples.filter((x) => x.t >= swapAt).map((x) => x.rss))
  const row = { server: name, sizeMb, sent: results.length, failed: results.filter((r) => !r.good).length, steadyP99: p99(steady), swapP99: p99(during), swapMs: swappedAt === 0 ? NaN : swappedAt - swapAt, steadyRss, peakRss }
  console.error(`${name} ${sizeMb} MB reload: ${row.failed}/${row.sent} failed, p99 steady ${row.steadyP99.toFixed(1)} ms, during swap ${row.swapP99.toFixed(1)} ms, new revision after ${Math.round(row.swapMs)} ms, RSS steady ${Math.round(steadyRss)} MB peak ${Math.round(peakRss)} MB`)
  return row
}

async function main (): Promise<void> {
  const opa = requireOpa()
  if (!existsSync(join(repoRoot, 'dist', 'portcullis.cjs'))) throw new Error('run npm run build first (the benchmark serves the bundled build, as `npm start` does)')
  console.error(`work dir ${work}; ${SIGNED ? 'signed bundles; ' : ''}load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  const ready: ReadyRow[] = []
  const reload: ReloadRow[] = []
  const floor = await startupFloor()
  for (const size of SIZES) {
    const b = buildBundles(opa, size, 1)
    ready.push(await measureReady('opa', size, async () => startOpa(opa, b.rego, false)))
    ready.push(await measureReady('portcullis 1 worker', size, async () => startPortcullis(b.wasm, 1)))
    ready.push(await measureReady(`portcullis ${cores} workers`, size, async () => startPortcullis(b.wasm, cores)))
    if (RELOAD_SIZES.includes(size)) {
      const n = buildBundles(opa, size, 2)
      reload.push(await measureReload('opa', size, async () => startOpa(opa, b.rego, true), n.rego))
      reload.push(await measureReload('portcullis 1 worker', size, async () => startPortcullis(b.wasm, 1), n.wasm))
      reload.push(await measureReload(`portcullis ${cores} workers`, size, async () => startPortcullis(b.wasm, cores), n.wasm))
    }
  }

  console.log(`machine: ${machine()}; ${SIGNED ? 'signed bundles (ES256), verified by both servers; ' : ''}load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  console.log('')
  console.log('| data | server | first correct answer (ms) | RSS ready, whole server (MB) | RSS per worker (MB) | time vs OPA | RSS/worker vs OPA | whole vs OPA |')
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|')
  for (const r of ready) {
    const o = ready.find((x) => x.server === 'opa' && x.sizeMb === r.sizeMb) as ReadyRow
    console.log(`| ${r.sizeMb} MB | ${r.server} | ${Math.round(r.readyMs)} | ${Math.round(r.rssTotal)} | ${Math.round(r.rssPerWorker)} | ${(r.readyMs / o.readyMs).toFixed(2)}× | ${(r.rssPerWorker / o.rssPerWorker).toFixed(2)}× | ${(r.rssTotal / o.rssTotal).toFixed(2)}× |`)
  }
  console.log('')
  console.log(`Portcullis startup floor (1 worker, empty bundles directory, until /health answers): ${Math.round(floor)} ms`)
  if (reload.length > 0) {
    console.log('')
    console.log(`Hot reload under load (${RATE} req/s open loop for ${RELOAD_SECONDS} s, new revision halfway):`)
    console.log('')
    console.log('| data | server | requests | failed or wrong | p99 steady (ms) | p99 during swap (ms) | swap p99 / steady | new revision served after (ms) | RSS steady (MB) | RSS peak in swap (MB) | peak / steady |')
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of reload) {
      console.log(`| ${r.sizeMb} MB | ${r.server} | ${r.sent} | ${r.failed} | ${r.steadyP99.toFixed(1)} | ${r.swapP99.toFixed(1)} | ${(r.swapP99 / r.steadyP99).toFixed(2)}× | ${Math.round(r.swapMs)} | ${Math.round(r.steadyRss)} | ${Math.round(r.peakRss)} | ${(r.peakRss / r.steadyRss).toFixed(2)}× |`)
    }
  }
}

const cleanup = (): void => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  agent.destroy()
  rmSync(work, { recursive: true, force: true })
}
process.on('SIGINT', () => { cleanup(); process.exit(130) })
main().then(cleanup, (err: unknown) => { cleanup(); console.error(err); process.exit(1) })
