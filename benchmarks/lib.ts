/** Shared benchmark helpers: machine facts and bounded timing loops. */
import { cpus, totalmem } from 'node:os'
import { execFileSync } from 'node:child_process'
import { findOpa } from '../scripts/lib/opa.js'

export function machine (): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  let opa = 'opa not installed'
  const bin = findOpa()
  if (bin !== undefined) opa = execFileSync(bin, ['version'], { encoding: 'utf8' }).split('\n')[0] ?? opa
  return `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${opa}`
}

/** Runs `fn` repeatedly for at most `seconds` (and at most `maxIterations`); returns ops/s. */
export function opsPerSecond (fn: (i: number) => void, seconds = 3, maxIterations = 5_000_000): { ops: number, n: number, nsPerOp: number } {
  // warm up
  for (let i = 0; i < 1000; i++) fn(i)
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9))
  const start = process.hrtime.bigint()
  let n = 0
  while (n < maxIterations) {
    for (let j = 0; j < 256; j++) fn(n++)
    if (process.hrtime.bigint() >= deadline) break
  }
  const ns = Number(process.hrtime.bigint() - start)
  return { ops: n / (ns / 1e9), n, nsPerOp: ns / n }
}

/** `opa bench` ns/op for a query (Go's testing.B result). */
export function opaBench (args: string[]): { nsPerOp: number, ops: number } | undefined {
  const bin = findOpa()
  if (bin === undefined) return undefined
  const out = JSON.parse(execFileSync(bin, ['bench', '--format', 'json', '--count', '1', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })) as { N: number, T: number }
  const nsPerOp = out.T / out.N
  return { nsPerOp, ops: 1e9 / nsPerOp }
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
