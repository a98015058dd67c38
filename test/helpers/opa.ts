/**
 * Test access to the real opa CLI. Outside CI a missing opa skips the tests that need it
 * with a clear message; in CI (CI is set) a missing opa fails them.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findOpa } from '../../scripts/lib/opa.js'

export { findOpa }

export const inCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

export const OPA_MISSING = 'opa CLI not found: run `npm run install:opa` (tests that compile policies are skipped outside CI)'

/** Options for `test()`/`describe()` that skip outside CI when opa is missing. */
export function needsOpa (): { skip?: string } {
  if (findOpa() !== undefined || inCI) return {}
  return { skip: OPA_MISSING }
}

export function runOpa (args: string[], opts: { cwd?: string, input?: string } = {}): string {
  const opa = findOpa()
  if (opa === undefined) throw new Error(inCI ? 'CI=true but the opa CLI is missing' : OPA_MISSING)
  return execFileSync(opa, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
}

/** A temporary directory removed when the test ends. */
export function tempDir (t: { after: (fn: () => void) => void }, prefix = 'portcullis-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
