/**
 * npm run bench:audit — what the durable audit trail costs end to end (issue 11): decisions per
 * second and p99 of the same Portcullis build (`dist/`) with audit off and with the durable log
 * in `async`, `batched` and `sync` mode, under the same load as `npm run bench`'s unique-input
 * run (POST /v1/data/authz/allow of bundles/authz.tar.gz, every input different: cache misses,
 * one event each), 1 worker pinned to CPU 0 and wrk (1 thread) pinned to the other CPUs, at 16
 * and 64 connections. Targets: batched ≥ 95 % of audit off, sync ≥ 80 %.
 *
 * Rounds interleave the modes (off, async, batched, sync, off, …) so drifting machine load
 * spreads over all of them; each mode's ratio is its median over the rounds against audit
 * off's median. Each server starts on a fresh audit directory in the system temp directory
 * (the disk the log is on is printed: `df -T`). Bounded: BENCH_SECONDS (default 5) per wrk run,
 * BENCH_ROUNDS (default 3) rounds.
 *
 *   npm run build && flock /tmp/bench.lock npm run bench:audit
 *
 * BENCH_PROFILE=<mode> runs that mode's server under `node --cpu-prof` (profiles in
 * BENCH_PROFILE_DIR, default <tmp>/portcullis-profiles), to see where its time goes.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '../scripts/lib/opa.js'
import { machine } from './lib.js'
import { bodyOf } from './inputs.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '16,64').split(',').map(Number)
const MODES = (process.env.BENCH_MODES ?? 'off,async,batched,sync').split(',') as Mode[]
/** `--cpu-prof` the server of this mode (profiles land in BENCH_PROFILE_DIR). */
const PROFILE = process.env.BENCH_PROFILE
type Mode = 'off' | 'async' | 'batched' | 'sync'

const cores = availableParallelism()
const PIN = process.env.BENCH_PIN !== '0' && cores > 1 && existsSync('/usr/bin/taskset')
const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-audit-'))
const children: ChildProcess[] = []

function onPath (bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, bin))) return join(dir, bin)
  }
  return undefined
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function waitReady (url: string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      if ((await fetch(url)).status === 200) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not become ready`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref()
  })
}

/** wrk's request generator: unique inputs, the counter starting at `offset` so no run repeats another's inputs. */
function wrkScript (offset: number): string {
  const file = join(work, `wrk-${offset}.lua`)
  const body = bodyOf('unique', -1).replace('"/orders/-1"', '"/orders/\' .. i .. \'"')
  writeFileSync(file, `local i = ${offset}\nlocal h = {["content-type"]="application/json"}\nrequest = function()\n  i = i + 1\n  return wrk.format("POST", "/v1/data/authz/allow", h, '${body}')\nend\n`)
  return file
}

interface Run { rps: number, p50: number, p99: number, errors: number, requests: number, cpuUsPerDecision: number }

/** CPU time (user + system, every thread) of a process so far, in µs, from /proc (Linux). */
function cpuUs (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * 1e6 / CLK_TCK
  } catch { return NaN }
}
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 } })()

function ms (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n
}

async function wrk (bin: string, url: string, connections: number, offset: number, serverPid: number): Promise<Run> {
  const cpu0 = cpuUs(serverPid)
  const args = ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', '-s', wrkScript(offset), `${url}/v1/data/authz/allow`]
  const out = await new Promise<string>((resolve, reject) => {
    execFile(PIN ? 'taskset' : bin, PIN ? ['-c', `1-${cores - 1}`, bin, ...args] : args, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 }, (err, stdout) => { if (err !== null) reject(err); else resolve(stdout) })
  })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)
  const pct = (p: string): number => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    return m === null ? NaN : Math.round(ms(m[1] as string, m[2] as string) * 100) / 100
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const sockErr = /Socket errors:(.*)/.exec(out)?.[1]?.match(/\d+/g)?.reduce((a, b) => a + Number(b), 0) ?? 0
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  // the server's own CPU per decision: what the trail costs, whatever else the machine runs
  const cpuUsPerDecision = (cpuUs(serverPid) - cpu0) / Math.max(1, requests)
  return { rps, p50: pct('50'), p99: pct('99'), errors: non2xx + sockErr, requests, cpuUsPerDecision }
}

/** Records in the log after a run (all written: the server was stopped cleanly), from the hashes file size. */
async function eventsLogged (auditDir: string): Promise<number> {
  const { AuditDirReader } = await import('../src/audit/log/reader.js')
  const r = await AuditDirReader.open(auditDir)
  try {
    let n = 0
    for (const s of r.streams()) n += await r.stream(s).treeSize()
    return n
  } finally { r.close() }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function main (): Promise<void> {
  const bin = onPath('wrk')
  if (bin === undefined) throw new Error('wrk is required (apt-get install wrk)')
  if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first: the benchmark serves dist/')
  mkdirSync(join(work, 'bundles'))
  cpSync(join(repoRoot, 'bundles', 'authz.tar.gz'), join(work, 'bundles', 'authz.tar.gz'))
  const config = join(work, 'portcullis.yaml')
  writeFileSync(config, ['server:', '  addr: 127.0.0.1:0', 'bundles:', `  dir: ${join(work, 'bundles')}`, '  watch: false', 'logging:', '  level: error'].join('\n') + '\n')
  // this process and wrk stay off the server's CPU
  if (PIN) execFileSync('taskset', ['-a', '-cp', `1-${cores - 1}`, String(process.pid)], { stdio: 'ignore' })

  const results = new Map<string, Run[]>()
  const logged = new Map<Mode, number[]>()
  let offset = 0
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of MODES) {
      const port = await freePort()
      const auditDir = join(work, `audit-${mode}-${round}`)
      const profile = PROFILE === mode ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR ?? join(tmpdir(), 'portcullis-profiles')] : []
      const args = [...profile, 'dist/cli/main.js', 'serve', '--config', config, '--workers', '1', '--addr', `127.0.0.1:${port}`,
        ...(mode === 'off' ? [] : ['--audit-dir', auditDir, '--audit-durability', mode])]
      const child = spawn(PIN ? 'taskset' : process.execPath, PIN ? ['-c', '0', process.execPath, ...args] : args, { stdio: ['ignore', 'ignore', 'inherit'], cwd: repoRoot })
      children.push(child)
      const url = `http://127.0.0.1:${port}`
      await waitReady(`${url}/health?bundles`)
      for (const c of CONNECTIONS) {
        offset += 100_000_000
        const r = await wrk(bin, url, c, offset, child.pid as number)
        const key = `${mode}|${c}`
        results.set(key, [...(results.get(key) ?? []), r])
        console.error(`round ${round} ${mode} ${c} conns: ${Math.round(r.rps)} decisions/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}, server CPU ${r.cpuUsPerDecision.toFixed(1)} µs/decision, load ${loadavg()[0]?.toFixed(1)}`)
      }
      await stop(child)
      if (mode !== 'off') logged.set(mode, [...(logged.get(mode) ?? []), await eventsLogged(auditDir)])
      rmSync(auditDir, { recursive: true, force: true })
    }
  }

  const df = execFileSync('df', ['-T', tmpdir()], { encoding: 'utf8' }).trim().split('\n').at(-1) ?? ''
  console.log(`machine: ${machine()}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
  console.log(`audit dir on: ${df.split(/\s+/).slice(0, 2).join(' ')} (${tmpdir()})`)
  console.log(`load: wrk 1 thread, ${SECONDS} s per run, ${ROUNDS} rounds interleaving the modes, unique inputs, POST /v1/data/authz/allow (bundles/authz.tar.gz), 1 worker${PIN ? ' pinned to CPU 0, wrk to the other CPUs' : ''}`)
  console.log('')
  console.log('| mode | connections | decisions/s, each round | median | ratio to off | p99 ms, each round | server CPU µs/decision (median) | decisions per CPU-second, ratio to off | errors |')
  console.log('|---|---:|---|---:|---:|---|---:|---:|---:|')
  for (const c of CONNECTIONS) {
    const off = median((results.get(`off|${c}`) ?? []).map((r) => r.rps))
    const offCpu = median((results.get(`off|${c}`) ?? []).map((r) => r.cpuUsPerDecision))
    for (const mode of MODES) {
      const runs = results.get(`${mode}|${c}`) ?? []
      const med = median(runs.map((r) => r.rps))
      console.log(`| ${mode} | ${c} | ${runs.map((r) => Math.round(r.rps).toLocaleString('en-US')).join(' / ')} | ${Math.round(med).toLocaleString('en-US')} | ${(med / off).toFixed(2)} | ${runs.map((r) => r.p99).join(' / ')} | ${median(runs.map((r) => r.cpuUsPerDecision)).toFixed(1)} | ${(offCpu / median(runs.map((r) => r.cpuUsPerDecision))).toFixed(2)} | ${runs.reduce((a, r) => a + r.errors, 0)} |`)
    }
  }
  console.log('')
  for (const [mode, ns] of logged) console.log(`${mode}: events in the log per server run ${ns.map((n) => n.toLocaleString('en-US')).join(' / ')}`)
}

try {
  await main()
} finally {
  await Promise.all(children.map(stop))
  rmSync(work, { recursive: true, force: true })
}
