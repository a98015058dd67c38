/**
 * The real OPA server (`opa run --server`) as a child process on loopback, for tests that
 * compare Portcullis with OPA on the wire. Resolves once `GET /health?bundles` answers 200.
 * The port is picked free first (OPA cannot report a port it chose itself); a start that lost
 * the port to another process is retried a bounded number of times.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { findOpa, inCI, OPA_MISSING } from './opa.js'
import { freePort } from './nginx.js'

export interface OpaServer {
  url: string
  child: ChildProcess
  /** Stops the server (SIGTERM, then SIGKILL after 3 s); resolves when it exited. */
  stop: () => Promise<void>
}

const START_ATTEMPTS = 3
const START_TIMEOUT_MS = 20_000

/** Starts `opa run --server --addr 127.0.0.1:<free port> ...args` and waits until it is healthy. */
export async function startOpaServer (args: string[]): Promise<OpaServer> {
  const opa = findOpa()
  if (opa === undefined) throw new Error(inCI ? 'CI=true but the opa CLI is missing' : OPA_MISSING)
  let lastError: Error | undefined
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort()
    const child = spawn(opa, ['run', '--server', '--addr', `127.0.0.1:${port}`, '--log-level', 'error', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
    const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
    const url = `http://127.0.0.1:${port}`
    const deadline = Date.now() + START_TIMEOUT_MS
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const r = await fetch(`${url}/health?bundles`, { signal: AbortSignal.timeout(1000) })
        await r.arrayBuffer()
        if (r.status === 200) return { url, child, stop }
      } catch { /* not listening yet */ }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await stop()
    lastError = new Error(`opa run --server on port ${port} did not become healthy: ${stderr}`)
    if (!/address already in use/.test(stderr)) break
  }
  throw lastError ?? new Error('opa run --server did not start')
}
