/** Compiles one Rego module into a wasm bundle with the real opa and loads it into Portcullis. */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadBundle } from '../../../src/bundles/load.js'
import { compileBundle, type CompiledBundle } from '../../../src/policy/engine.js'
import { PolicySnapshot } from '../../../src/policy/snapshot.js'
import { findOpa, tempDir } from '../../helpers/opa.js'

export async function compileWith (t: { after: (fn: () => void) => void }, rego: string, entrypoint: string, switches: string[]): Promise<CompiledBundle> {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'policy.rego'), rego)
  execFileSync(findOpa() as string, ['build', '-t', 'wasm', '-e', entrypoint, '-o', 'bundle.tar.gz', 'policy.rego'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const bundle = await loadBundle(join(dir, 'bundle.tar.gz'), { name: 'test' })
  return compileBundle(bundle, { builtins: { switches: new Set(switches) } })
}

export async function snapshotOf (t: { after: (fn: () => void) => void }, rego: string, entrypoint: string, switches: string[] = []): Promise<PolicySnapshot> {
  const compiled = await compileWith(t, rego, entrypoint, switches)
  return new PolicySnapshot(1, [{ compiled, activatedAt: new Date() }])
}
