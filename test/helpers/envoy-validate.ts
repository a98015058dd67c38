/**
 * Test access to tools/envoy-validate, the Envoy bootstrap validator built by
 * scripts/install-envoy-validate.sh into .tools/bin (Envoy itself cannot be installed on the
 * project's machines). Like the opa CLI (helpers/opa.ts): outside CI a missing binary skips the
 * tests that need it with a clear message; in CI (CI is set) a missing binary fails them.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../scripts/lib/opa.js'
import { inCI } from './opa.js'

export const ENVOY_VALIDATE_MISSING = 'envoy-validate not found: run `bash scripts/install-envoy-validate.sh` (needs Go; tests that validate Envoy bootstraps are skipped outside CI)'

/** $ENVOY_VALIDATE_BIN, else the repository's .tools/bin/envoy-validate. */
export function findEnvoyValidate (): string | undefined {
  for (const c of [process.env.ENVOY_VALIDATE_BIN, join(repoRoot, '.tools', 'bin', 'envoy-validate')]) {
    if (c !== undefined && c !== '' && existsSync(c)) return c
  }
  return undefined
}

/** Options for `test()`/`describe()` that skip outside CI when the validator is missing. */
export function needsEnvoyValidate (): { skip?: string } {
  if (findEnvoyValidate() !== undefined || inCI) return {}
  return { skip: ENVOY_VALIDATE_MISSING }
}

export interface EnvoyValidateProblem { file: string, kind: string, message: string }

/** Runs the validator on files; each stderr line is `<file>: <KIND>: <message>`. */
export function runEnvoyValidate (files: string[]): { status: number | null, stdout: string, problems: EnvoyValidateProblem[] } {
  const bin = findEnvoyValidate()
  if (bin === undefined) throw new Error(inCI ? 'CI=true but envoy-validate is missing (scripts/install-envoy-validate.sh)' : ENVOY_VALIDATE_MISSING)
  const r = spawnSync(bin, files, { encoding: 'utf8', timeout: 60_000 })
  if (r.error !== undefined) throw r.error
  const problems = r.stderr.split('\n').filter((l) => l !== '').map((line) => {
    const m = /^(?<file>.*?): (?<kind>[A-Z_]+): (?<message>.*)$/.exec(line)
    const g = m?.groups
    if (g?.file === undefined || g.kind === undefined || g.message === undefined) throw new Error(`envoy-validate printed a line without a problem kind: ${line}`)
    return { file: g.file, kind: g.kind, message: g.message }
  })
  return { status: r.status, stdout: r.stdout, problems }
}
