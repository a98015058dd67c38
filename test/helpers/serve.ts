/**
 * `portcullis serve` as a real child process (node --import tsx src/cli/main.ts serve …), resolved
 * once every worker has logged "portcullis listening": its URL, the parsed JSON log lines and a
 * promise of its exit code. Killed with SIGKILL when the test ends (the whole process group when
 * `detached`, so a test can SIGKILL a worker group at once).
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface ServeChild {
  child: ChildProcess
  url: string
  exited: Promise<number | null>
  lines: Array<Record<string, unknown>>
}

export async function serveChild (t: { after: (fn: () => void) => void }, args: string[], opts: { workers: number, detached?: boolean, timeoutMs?: number }): Promise<ServeChild> {
  const detached = opts.detached ?? false
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...args, '--workers', String(opts.workers)], { stdio: ['ignore', 'pipe', 'inherit'], detached })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.after(() => {
    try {
      if (detached) process.kill(-(child.pid as number), 'SIGKILL')
      else if (child.exitCode === null) child.kill('SIGKILL')
    } catch { /* gone */ }
  })
  const lines: Array<Record<string, unknown>> = []
  const timeoutMs = opts.timeoutMs ?? 30_000
  return await new Promise((resolve, reject) => {
    let listening = 0
    let url = ''
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`serve did not start in ${timeoutMs / 1000} s`)), timeoutMs)
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let rec: Record<string, unknown>
        try { rec = JSON.parse(line) as Record<string, unknown> } catch { continue }
        lines.push(rec)
        if (rec.msg === 'portcullis listening') {
          url = typeof rec.url === 'string' ? rec.url : url
          if (++listening === opts.workers) {
            clearTimeout(timer)
            resolve({ child, url, exited, lines })
          }
        }
      }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`serve exited early with ${String(code)}`)) })
  })
}
