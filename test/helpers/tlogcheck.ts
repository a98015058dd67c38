/**
 * Test access to test/audit/tlogcheck, Go's golang.org/x/mod/sumdb/tlog as a command, built by
 * scripts/install-tlogcheck.sh into .tools/bin: the independent implementation the audit log's
 * Merkle tree is checked against. A missing binary fails the tests that need it in CI
 * (CI is set) and skips them elsewhere with a clear message, like helpers/envoy-validate.ts.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../../scripts/lib/opa.js'
import { inCI } from './opa.js'

export const TLOGCHECK_MISSING = 'tlogcheck not found: run `bash scripts/install-tlogcheck.sh` (needs Go; the tlog cross-check is skipped outside CI)'

export function findTlogcheck (): string | undefined {
  for (const c of [process.env.TLOGCHECK_BIN, join(repoRoot, '.tools', 'bin', 'tlogcheck')]) {
    if (c !== undefined && c !== '' && existsSync(c)) return c
  }
  return undefined
}

export function needsTlogcheck (): { skip?: string } {
  if (findTlogcheck() !== undefined || inCI) return {}
  return { skip: TLOGCHECK_MISSING }
}

export type TlogQuery =
  | { op: 'tree', n: number }
  | { op: 'record', i: number, n: number, proof: string[] }
  | { op: 'consistency', m: number, n: number, proof: string[] }

export interface TlogAnswer { root?: string, proof?: string[], check?: string, error?: string }

/** Runs tlogcheck over the entries; every hash in and out is base64. */
export function runTlogcheck (entries: Buffer[], queries: TlogQuery[]): { stored: string[], answers: TlogAnswer[] } {
  const bin = findTlogcheck()
  if (bin === undefined) throw new Error(inCI ? 'CI=true but tlogcheck is missing (scripts/install-tlogcheck.sh)' : TLOGCHECK_MISSING)
  const input = JSON.stringify({ entries: entries.map((e) => e.toString('base64')), queries })
  const r = spawnSync(bin, [], { input, encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 30 })
  if (r.error !== undefined) throw r.error
  if (r.status !== 0) throw new Error(`tlogcheck exited ${String(r.status)}: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as { stored: string[] | null, answers: TlogAnswer[] }
  return { stored: out.stored ?? [], answers: out.answers }
}
