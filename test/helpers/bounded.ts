/**
 * Runs a hostile-input case in a child process that is killed when it overruns a bound: the
 * regression these guard against is a quadratic (or worse) algorithm that holds the event
 * loop for minutes. In-process, synchronous work cannot be interrupted (node:test's timeout
 * fires only once the work has returned), so such a regression would hang the suite instead of
 * failing it. The bound is a DoS bound with a wide margin (the linear code takes well under a
 * second), not a speed measurement: speed lives in benchmarks/.
 */
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Runs `code` (an ES module body; may import from src/ by path relative to the repository) under tsx within `ms`; its stdout, or why it failed. */
export function runBounded (code: string, ms = 30_000): { ok: true, stdout: string } | { ok: false, why: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, timeout: ms, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
  if (r.error !== undefined) return { ok: false, why: `${r.error.message} (bound ${ms} ms)` }
  if (r.status !== 0) return { ok: false, why: `exit ${String(r.status)} ${String(r.signal)}: ${r.stderr.slice(0, 2000)}` }
  return { ok: true, stdout: r.stdout }
}
