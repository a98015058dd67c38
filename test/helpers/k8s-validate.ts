/**
 * Test access to tools/k8s-validate, the Kubernetes manifest validator built by
 * scripts/install-k8s-validate.sh into .tools/bin (no cluster runs on the project's machines).
 * Like the opa CLI (helpers/opa.ts): outside CI a missing binary skips the tests that need it
 * with a clear message; in CI (CI is set) a missing binary fails them.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../scripts/lib/opa.js'
import { inCI } from './opa.js'

export const K8S_VALIDATE_MISSING = 'k8s-validate not found: run `bash scripts/install-k8s-validate.sh` (needs Go; tests that validate Kubernetes manifests are skipped outside CI)'

/** $K8S_VALIDATE_BIN, else the repository's .tools/bin/k8s-validate. */
export function findK8sValidate (): string | undefined {
  for (const c of [process.env.K8S_VALIDATE_BIN, join(repoRoot, '.tools', 'bin', 'k8s-validate')]) {
    if (c !== undefined && c !== '' && existsSync(c)) return c
  }
  return undefined
}

/** Options for `test()`/`describe()` that skip outside CI when the validator is missing. */
export function needsK8sValidate (): { skip?: string } {
  if (findK8sValidate() !== undefined || inCI) return {}
  return { skip: K8S_VALIDATE_MISSING }
}

export interface K8sValidateProblem { file: string, kind: string, message: string }

/**
 * Runs the validator on one set of files (a kustomization.yaml brings in its resources); each
 * stderr line is `<file>: <KIND>: <message>`, each valid file a stdout line `<file>: valid (N objects)`.
 */
export function runK8sValidate (files: string[]): { status: number | null, valid: string[], problems: K8sValidateProblem[] } {
  const bin = findK8sValidate()
  if (bin === undefined) throw new Error(inCI ? 'CI=true but k8s-validate is missing (scripts/install-k8s-validate.sh)' : K8S_VALIDATE_MISSING)
  const r = spawnSync(bin, files, { encoding: 'utf8', timeout: 60_000 })
  if (r.error !== undefined) throw r.error
  const problems = r.stderr.split('\n').filter((l) => l !== '').map((line) => {
    const m = /^(?<file>.*?): (?<kind>[A-Z_]+): (?<message>.*)$/.exec(line)
    const g = m?.groups
    if (g?.file === undefined || g.kind === undefined || g.message === undefined) throw new Error(`k8s-validate printed a line without a problem kind: ${line}`)
    return { file: g.file, kind: g.kind, message: g.message }
  })
  const valid = r.stdout.split('\n').flatMap((l) => {
    const m = /^(.*): valid \(\d+ objects\)$/.exec(l)
    return m?.[1] !== undefined ? [m[1]] : []
  })
  return { status: r.status, valid, problems }
}
