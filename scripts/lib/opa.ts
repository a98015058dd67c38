/**
 * Locating the opa CLI, a build and test tool (never a runtime dependency of Portcullis).
 * Order: $OPA_BIN, the repository's .tools/bin/opa (scripts/install-opa.sh), then PATH.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const OPA_VERSION = 'v1.22.2'
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export function findOpa (): string | undefined {
  const candidates = [process.env.OPA_BIN, join(repoRoot, '.tools', 'bin', 'opa')]
  for (const c of candidates) if (c !== undefined && c !== '' && existsSync(c)) return c
  try {
    const found = execFileSync('sh', ['-c', 'command -v opa'], { encoding: 'utf8' }).trim()
    return found === '' ? undefined : found
  } catch {
    return undefined
  }
}

export function requireOpa (): string {
  const opa = findOpa()
  if (opa === undefined) {
    throw new Error('the opa CLI is required: run `npm run install:opa` (installs OPA ' + OPA_VERSION + ' into .tools/bin with Go)')
  }
  return opa
}
