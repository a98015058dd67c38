/** Compiles one Rego module into a wasm bundle with the real opa and loads it into Portcullis. */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadBundle } from '../../../src/bundles/load.js'
import { compileBundle, type CompiledBundle } from '../../../src/policy/engine.js'
import { PolicySnapshot } from '../../../src/policy/snapshot.js'
import { findOpa, tempDir } from '../../helpers/opa.js'
import { PolicyError } from '../../../src/errors.js'

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

/**
 * What `opa eval --strict-builtin-errors` answers for `data.<entrypoint>` (slashes as dots) on
 * one module: the code of its first error (e.g. `eval_builtin_error`), or undefined when it
 * evaluated without error.
 */
export function opaStrictErrorCode (t: { after: (fn: () => void) => void }, rego: string, entrypoint: string, input?: unknown): string | undefined {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'policy.rego'), rego)
  const args = ['eval', '--strict-builtin-errors', '--format', 'json', '-d', 'policy.rego', `data.${entrypoint.replaceAll('/', '.')}`]
  if (input !== undefined) {
    writeFileSync(join(dir, 'input.json'), JSON.stringify(input))
    args.push('-i', 'input.json')
  }
  try {
    execFileSync(findOpa() as string, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return undefined
  } catch (err) {
    const out = JSON.parse(String((err as { stdout?: string }).stdout)) as { errors?: Array<{ code?: string }> }
    return out.errors?.[0]?.code ?? 'unknown'
  }
}

/** Whether Portcullis fails the decision in strict mode with a builtin error (PORTCULLIS_POLICY_BUILTIN_ERROR, opa code eval_builtin_error). */
export function isStrictBuiltinError (err: unknown): boolean {
  return err instanceof PolicyError && err.code === 'PORTCULLIS_POLICY_BUILTIN_ERROR' && (err.details as { opa_code?: string }).opa_code === 'eval_builtin_error'
}
