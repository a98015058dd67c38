/**
 * A real SPIRE server and agent for the Workload API tests, in a temporary directory: the server
 * on a loopback port (its admin API on a Unix socket), the agent attested with a join token and
 * serving the Workload API on a Unix socket; `disk` key managers, a sqlite datastore, the `unix`
 * workload attestor and short SVID TTLs. Binaries come from scripts/install-spire.sh
 * (.tools/bin); in CI (CI=true) a missing binary fails the test instead of skipping it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { inCI } from './opa.js'

export const TRUST_DOMAIN = 'example.org'
const BIN = resolve(process.cwd(), '.tools', 'bin')
export const SPIRE_SERVER = join(BIN, 'spire-server')
export const SPIRE_AGENT = join(BIN, 'spire-agent')
export const SPIRE_MISSING = 'spire-server / spire-agent not found: run scripts/install-spire.sh (SPIRE tests are skipped outside CI)'

/** Options for `describe()`: skip outside CI when SPIRE is missing; in CI the test runs and fails. */
export function needsSpire (): { skip?: string } {
  if ((existsSync(SPIRE_SERVER) && existsSync(SPIRE_AGENT)) || inCI) return {}
  return { skip: SPIRE_MISSING }
}

async function freePort (): Promise<number> {
  return await new Promise((res, rej) => {
    const s = createServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => res(port))
    })
  })
}

export interface RunResult { code: number, stdout: string, stderr: string }

/** Runs a SPIRE CLI command to completion (bounded by timeoutMs). */
export async function run (bin: string, args: string[], timeoutMs = 15_000): Promise<RunResult> {
  if (!existsSync(bin)) throw new Error(inCI ? `CI=true but ${bin} is missing (scripts/install-spire.sh)` : SPIRE_MISSING)
  return await new Promise((res) => {
    execFile(bin, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      res({ code, stdout, stderr })
    })
  })
}

async function runOk (bin: string, args: string[]): Promise<string> {
  const r = await run(bin, args)
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

/** Polls `fn` every `everyMs` until it returns a value or `timeoutMs` passes. */
export async function until<T> (fn: () => Promise<T | undefined>, what: string, timeoutMs = 15_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface Spire {
  dir: string
  /** The agent's Workload API socket path. */
  agentSocket: string
  /** `unix://` address of it (SPIFFE_ENDPOINT_SOCKET form). */
  endpoint: string
  serverSocket: string
  trustDomain: string
  /** The SPIFFE ID the test process's uid is registered for (once registerSelf ran). */
  workloadId: string
  /** Creates the registration entry for this process's uid and waits until the agent serves it. */
  registerSelf: () => Promise<void>
  /** `spire-server` with the admin socket flag appended. */
  server: (args: string[]) => Promise<string>
  /** `spire-agent api fetch x509 -write DIR`: the SVID files (svid.0.pem leaf first, svid.0.key, bundle.0.pem). */
  fetchX509: (dir: string) => Promise<{ cert: string, key: string, bundle: string }>
  /** `spire-agent api fetch jwt -audience A`: the JWT-SVID. */
  fetchJwt: (audience: string) => Promise<string>
  stopAgent: () => Promise<void>
  startAgent: () => Promise<void>
  stop: () => Promise<void>
}

/** Spawns with stdout and stderr appended to `dir/log` (the parent's descriptor is closed once the child has its own). */
function spawnLogged (bin: string, args: string[], dir: string, log: string): ChildProcess {
  const fd = openSync(join(dir, log), 'a')
  try {
    return spawn(bin, args, { stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
}

async function waitExit (p: ChildProcess, ms: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return
  await new Promise<void>((res) => {
    const t = setTimeout(() => { p.kill('SIGKILL'); res() }, ms)
    p.once('exit', () => { clearTimeout(t); res() })
  })
}

/**
 * Starts SPIRE. With `register: false` no entry exists for this process until `registerSelf()`
 * (the agent then answers this workload PermissionDenied, "no identity issued").
 */
export async function startSpire (opts: { register?: boolean, x509SvidTtl?: string, jwtSvidTtl?: string } = {}): Promise<Spire> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-spire-'))
  // Other uids (the unregistered-workload test) must reach the agent socket inside.
  chmodSync(dir, 0o755)
  const port = await freePort()
  const serverSocket = join(dir, 'server.sock')
  const agentSocket = join(dir, 'agent.sock')
  mkdirSync(join(dir, 'server-data'))
  mkdirSync(join(dir, 'agent-data'))
  writeFileSync(join(dir, 'server.conf'), `
server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${serverSocket}"
  trust_domain = "${TRUST_DOMAIN}"
  data_dir = "${join(dir, 'server-data')}"
  log_level = "INFO"
  default_x509_svid_ttl = "${opts.x509SvidTtl ?? '1h'}"
  default_jwt_svid_ttl = "${opts.jwtSvidTtl ?? '5m'}"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir, 'server-data', 'datastore.sqlite3')}"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      keys_path = "${join(dir, 'server-data', 'keys.json')}"
    }
  }
}
`)
  writeFileSync(join(dir, 'agent.conf'), `
agent {
  data_dir = "${join(dir, 'agent-data')}"
  log_level = "INFO"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = "${agentSocket}"
  trust_domain = "${TRUST_DOMAIN}"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "disk" {
    plugin_data {
      directory = "${join(dir, 'agent-data')}"
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`)
  const sock = ['-socketPath', serverSocket]
  const procs: { server?: ChildProcess, agent?: ChildProcess } = {}
  const stop = async (): Promise<void> => {
    for (const p of [procs.agent, procs.server]) {
      if (p === undefined) continue
      p.kill('SIGTERM')
      await waitExit(p, 5000)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    if (!existsSync(SPIRE_SERVER)) throw new Error(inCI ? `CI=true but ${SPIRE_SERVER} is missing (scripts/install-spire.sh)` : SPIRE_MISSING)
    procs.server = spawnLogged(SPIRE_SERVER, ['run', '-config', join(dir, 'server.conf')], dir, 'server.log')
    await until(async () => (await run(SPIRE_SERVER, ['healthcheck', ...sock])).code === 0 ? true : undefined, 'spire-server healthcheck', 30_000)
    const nodeId = `spiffe://${TRUST_DOMAIN}/node`
    const tokenOut = await runOk(SPIRE_SERVER, ['token', 'generate', '-spiffeID', nodeId, '-ttl', '600', ...sock])
    const token = /Token:\s*(\S+)/.exec(tokenOut)?.[1]
    if (token === undefined) throw new Error(`no join token in: ${tokenOut}`)
    const uid = process.getuid?.() ?? 0
    const workloadId = `spiffe://${TRUST_DOMAIN}/portcullis-test`
    let agentToken: string | undefined = token
    const startAgent = async (): Promise<void> => {
      // The join token attests once; a restarted agent reuses its stored SVID (data_dir).
      procs.agent = spawnLogged(SPIRE_AGENT, ['run', '-config', join(dir, 'agent.conf'), ...(agentToken !== undefined ? ['-joinToken', agentToken] : [])], dir, 'agent.log')
      agentToken = undefined
      await until(async () => (await run(SPIRE_AGENT, ['healthcheck', '-socketPath', agentSocket])).code === 0 ? true : undefined, 'spire-agent healthcheck', 30_000)
    }
    await startAgent()
    const spire: Spire = {
      dir,
      agentSocket,
      endpoint: `unix://${agentSocket}`,
      serverSocket,
      trustDomain: TRUST_DOMAIN,
      workloadId,
      server: async (args) => await runOk(SPIRE_SERVER, [...args, ...sock]),
      registerSelf: async () => {
        await runOk(SPIRE_SERVER, ['entry', 'create', '-parentID', nodeId, '-spiffeID', workloadId, '-selector', `unix:uid:${uid}`, ...sock])
        // Entries reach the agent at its next sync (5 s); bounded wait.
        await until(async () => (await run(SPIRE_AGENT, ['api', 'fetch', 'x509', '-socketPath', agentSocket, '-timeout', '2s'])).code === 0 ? true : undefined, 'the registration entry to reach the agent', 20_000, 500)
      },
      fetchX509: async (out) => {
        mkdirSync(out, { recursive: true })
        await runOk(SPIRE_AGENT, ['api', 'fetch', 'x509', '-write', out, '-socketPath', agentSocket])
        return { cert: readFileSync(join(out, 'svid.0.pem'), 'utf8'), key: readFileSync(join(out, 'svid.0.key'), 'utf8'), bundle: readFileSync(join(out, 'bundle.0.pem'), 'utf8') }
      },
      fetchJwt: async (audience) => {
        const out = await runOk(SPIRE_AGENT, ['api', 'fetch', 'jwt', '-audience', audience, '-socketPath', agentSocket, '-output', 'json'])
        const doc = JSON.parse(out) as Array<{ svids?: Array<{ svid: string }> }>
        const svid = doc.find((d) => d.svids !== undefined)?.svids?.[0]?.svid
        if (svid === undefined) throw new Error(`no JWT-SVID in: ${out}`)
        return svid
      },
      stopAgent: async () => {
        const p = procs.agent
        if (p === undefined) return
        p.kill('SIGTERM')
        await waitExit(p, 5000)
        procs.agent = undefined
      },
      startAgent,
      stop,
    }
    if (opts.register !== false) await spire.registerSelf()
    return spire
  } catch (err) {
    const logs = ['server.log', 'agent.log'].map((f) => existsSync(join(dir, f)) ? `--- ${f}\n${readFileSync(join(dir, f), 'utf8').slice(-4000)}` : '').join('\n')
    await stop()
    throw new Error(`${(err as Error).message}\n${logs}`, { cause: err })
  }
}
