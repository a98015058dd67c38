/**
 * Compiles fixture policies under test/fixtures/bundles/<name>/ into real OPA wasm bundles
 * with the real opa CLI (never hand-made wasm), into a per-test temporary directory.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findOpa } from './opa.js'

export const fixturesDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures')

export interface BuildOptions {
  revision?: string
  /** PEM private key file and algorithm: sign with `opa build --signing-key`. */
  signingKey?: string
  signingAlg?: string
  /** Extra claims file for the signature (`--claims-file`). */
  claimsFile?: string
  /** Key id written into the JWS header (`--verification-key-id`; OPA's default is "default"). */
  keyId?: string
  /** Extra `opa build` arguments. */
  extraArgs?: string[]
  /** Build into a directory bundle (unpacked) instead of leaving the .tar.gz. */
  output?: string
}

/** Copies fixture `name` into `workDir/src-<name>` so tests may modify it before building. */
export function copyFixture (name: string, workDir: string): string {
  const dest = join(workDir, `src-${name}-${Math.random().toString(36).slice(2, 8)}`)
  cpSync(join(fixturesDir, 'bundles', name), dest, { recursive: true })
  return dest
}

/** Builds the bundle source directory `srcDir` with `opa build -b . -t wasm`; returns the .tar.gz path. */
export function buildBundleDir (srcDir: string, out: string, opts: BuildOptions = {}): string {
  const opa = findOpa()
  if (opa === undefined) throw new Error('opa CLI not found')
  const args = ['build', '-b', '.', '-t', 'wasm', '-o', out, '--revision', opts.revision ?? 'test-rev-1']
  if (opts.signingKey !== undefined) {
    args.push('--signing-key', opts.signingKey, '--signing-alg', opts.signingAlg ?? 'RS256')
    if (opts.claimsFile !== undefined) args.push('--claims-file', opts.claimsFile)
    if (opts.keyId !== undefined) args.push('--verification-key-id', opts.keyId)
  }
  args.push(...(opts.extraArgs ?? []))
  execFileSync(opa, args, { cwd: srcDir, stdio: ['ignore', 'pipe', 'pipe'] })
  return out
}

/** Builds fixture `name` into `workDir/<out>` and returns its path. */
export function buildFixture (name: string, workDir: string, opts: BuildOptions & { out?: string } = {}): string {
  const src = copyFixture(name, workDir)
  return buildBundleDir(src, join(workDir, opts.out ?? `${name}.tar.gz`), opts)
}

/** A capabilities file with one extra builtin no implementation exists for. */
export function capabilitiesWithUnknownBuiltin (workDir: string): string {
  const opa = findOpa()
  if (opa === undefined) throw new Error('opa CLI not found')
  const caps = JSON.parse(execFileSync(opa, ['capabilities', '--current'], { encoding: 'utf8' })) as { builtins: unknown[] }
  caps.builtins.push({ name: 'portcullis_test.never_implemented', decl: { type: 'function', args: [{ type: 'any' }], result: { type: 'boolean' } } })
  const file = join(workDir, 'capabilities.json')
  writeFileSync(file, JSON.stringify(caps))
  return file
}

export function readJson<T = unknown> (file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T
}
