/**
 * npm run bench:envoy — Portcullis's Envoy ext_authz service side by side with opa-envoy-plugin.
 *
 * Same policy for both (benchmarks/envoy/authz.rego: Rego files for opa-envoy-plugin, the
 * bundle `opa build -t wasm -e envoy/authz/allow` makes of them for Portcullis), same requests
 * (benchmarks/envoy/requests.ts: N distinct CheckRequests, handed to ghz as a --data-file
 * array it sends round-robin), one load generator for both (ghz, calling
 * envoy.service.auth.v3.Authorization.Check). Each server runs on one core (CPU 1, with
 * GOMAXPROCS=1 for Go and one worker process for Portcullis) and the load generator on the
 * other (CPU 0). Portcullis's decision cache and its ext_authz cache are off.
 *
 * Measured for each server: the maximum Check/s (a bounded closed-loop run: at most
 * BENCH_ENVOY_COUNT calls and BENCH_SECONDS seconds) with p50/p99, and p50/p99 at a fixed
 * rate (BENCH_ENVOY_RATE, default 5,000 Check/s, ghz --rps). Portcullis's HTTP service mode
 * (Envoy's http_service) is measured with wrk on the equivalent HTTP requests and reported as
 * a ratio to its gRPC mode. Before the load, both servers answer the first requests and their
 * answers are compared (with @grpc/grpc-js over the repository's proto/ files).
 *
 *   npm run build                         (Portcullis runs from dist/)
 *   npm run install:opa                   (opa build -t wasm)
 *   bash scripts/install-ghz.sh
 *   bash scripts/install-opa-envoy-plugin.sh <opa-envoy-plugin checkout>
 *   npm run bench:envoy
 *
 * Environment: OPA_ENVOY_PLUGIN (binary; default .tools/bin/opa-envoy-plugin), GHZ (default
 * .tools/bin/ghz), TOOLS_BIN (where the install scripts put both, instead of .tools/bin),
 * BENCH_SECONDS (5), BENCH_CONCURRENCY (16 concurrent calls / HTTP connections),
 * BENCH_GRPC_CONNECTIONS (1 HTTP/2 connection for ghz, as one Envoy worker keeps),
 * BENCH_ENVOY_REQUESTS (distinct requests, 2,000), BENCH_ENVOY_COUNT (most calls in a
 * maximum-rate run, 200,000), BENCH_ENVOY_RATE (5,000), BENCH_RUNS (1), BENCH_ENVOY_TARGETS
 * (opa-envoy-plugin,portcullis, and grpc-ceiling,http2-ceiling when proto/ exists: constant
 * answers on grpc-js and on bare node:http2, see envoy/grpc-ceiling.ts), BENCH_ENVOY_HTTP=0 (no
 * HTTP service mode runs), BENCH_ENVOY_PROTO=reflection (ghz finds the method by server
 * reflection instead of proto/), BENCH_PIN=0 (no CPU pinning), BENCH_CPU_PROF=dir (Portcullis
 * under node --cpu-prof, profiles written there at exit).
 *
 * Besides Check/s, every run reports the calls answered per CPU-second of the server process
 * (/proc/<pid>/stat): on a machine shared with other work the wall-clock rate follows the share
 * of its core the server got, the per-CPU-second figure much less.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { repoRoot, requireOpa } from '../scripts/lib/opa.js'
import { checkRequest, httpRequest } from './envoy/requests.js'

const env = process.env
const num = (name: string, dflt: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${v}`)
  return n
}
const SECONDS = num('BENCH_SECONDS', 5)
const CONCURRENCY = num('BENCH_CONCURRENCY', 16)
const GRPC_CONNECTIONS = num('BENCH_GRPC_CONNECTIONS', 1)
// ghz turns each distinct message from JSON into protobuf on its first use in a process, which
// made it, not the server, set the pace when most calls were first uses (20,000 distinct); the
// servers keep nothing between calls (Portcullis's caches are off), so 2,000 distinct requests
// sent round-robin ask them as much as unbounded unique ones would.
const DISTINCT = num('BENCH_ENVOY_REQUESTS', 2_000)
const COUNT = num('BENCH_ENVOY_COUNT', 200_000)
const RATE = num('BENCH_ENVOY_RATE', 5_000)
const RUNS = num('BENCH_RUNS', 1)
const PROTO_ROOT = join(repoRoot, 'proto')
const PROTO_ENTRY = 'envoy/service/auth/v3/external_auth.proto'
const HAVE_PROTO = existsSync(join(PROTO_ROOT, PROTO_ENTRY))
const TARGETS = (env.BENCH_ENVOY_TARGETS ?? `opa-envoy-plugin,portcullis${HAVE_PROTO ? ',grpc-ceiling,http2-ceiling' : ''}`).split(',').map((s) => s.trim()).filter((s) => s !== '')
const CPU_PROF = env.BENCH_CPU_PROF
const HTTP_MODE = env.BENCH_ENVOY_HTTP !== '0'
const DECISION_PATH = 'envoy/authz/allow'
const CALL = 'envoy.service.auth.v3.Authorization.Check'

const cores = availableParallelism()
// Server on CPU 1, load generator on CPU 0: neither competes with the other for its core
// (other processes on a shared machine still may; the load average and CPU pressure are
// printed with the results).
const PIN = env.BENCH_PIN !== '0' && cores > 1 && existsSync('/usr/bin/taskset')
const SERVER_CPU = '1'
const LOAD_CPU = '0'
/** The command line that runs `cmd args` on `cpu` (when pinning). */
function placed (cpu: string, cmd: string, args: string[]): [string, string[]] {
  return PIN ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args]
}

const toolsBin = env.TOOLS_BIN ?? join(repoRoot, '.tools', 'bin')
const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-envoy-'))
const children: ChildProcess[] = []

function onPath (bin: string): string | undefined {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, bin))) return join(dir, bin)
  }
  return undefined
}

function tool (envName: string, bin: string, how: string): string {
  const p = env[envName] ?? join(toolsBin, bin)
  if (!existsSync(p)) throw new Error(`${bin} not found at ${p}: ${how} (or set ${envName})`)
  return p
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

/** Waits (bounded) until `url` (if any) answers below 500 and `grpcPort` accepts a TCP connection. */
async function waitReady (child: ChildProcess, url: string | undefined, grpcPort: number): Promise<void> {
  const deadline = Date.now() + 60_000
  const tcp = async (): Promise<boolean> => await new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: grpcPort })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready`)
    try {
      const r = url === undefined ? undefined : await fetch(url)
      if ((r === undefined || r.status < 500) && await tcp()) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not become ready within 60 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function start (cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcess {
  const [c, a] = placed(SERVER_CPU, cmd, args)
  const child = spawn(c, a, {
    stdio: ['ignore', 'ignore', 'inherit'], env: { ...env, ...extraEnv }, cwd: repoRoot,
  })
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

/** Runs a load generator on the load CPU, killed if it overruns its own bound by 60 s. */
async function runPinned (cmd: string, args: string[], seconds: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const [c, a] = placed(LOAD_CPU, cmd, args)
    execFile(c, a,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: (seconds + 60) * 1000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => { if (err !== null) reject(new Error(`${cmd} failed: ${err.message}\n${stderr}`)); else resolve(stdout) })
  })
}

interface Run {
  rps: number, p50: number, p99: number, count: number, errors: number, note?: string
  /** calls per CPU-second the server used during the run (robust to other load on a shared machine) */
  perCpuSecond?: number
  /** the server's CPU use during the run, as a share of the run's wall time (1 = a full core) */
  serverCpu?: number
}

/** CPU seconds (user + system, all threads) a process has used, from /proc (Linux). */
function cpuSecondsOf (pid: number | undefined): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the parenthesised command name: state is field 3, utime 14, stime 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / CLK_TCK
}
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 } })()

/** Adds the server's CPU use over `run` (measured around it) to its result. */
async function withCpu <T extends Run> (pid: number | undefined, seconds: (r: T) => number, run: () => Promise<T>): Promise<T> {
  const before = cpuSecondsOf(pid)
  const r = await run()
  const after = cpuSecondsOf(pid)
  if (before === undefined || after === undefined || after <= before) return r
  return { ...r, perCpuSecond: r.count / (after - before), serverCpu: Math.round(100 * (after - before) / seconds(r)) / 100 }
}

const nsToMs = (ns: number): number => Math.round(ns / 1e3) / 1e3

/** The ghz arguments naming the method: our proto files when present, else server reflection. */
function protoArgs (): string[] {
  if (HAVE_PROTO && env.BENCH_ENVOY_PROTO !== 'reflection') {
    return ['--proto', join(PROTO_ROOT, PROTO_ENTRY), '--import-paths', PROTO_ROOT]
  }
  return [] // ghz uses server reflection without --proto/--protoset
}

/**
 * One ghz run: at most `count` calls and `seconds` seconds (`-n`, `-x`), `rate` calls/s when
 * given (ghz --rps, its constant schedule), else as fast as the server answers.
 */
async function ghz (bin: string, port: number, dataFile: string, opts: { count: number, seconds: number, rate?: number }): Promise<Run & { wallSeconds: number }> {
  const out = join(work, 'ghz.json')
  rmSync(out, { force: true })
  const args = [
    '--insecure', '--call', CALL, ...protoArgs(),
    '--data-file', dataFile,
    '-c', String(CONCURRENCY), '--connections', String(GRPC_CONNECTIONS),
    '-n', String(opts.count), '-x', `${opts.seconds}s`, '--timeout', '5s',
    ...(opts.rate !== undefined ? ['--rps', String(opts.rate)] : []),
    '--cpus', '1', '-O', 'json', '-o', out,
    `127.0.0.1:${port}`,
  ]
  await runPinned(bin, args, opts.seconds)
  const r = JSON.parse(readFileSync(out, 'utf8')) as {
    count: number, total: number, rps: number, endReason: string, latencyDistribution: Array<{ percentage: number, latency: number }> | null,
    statusCodeDistribution: Record<string, number>, errorDistribution: Record<string, number> | null
  }
  const pct = (p: number): number => nsToMs(r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN)
  // When the time bound (-x) ends a run, ghz closes its connection under the calls still in
  // flight (at most BENCH_CONCURRENCY); those are cut by the bound, not failed by the server.
  let cut = 0
  const failures: string[] = []
  for (const [msg, n] of Object.entries(r.errorDistribution ?? {})) {
    if (r.endReason === 'timeout' && /closed network connection|client connection is closing|context canceled/.test(msg)) cut += n
    else failures.push(msg)
  }
  const errors = r.count - (r.statusCodeDistribution.OK ?? 0) - cut
  const count = r.count - cut
  return {
    rps: count / (r.total / 1e9), p50: pct(50), p99: pct(99), count, errors, wallSeconds: r.total / 1e9,
    ...(failures[0] !== undefined ? { note: failures[0] } : {}),
  }
}

/**
 * wrk's Lua script for the HTTP service mode: the same N requests, written out as raw HTTP/1.1
 * requests (a table literal of that size exceeds Lua's constant limits, so they are read from a
 * file once per thread) and sent round-robin.
 */
function wrkScript (): string {
  const raw = join(work, 'http-requests.bin')
  const parts: Buffer[] = []
  for (let i = 0; i < DISTINCT; i++) {
    const r = httpRequest(i)
    const headers = { host: 'orders.shop.example.org', ...r.headers, ...(r.body !== '' ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}) }
    const text = `${r.method} ${r.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${r.body}`
    const bytes = Buffer.from(text)
    parts.push(Buffer.from(`${bytes.length}\n`), bytes)
  }
  writeFileSync(raw, Buffer.concat(parts))
  const lua = join(work, 'envoy-http.lua')
  writeFileSync(lua, `
local reqs = {}
local n = 0
local i = 0
init = function(args)
  local f = assert(io.open(${JSON.stringify(raw)}, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    n = n + 1
    reqs[n] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
end
request = function()
  i = i % n + 1
  return reqs[i]
end
`)
  return lua
}

function ms (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n
}

/** One wrk run (1 thread, BENCH_CONCURRENCY connections, BENCH_SECONDS; bounded in time). */
async function wrk (bin: string, port: number, lua: string): Promise<Run & { non2xx: number, wallSeconds: number }> {
  const out = await runPinned(bin, ['-t1', `-c${CONCURRENCY}`, `-d${SECONDS}s`, '--timeout', '5s', '--latency', '-s', lua, `http://127.0.0.1:${port}/`], SECONDS)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0)
  const count = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  const pct = (p: string): number => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out)
    return m === null ? NaN : Math.round(ms(m[1] as string, m[2] as string) * 1000) / 1000
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const sockErr = /Socket errors:(.*)/.exec(out)?.[1]?.match(/\d+/g)?.reduce((a, b) => a + Number(b), 0) ?? 0
  const wallSeconds = ms(...((/requests in ([\d.]+)(us|ms|s),/.exec(out)?.slice(1, 3) ?? [String(SECONDS), 's']) as [string, string])) / 1000
  return { rps, p50: pct('50'), p99: pct('99'), count, errors: sockErr, non2xx, wallSeconds }
}

interface Answer { allowed: boolean, httpStatus: number | undefined, grpcStatus: number }

/**
 * The answers of one server to the first `n` requests, through @grpc/grpc-js and
 * @grpc/proto-loader over the repository's proto files (undefined without them).
 */
async function answers (port: number, n: number): Promise<Answer[] | undefined> {
  if (!HAVE_PROTO) return undefined
  const grpc = await import('@grpc/grpc-js')
  const loader = await import('@grpc/proto-loader')
  const def = await loader.load(PROTO_ENTRY, { includeDirs: [PROTO_ROOT], keepCase: false, longs: String, enums: Number, defaults: false, oneofs: true })
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: new (addr: string, creds: unknown) => { Check: (req: unknown, opts: { deadline: number }, cb: (err: { code: number } | null, res?: { status?: { code?: number }, deniedResponse?: { status?: { code?: number } } }) => void) => void, close: () => void } } } } } }
  const client = new pkg.envoy.service.auth.v3.Authorization(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  try {
    const out: Answer[] = []
    for (let i = 0; i < n; i++) {
      const req = toProtoLoader(checkRequest(i))
      out.push(await new Promise<Answer>((resolve) => {
        client.Check(req, { deadline: Date.now() + 5000 }, (err, res) => {
          if (err !== null) resolve({ allowed: false, httpStatus: undefined, grpcStatus: err.code })
          else resolve({ allowed: (res?.status?.code ?? 0) === 0, httpStatus: res?.deniedResponse?.status?.code, grpcStatus: 0 })
        })
      }))
    }
    return out
  } finally {
    client.close()
  }
}

/** protojson → the plain-object form proto-loader encodes (Timestamp as {seconds, nanos}). */
function toProtoLoader (req: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(req)) as { attributes: { request: { time: string | { seconds: string, nanos: number } } } }
  const t = copy.attributes.request.time as string
  const m = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(t)
  const seconds = Math.floor(Date.parse(`${m?.[1] ?? ''}Z`) / 1000)
  copy.attributes.request.time = { seconds: String(seconds), nanos: Number((m?.[2] ?? '0').padEnd(9, '0')) }
  return copy
}

interface Server { name: string, child: ChildProcess, grpcPort: number, httpPort?: number }

async function startOpaEnvoyPlugin (bin: string, policyDir: string): Promise<Server> {
  const port = await freePort()
  const grpcPort = await freePort()
  const child = start(bin, [
    'run', '--server', '--addr', `127.0.0.1:${port}`, '--diagnostic-addr', `127.0.0.1:${await freePort()}`, '--log-level', 'error',
    '--set', `plugins.envoy_ext_authz_grpc.addr=127.0.0.1:${grpcPort}`,
    '--set', `plugins.envoy_ext_authz_grpc.path=${DECISION_PATH}`,
    '--set', 'plugins.envoy_ext_authz_grpc.enable-reflection=true',
    '--set', 'decision_logs.console=false',
    policyDir,
  ], { GOMAXPROCS: '1' })
  await waitReady(child, `http://127.0.0.1:${port}/health?plugins`, grpcPort)
  return { name: 'opa-envoy-plugin', child, grpcPort }
}

async function startPortcullis (bundleDir: string): Promise<Server> {
  const port = await freePort()
  const grpcPort = await freePort()
  const httpPort = await freePort()
  const config = join(work, 'portcullis.yaml')
  writeFileSync(config, [
    'server:', `  addr: 127.0.0.1:${port}`, '  workers: 1',
    'bundles:', `  dir: ${bundleDir}`, '  watch: false',
    'logging:', '  level: error',
    'cache:', '  enabled: false',
    'envoy_ext_authz:', `  path: ${DECISION_PATH}`,
    `  grpc: { enabled: true, addr: "127.0.0.1:${grpcPort}", enable_reflection: true }`,
    `  http: { enabled: true, addr: "127.0.0.1:${httpPort}", path_prefix: "" }`,
    '  cache: { enabled: false }',
  ].join('\n') + '\n')
  const prof = CPU_PROF !== undefined && CPU_PROF !== '' ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []
  const child = start(process.execPath, [...prof, 'dist/cli/main.js', 'serve', '--config', config, '--workers', '1'])
  await waitReady(child, `http://127.0.0.1:${port}/health?bundles`, grpcPort)
  return { name: 'portcullis', child, grpcPort, httpPort }
}

async function startCeiling (kind: 'grpc-js' | 'http2'): Promise<Server> {
  const grpcPort = await freePort()
  const child = start(process.execPath, ['--import', 'tsx', 'benchmarks/envoy/grpc-ceiling.ts', String(grpcPort), kind])
  await waitReady(child, undefined, grpcPort)
  return { name: `${kind === 'grpc-js' ? 'grpc' : 'http2'}-ceiling`, child, grpcPort }
}

function machine (opaEnvoyPlugin: string | undefined): string {
  const go = (() => { try { return execFileSync('go', ['version'], { encoding: 'utf8' }).trim() } catch { return 'go not found' } })()
  let commit = 'n/a'
  if (opaEnvoyPlugin !== undefined && existsSync(`${opaEnvoyPlugin}.commit`)) commit = readFileSync(`${opaEnvoyPlugin}.commit`, 'utf8').trim()
  return `${cores} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}, ${go}, opa-envoy-plugin commit ${commit}`
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

async function main (): Promise<void> {
  const opa = requireOpa()
  const ghzBin = tool('GHZ', 'ghz', 'run `bash scripts/install-ghz.sh`')
  const wantPlugin = TARGETS.includes('opa-envoy-plugin')
  const wantPortcullis = TARGETS.includes('portcullis')
  const pluginBin = wantPlugin ? tool('OPA_ENVOY_PLUGIN', 'opa-envoy-plugin', 'run `bash scripts/install-opa-envoy-plugin.sh <checkout>`') : undefined
  const wrkBin = onPath('wrk')
  if (wrkBin === undefined && HTTP_MODE && wantPortcullis) console.error('wrk is not on PATH (apt-get install wrk): the HTTP service mode is not measured')
  if (wantPortcullis && !existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first')

  // The policy: Rego files for opa-envoy-plugin, the wasm bundle of the same files for Portcullis.
  const policyDir = join(work, 'policy')
  cpSync(join(repoRoot, 'benchmarks', 'envoy', 'authz.rego'), join(policyDir, 'authz.rego'))
  const bundleDir = join(work, 'bundles')
  mkdirSync(bundleDir)
  execFileSync(opa, ['build', '-t', 'wasm', '-e', DECISION_PATH, '-o', join(bundleDir, 'envoy.tar.gz'), policyDir], { stdio: 'inherit' })

  const dataFile = join(work, 'check-requests.json')
  writeFileSync(dataFile, JSON.stringify(Array.from({ length: DISTINCT }, (_, i) => checkRequest(i))))
  const lua = wrkScript()
  const proto = protoArgs().length > 0 ? 'proto/ files' : 'server reflection'

  const rows: string[] = []
  const results: Record<string, Run[]> = {}
  const record = (name: string, r: Run, extra = ''): void => {
    (results[name] ??= []).push(r)
    const cpu = r.perCpuSecond !== undefined ? `${fmt(r.perCpuSecond)} | ${r.serverCpu ?? ''}` : ' | '
    rows.push(`| ${name} | ${fmt(r.rps)} | ${r.p50} | ${r.p99} | ${cpu} | ${fmt(r.count)} | ${r.errors}${r.note !== undefined ? ` (${r.note.slice(0, 80)})` : ''} |${extra}`)
    console.error(`${name}: ${fmt(r.rps)} Check/s p50 ${r.p50} ms p99 ${r.p99} ms; ${r.perCpuSecond !== undefined ? fmt(r.perCpuSecond) : '?'} per server CPU-second (server CPU ${r.serverCpu ?? '?'}); n ${r.count} errors ${r.errors}${extra}${r.note !== undefined ? ` first error: ${r.note}` : ''}`)
  }
  const loads: string[] = []
  // CPU pressure (Linux PSI): the share of time runnable tasks waited for a CPU, last 10 s
  const pressure = (): string => { try { return /some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? '?' } catch { return '?' } }
  const agreement: string[] = []
  let reference: Answer[] | undefined

  for (let run = 1; run <= RUNS; run++) {
    // the order alternates between runs, so a change in the machine's other load does not
    // always fall on the same server
    for (const target of run % 2 === 1 ? TARGETS : [...TARGETS].reverse()) {
      loads.push(`${target} ${loadavg().map((l) => l.toFixed(2)).join(' ')} (CPU pressure ${pressure()} %)`)
      const server = target === 'opa-envoy-plugin'
        ? await startOpaEnvoyPlugin(pluginBin as string, policyDir)
        : target === 'portcullis'
          ? await startPortcullis(bundleDir)
          : target === 'grpc-ceiling'
            ? await startCeiling('grpc-js')
            : target === 'http2-ceiling' ? await startCeiling('http2') : undefined
      if (server === undefined) throw new Error(`unknown target ${target} (opa-envoy-plugin, portcullis, grpc-ceiling, http2-ceiling)`)
      try {
        if (run === 1 && !target.endsWith('-ceiling')) {
          const a = await answers(server.grpcPort, 256)
          if (a === undefined) agreement.push(`${target}: not checked (no proto/ files)`)
          else {
            const denied = a.filter((x) => !x.allowed).length
            const errs = a.filter((x) => x.grpcStatus !== 0).length
            agreement.push(`${target}: ${denied}/256 denied, ${errs} gRPC errors`)
            if (reference === undefined) reference = a
            else {
              const diff = a.findIndex((x, i) => JSON.stringify(x) !== JSON.stringify(reference?.[i]))
              agreement.push(diff < 0 ? `${target} agrees with ${TARGETS[0]} on all 256` : `${target} DISAGREES with ${TARGETS[0]} first at request ${diff}: ${JSON.stringify(a[diff])} vs ${JSON.stringify(reference[diff])}`)
            }
          }
        }
        // warm-up (not recorded): the JIT of the Node server, the first pass over the data for ghz
        await ghz(ghzBin, server.grpcPort, dataFile, { count: Math.min(DISTINCT, 20_000), seconds: 3 })
        const pid = server.child.pid
        const wall = (r: { wallSeconds: number }): number => r.wallSeconds
        record(`${target} gRPC max`, await withCpu(pid, wall, async () => await ghz(ghzBin, server.grpcPort, dataFile, { count: COUNT, seconds: SECONDS })))
        const paced = await withCpu(pid, wall, async () => await ghz(ghzBin, server.grpcPort, dataFile, { count: Math.round(RATE * SECONDS), seconds: SECONDS + 2, rate: RATE }))
        // below the asked rate, the p99 is not a p99 at that rate: said so in the table
        record(`${target} gRPC @${fmt(RATE)}/s`, paced, paced.rps < 0.95 * RATE ? ' rate not reached' : '')
        if (HTTP_MODE && server.httpPort !== undefined && wrkBin !== undefined) {
          await wrk(wrkBin, server.httpPort, lua) // warm-up
          const h = await withCpu(pid, wall, async () => await wrk(wrkBin, server.httpPort as number, lua))
          record(`${target} HTTP max`, h, ` denied (403) ${(100 * h.non2xx / Math.max(1, h.count)).toFixed(1)} %`)
        }
      } finally {
        await stop(server.child)
      }
    }
  }

  const mean = (name: string, of: (r: Run) => number = (r) => r.rps): number => {
    const rs = results[name] ?? []
    return rs.length === 0 ? NaN : rs.reduce((a, r) => a + of(r), 0) / rs.length
  }
  const perCpu = (r: Run): number => r.perCpuSecond ?? NaN
  console.log(`machine: ${machine(pluginBin)}`)
  console.log(`load average (1/5/15 min) at each server start: ${loads.join('; ')}`)
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (CPU pressure ${pressure()} %)`)
  // (ghz prints its version on stderr)
  const ghzVersion = spawnSync(ghzBin, ['--version'], { encoding: 'utf8' }).stderr.trim()
  console.log(`load: ghz ${ghzVersion} (${proto}; ${CONCURRENCY} concurrent calls over ${GRPC_CONNECTIONS} connection(s)), wrk 1 thread ${CONCURRENCY} connections for HTTP; ` +
    `${fmt(DISTINCT)} distinct requests; max runs at most ${fmt(COUNT)} calls / ${SECONDS} s; fixed-rate runs ${fmt(RATE)}/s for ${SECONDS} s${PIN ? `; servers on CPU ${SERVER_CPU}, load generator on CPU ${LOAD_CPU}` : '; not pinned'}`)
  console.log(`answers: ${agreement.join('; ')}`)
  console.log('')
  console.log('| run | Check/s | p50 ms | p99 ms | Check per server CPU-s | server CPU | calls | errors |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(r)
  console.log('')
  if (wantPlugin && wantPortcullis) {
    console.log(`portcullis/opa-envoy-plugin gRPC Check/s: ${(mean('portcullis gRPC max') / mean('opa-envoy-plugin gRPC max')).toFixed(2)}x (target >= 2); ` +
      `per server CPU-second: ${(mean('portcullis gRPC max', perCpu) / mean('opa-envoy-plugin gRPC max', perCpu)).toFixed(2)}x`)
  }
  if (wantPortcullis && results['portcullis HTTP max'] !== undefined) {
    console.log(`portcullis HTTP/gRPC: ${(mean('portcullis HTTP max') / mean('portcullis gRPC max')).toFixed(2)} (target >= 0.80); ` +
      `per server CPU-second: ${(mean('portcullis HTTP max', perCpu) / mean('portcullis gRPC max', perCpu)).toFixed(2)}`)
  }
  for (const ceiling of TARGETS.filter((t) => t.endsWith('-ceiling'))) {
    if (!wantPortcullis) break
    console.log(`portcullis/${ceiling} gRPC Check/s: ${(mean('portcullis gRPC max') / mean(`${ceiling} gRPC max`)).toFixed(2)}; ` +
      `per server CPU-second: ${(mean('portcullis gRPC max', perCpu) / mean(`${ceiling} gRPC max`, perCpu)).toFixed(2)}`)
  }
  for (const t of TARGETS.filter((t) => !t.endsWith('-ceiling'))) {
    const rs = results[`${t} gRPC @${fmt(RATE)}/s`] ?? []
    console.log(`${t} p99 at ${fmt(RATE)} Check/s: ${rs.map((r) => `${r.p99} ms${r.rps < 0.95 * RATE ? ` (only ${fmt(r.rps)}/s reached)` : ''}`).join(', ')}${t === 'portcullis' ? ' (target < 1 ms)' : ''}`)
  }
}

// Servers are stopped on every way out: normal end, an error (finally), or an interrupt.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    rmSync(work, { recursive: true, force: true })
    process.exit(130)
  })
}

try {
  await main()
} finally {
  await Promise.all(children.map(stop))
  rmSync(work, { recursive: true, force: true })
}
