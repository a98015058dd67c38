/**
 * Building the policy packages under policies/ into OPA wasm bundles under bundles/.
 *
 * Each directory policies/<name>/ holding a `.manifest` is one bundle. Entrypoints are the
 * rules annotated `# METADATA / # entrypoint: true`, which `opa build` picks up. The revision
 * is derived from the content of the files that go into the bundle and the pinned OPA
 * version, so rebuilding unchanged sources gives the same revision (and, opa build being
 * deterministic, the same bytes).
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { OPA_VERSION, repoRoot, requireOpa } from './opa.js'

export const policiesDir = join(repoRoot, 'policies')
export const bundlesDir = join(repoRoot, 'bundles')

/** Policy package directories: policies/<name>/ with a .manifest. */
export function policyPackages (dir = policiesDir): Array<{ name: string, dir: string }> {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, '.manifest')))
    .map((e) => ({ name: e.name, dir: join(dir, e.name) }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** Files of a policy package that go into its bundle: everything but *_test.rego. */
export function bundleSourceFiles (dir: string): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      if (e.isDirectory()) walk(full)
      else if (e.isFile() && !e.name.endsWith('_test.rego')) out.push(relative(dir, full).split(sep).join('/'))
    }
  }
  walk(dir)
  return out.sort()
}

/** Content-derived revision: SHA-256 over the OPA version and each source file's name and bytes. */
export function sourceRevision (dir: string): string {
  const h = createHash('sha256')
  h.update(`opa ${OPA_VERSION}\0`)
  for (const f of bundleSourceFiles(dir)) {
    h.update(f).update('\0').update(readFileSync(join(dir, f))).update('\0')
  }
  return h.digest('hex').slice(0, 20)
}

/** Runs `opa build -t wasm` for one package, writing `out`. */
export function buildPolicy (pkg: { name: string, dir: string }, out: string, opa = requireOpa()): string {
  const revision = sourceRevision(pkg.dir)
  execFileSync(opa, [
    'build', '-b', '.', '-t', 'wasm',
    '--ignore', '*_test.rego',
    '--revision', revision,
    '-o', out,
  ], { cwd: pkg.dir, stdio: ['ignore', 'inherit', 'inherit'] })
  if (!statSync(out).isFile()) throw new Error(`opa build wrote no ${out}`)
  return revision
}
