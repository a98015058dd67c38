/**
 * Test access to test/bundles/gomatch, Go's path/filepath.Match as a command (the function OPA
 * applies to signing.exclude_files), built by scripts/install-gomatch.sh into .tools/bin. A
 * missing binary fails the tests that need it in CI (CI is set) and skips them elsewhere with a
 * clear message, like helpers/tlogcheck.ts.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../scripts/lib/opa.js'
import { inCI } from './opa.js'

export const GOMATCH_MISSING = 'gomatch not found: run `bash scripts/install-gomatch.sh` (needs Go; the filepath.Match cross-check is skipped outside CI)'

export function findGomatch (): string | undefined {
  const bin = join(repoRoot, '.tools', 'bin', 'gomatch')
  return existsSync(bin) ? bin : undefined
}

export function needsGomatch (): { skip?: string } {
  if (findGomatch() !== undefined || inCI) return {}
  return { skip: GOMATCH_MISSING }
}

export interface GoMatchAnswer { match: boolean, bad_pattern: boolean }

/** Go's filepath.Match for each (pattern, name) pair. */
export function goMatch (pairs: Array<[string, string]>): GoMatchAnswer[] {
  const bin = findGomatch()
  if (bin === undefined) throw new Error(inCI ? 'CI=true but gomatch is missing (scripts/install-gomatch.sh)' : GOMATCH_MISSING)
  const r = spawnSync(bin, [], { input: JSON.stringify({ pairs }), encoding: 'utf8', timeout: 60_000, maxBuffer: 1 << 28 })
  if (r.error !== undefined) throw r.error
  if (r.status !== 0) throw new Error(`gomatch exited ${String(r.status)}: ${r.stderr}`)
  return (JSON.parse(r.stdout) as { answers: GoMatchAnswer[] }).answers
}
