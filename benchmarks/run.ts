/**
 * npm run bench — Portcullis vs OPA over HTTP, side by side on this machine.
 *
 * Starts, on loopback: OPA itself (`opa run --server`, serving policies/authz as a Rego
 * bundle), Portcullis (serving the compiled bundles/authz.tar.gz), a fastify server that
 * answers a constant (the ceiling the targets are read against) and, for reference, a bare
 * node:http server answering the same constant. Drives each with the same load generator, the
 * same inputs and the same connection count, and prints decisions per second and p50/p99
 * latency with ratios, for: unique inputs (cache misses), repeated inputs (cache hits), a
 * JWT-SVID verified per request, with 1 worker and with all cores; then p99 at half the
 * maximum load. Every run is bounded in time (BENCH_SECONDS, default 5).
 *
 * Load generator: wrk (C, `apt-get install wrk`) when it is on PATH, because autocannon runs
 * in JavaScript and saturates before a fast server does; autocannon otherwise, or with
 * BENCH_LOAD=autocannon. The half-load runs use benchmarks/paced.ts, an open-loop generator
 * that holds a rate evenly (autocannon's rate limit sends each second's quota in a burst and
 * reports whole milliseconds; wrk cannot hold a rate), on Portcullis and, at the same rates,
 * on the fastify ceiling, so the machine's own tail latency is visible next to ours.
 *
 *   npm run bench            (needs `npm run build` and `npm run install:opa`)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { repoRoot, requireOpa } from '../scripts/lib/opa.js'
import { machine } from './lib.js'
import { bodyOf, frontend, type Inputs } from './inputs.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16)
const cores = availableParallelism()
const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
const children: ChildProcess[] = []

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

async function waitReady (url: string, init?: RequestInit): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      const r = await fetch(url, init)
      if (r.status < 500) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not become ready`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

// With one server worker, the server is pinned to CPU 0 and this process (the load generator)
// to the other CPUs, so the two do not compete for a core; every server gets the same treatment.
const PIN = process.env.BENCH_PIN !== '0' && cores > 1 && existsSync('/usr/bin/taskset')
function pinLoadGenerator (workers: number): void {
  if (!PIN) return
  const cpus = workers === 1 ? `1-${cores - 1}` : `0-${cores - 1}`
  execFileSync('taskset', ['-a', '-cp', cpus, String(process.pid)], { stdio: 'ignore' })
}

function start (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, workers = cores): ChildProcess {
  const pinned = PIN && workers === 1
  const child = spawn(pinned ? 'taskset' : cmd, pinned ? ['-c', '0', cmd, ...args] : args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env }, cwd: repoRoot })
  children.push(child)
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  })
}

interface Run { rps: number, p50: number, p99: number, errors: number }

function onPath (bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, bin))) return join(dir, bin)
  }
  return undefined
}
const WRK = process.env.BENCH_LOAD === 'autocannon' ? undefined : onPath('wrk')


/** wrk's Lua request generator for one kind of input (the same bodies as the autocannon runs). */
function wrkScript (inputs: Inputs, headers: Record<string, string>): string {
  const file = join(work, `wrk-${inputs}-${Object.keys(headers).length}.lua`)
  const hdrs = Object.entries({ 'content-type': 'application/json', ...headers }).map(([k, v]) => `[${JSON.stringify(k)}]=${JSON.stringify(v)}`).join(', ')
  const lua = inputs === 'unique'
    ? `local i = 0\nlocal h = {${hdrs}}\nrequest = function()\n  i = i + 1\n  return wrk.format("POST", "/v1/data/authz/allow", h, '${bodyOf('unique', -1).replace('"/orders/-1"', `"/orders/' .. i .. '"`)}')\nend\n`
    : `wrk.method = "POST"\nwrk.path = "/v1/data/authz/allow"\n${Object.entries({ 'content-type': 'application/json', ...headers }).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`).join('\n')}\nwrk.body = '${bodyOf(inputs, 0)}'\n`
  writeFileSync(file, lua)
  return file
}

function ms (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n
}

async function loadWrk (wrk: string, url: string, inputs: Inputs, headers: Record<string, string>, workers: number): Promise<Run> {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', wrkScript(inputs, headers), `${url}/v1/data/authz/allow`]
  // a pinned run keeps wrk off the server's CPU, as the autocannon runs keep this process off it
  const pinned = PIN && workers === 1
  const out = await new Promise<string>((resolve, reject) => {
    execFile(pinned ? 'taskset' : wrk, pinned ? ['-c', `1-${cores - 1}`, wrk, ...args] : args, { encoding: 'utf8' }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)
  const pct = (p: string): number => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    return m === null ? NaN : Math.round(ms(m[1] as string, m[2] as string) * 100) / 100
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const sockErr = /Socket errors:(.*)/.exec(out)?.[1]?.match(/\d+/g)?.reduce((a, b) => a + Number(b), 0) ?? 0
  return { rps, p50: pct('50'), p99: pct('99'), errors: non2xx + sockErr }
}

/**
 * Fixed-rate run (open loop, see paced.ts) in a process of its own, pinned off the server's CPU
 * for 1-worker servers, where it also spins for even spacing.
 */
async function atRate (url: string, inputs: Inputs, rate: number, workers: number): Promise<Run> {
  const pinned = PIN && workers === 1
  const args = ['--import', 'tsx', 'benchmarks/paced.ts', url, inputs, String(rate), String(SECONDS), String(CONNECTIONS), pinned ? 'spin' : 'tick']
  const out = await new Promise<string>((resolve, reject) => {
    execFile(pinned ? 'taskset' : process.execPath, pinned ? ['-c', `1-${cores - 1}`, process.execPath, ...args] : args, { encoding: 'utf8', cwd: repoRoot }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const r = JSON.parse(out) as { rps: number, p50: number, p99: number, errors: number }
  return { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors }
}

/** Maximum-rate run: wrk when available, else autocannon. */
async function max (url: string, inputs: Inputs, workers: number, headers: Record<string, string> = {}): Promise<Run> {
  if (WRK !== undefined) return await loadWrk(WRK, url, inputs, headers, workers)
  return await load(url, (i) => bodyOf(inputs, i), headers)
}

async function load (url: string, body: (i: number) => string, headers: Record<string, string> = {}, rate?: number): Promise<Run> {
  let i = 0
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    ...(rate !== undefined ? { overallRate: rate } : {}),
    requests: [{
      method: 'POST',
      path: '/v1/data/authz/allow',
      headers: { 'content-type': 'application/json', ...headers },
      setupRequest: (req) => ({ ...req, body: body(i++) }),
    }],
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx + result.timeouts }
}


async function main (): Promise<void> {
  const opa = requireOpa()
  // JWT-SVID issuer for the identity scenario (key generated here, token signed here).
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  writeFileSync(join(work, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', use: 'jwt-svid', alg: 'ES256' }] }))
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject(frontend).setAudience('portcullis').setExpirationTime('1h').sign(privateKey as CryptoKey)

  const portcullisConfig = (identity: boolean): string => {
    const file = join(work, `portcullis-${identity ? 'jwt' : 'plain'}.yaml`)
    writeFileSync(file, [
      'server:', '  addr: 127.0.0.1:0', 'bundles:', `  dir: ${join(work, 'bundles')}`, '  watch: false', 'logging:', '  level: error',
      ...(identity ? ['identity:', '  trust_domains:', '    example.org:', `      jwt_authorities: [${join(work, 'jwks.json')}]`, '  jwt_svid:', '    audiences: [portcullis]'] : []),
    ].join('\n') + '\n')
    return file
  }
  const { cpSync, mkdirSync } = await import('node:fs')
  mkdirSync(join(work, 'bundles'))
  cpSync(join(repoRoot, 'bundles', 'authz.tar.gz'), join(work, 'bundles', 'authz.tar.gz'))

  const rows: string[] = []
  const results: Record<string, Run> = {}
  const record = (name: string, r: Run): void => {
    results[name] = r
    rows.push(`| ${name} | ${Math.round(r.rps).toLocaleString('en-US')} | ${r.p50} | ${r.p99} | ${r.errors} |`)
    console.error(`${name}: ${Math.round(r.rps)} req/s p50 ${r.p50} ms p99 ${r.p99} ms errors ${r.errors}`)
  }

  for (const workers of [1, cores]) {
    const tag = `${workers}w`
    const half = { unique: 1, repeated: 1 }
    pinLoadGenerator(workers)
    // OPA with the same parallelism
    {
      const port = await freePort()
      const child = start(opa, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', '--bundle', 'policies/authz', '--ignore', '*_test.rego'], { GOMAXPROCS: String(workers) }, workers)
      await waitReady(`http://127.0.0.1:${port}/health`)
      record(`opa ${tag} unique`, await max(`http://127.0.0.1:${port}`, 'unique', workers))
      record(`opa ${tag} repeated`, await max(`http://127.0.0.1:${port}`, 'repeated', workers))
      await stop(child)
    }
    // the ceiling (fastify answering a constant) and, for reference, bare node:http doing the same
    for (const kind of ['fastify', 'node'] as const) {
      const port = await freePort()
      const child = start(process.execPath, ['--import', 'tsx', 'benchmarks/ceiling-server.ts', String(port), String(workers), kind], {}, workers)
      await waitReady(`http://127.0.0.1:${port}/v1/data/x`, { method: 'POST', body: '{}' })
      record(kind === 'fastify' ? `ceiling ${tag} constant` : `node:http ${tag} constant`, await max(`http://127.0.0.1:${port}`, 'unique', workers))
      await stop(child)
    }
    // Portcullis, plain and with a JWT-SVID verified per request
    for (const identity of [false, true]) {
      const port = await freePort()
      const child = start(process.execPath, ['dist/cli/main.js', 'serve', '--config', portcullisConfig(identity), '--workers', String(workers), '--addr', `127.0.0.1:${port}`], {}, workers)
      await waitReady(`http://127.0.0.1:${port}/health?bundles`)
      if (identity) {
        record(`portcullis ${tag} jwt-svid repeated`, await max(`http://127.0.0.1:${port}`, 'noIdentity', workers, { authorization: `Bearer ${token}` }))
      } else {
        const u = await max(`http://127.0.0.1:${port}`, 'unique', workers)
        record(`portcullis ${tag} unique`, u)
        const r = await max(`http://127.0.0.1:${port}`, 'repeated', workers)
        record(`portcullis ${tag} repeated`, r)
        // p99 at half the maximum rate just measured
        half.unique = Math.max(1, Math.round(u.rps / 2))
        half.repeated = Math.max(1, Math.round(r.rps / 2))
        record(`portcullis ${tag} unique @50% load`, await atRate(`http://127.0.0.1:${port}`, 'unique', half.unique, workers))
        record(`portcullis ${tag} repeated @50% load`, await atRate(`http://127.0.0.1:${port}`, 'repeated', half.repeated, workers))
      }
      await stop(child)
    }
    // the ceiling at the same rates: what this machine's tail looks like without Portcullis
    {
      const port = await freePort()
      const child = start(process.execPath, ['--import', 'tsx', 'benchmarks/ceiling-server.ts', String(port), String(workers), 'fastify'], {}, workers)
      await waitReady(`http://127.0.0.1:${port}/v1/data/x`, { method: 'POST', body: '{}' })
      record(`ceiling ${tag} constant @ portcullis unique 50%`, await atRate(`http://127.0.0.1:${port}`, 'unique', half.unique, workers))
      record(`ceiling ${tag} constant @ portcullis repeated 50%`, await atRate(`http://127.0.0.1:${port}`, 'repeated', half.repeated, workers))
      await stop(child)
    }
  }

  const ratio = (a: string, b: string): string => ((results[a]?.rps ?? 0) / (results[b]?.rps ?? 1)).toFixed(2)
  console.log(`machine: ${machine()}`)
  console.log(`load: ${WRK !== undefined ? 'wrk (1 thread)' : 'autocannon in-process'} for maximum rates, benchmarks/paced.ts (open loop${PIN ? ', spinning when pinned' : ''}) for the @50% runs; ${CONNECTIONS} connections, ${SECONDS} s per run, policy policies/authz (data.authz.allow)${PIN ? '; 1-worker servers pinned to CPU 0, load generator to the other CPUs' : ''}`)
  console.log('')
  console.log('| run | decisions/s | p50 ms | p99 ms | errors |')
  console.log('|---|---:|---:|---:|---:|')
  for (const r of rows) console.log(r)
  console.log('')
  for (const w of [1, cores]) {
    const t = `${w}w`
    console.log(`${t}: portcullis/opa unique ${ratio(`portcullis ${t} unique`, `opa ${t} unique`)}x, repeated ${ratio(`portcullis ${t} repeated`, `opa ${t} repeated`)}x; ` +
      `portcullis/ceiling unique ${ratio(`portcullis ${t} unique`, `ceiling ${t} constant`)}, repeated ${ratio(`portcullis ${t} repeated`, `ceiling ${t} constant`)}; ` +
      `portcullis/node:http unique ${ratio(`portcullis ${t} unique`, `node:http ${t} constant`)}, repeated ${ratio(`portcullis ${t} repeated`, `node:http ${t} constant`)}; ` +
      `jwt-svid/opa repeated ${ratio(`portcullis ${t} jwt-svid repeated`, `opa ${t} repeated`)}x`)
  }
}

try {
  await main()
} finally {
  await Promise.all(children.map(stop))
  rmSync(work, { recursive: true, force: true })
}
