/**
 * npm run bench:canonical-hash — the signature hash of a large data.json (issue 12): OPA's
 * canonical JSON hashed on the bytes (src/bundles/canonical-hash.ts, what verify.ts does) vs
 * the JavaScript-value path it replaced (parse into values, serialize into one string, hash;
 * kept as the test oracle, test/helpers/canonical-json-oracle.ts).
 *
 * The data is the large-data benchmark's (CH_MB, default 40), in two forms: as generated (each
 * user's members out of order, so every user object is sorted) and as `opa build` writes it
 * into a bundle (already canonical: checked and hashed as one range). Each run is a fresh
 * process (node --import tsx) that reads the file, then hashes it once: the wall time of the
 * hash, the RSS before it and the peak RSS (VmHWM) after it. CH_RUNS runs (default 3) per
 * implementation and form, interleaved. Both implementations must give the same digest.
 *
 *   flock /tmp/bench.lock npm run bench:canonical-hash
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machine } from './lib.js'
import { generateData } from './entitlements-data.js'
import { opaCanonicalJson, writeOpaCanonicalJson } from '../src/bundles/canonical-hash.js'
import { goCanonicalJsonFromTextOracle } from '../test/helpers/canonical-json-oracle.js'

const MB = Number(process.env.CH_MB ?? 40)
const RUNS = Number(process.env.CH_RUNS ?? 3)

function statusMb (field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))
  return m === null ? NaN : Number(m[1]) / 1024
}

interface Run { ms: number, rssBefore: number, peak: number, digest: string }

/** In the child: hash `file` once with `impl`, print a Run as JSON. */
function child (impl: string, file: string): void {
  const bytes = readFileSync(file)
  const rssBefore = statusMb('VmRSS')
  const t0 = performance.now()
  const h = createHash('sha256')
  if (impl === 'bytes') writeOpaCanonicalJson(bytes, (c) => { h.update(c) })
  else h.update(goCanonicalJsonFromTextOracle(bytes.toString('utf8')), 'utf8')
  const digest = h.digest('hex')
  const ms = performance.now() - t0
  console.log(JSON.stringify({ ms, rssBefore, peak: statusMb('VmHWM'), digest }))
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

function main (): void {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-canonical-hash-'))
  try {
    const generated = generateData(MB * 1e6, 1)
    const forms = { 'as generated (members out of order)': generated, 'as opa build writes it (canonical)': opaCanonicalJson(generated) }
    console.error(`data ${MB} MB; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
    const rows: string[] = []
    for (const [form, bytes] of Object.entries(forms)) {
      const file = join(work, 'data.json')
      writeFileSync(file, bytes)
      const runs: Record<string, Run[]> = { values: [], bytes: [] }
      for (let i = 0; i < RUNS; i++) {
        for (const impl of ['values', 'bytes']) {
          const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', impl, file], { encoding: 'utf8', maxBuffer: 1 << 20 })
          const r = JSON.parse(out) as Run
          console.error(`${form} ${impl}: ${Math.round(r.ms)} ms, RSS ${Math.round(r.rssBefore)} -> peak ${Math.round(r.peak)} MB`)
          runs[impl]?.push(r)
        }
      }
      const digests = new Set([...(runs.values ?? []), ...(runs.bytes ?? [])].map((r) => r.digest))
      if (digests.size !== 1) throw new Error(`${form}: the implementations disagree`)
      for (const impl of ['values', 'bytes']) {
        const rs = runs[impl] as Run[]
        const name = impl === 'bytes' ? 'on the bytes, streamed (now)' : 'JavaScript values, one string (before)'
        rows.push(`| ${(bytes.length / 1e6).toFixed(1)} MB ${form} | ${name} | ${rs.map((r) => Math.round(r.ms)).join(', ')} | ${Math.round(median(rs.map((r) => r.ms)))} | ${Math.round(median(rs.map((r) => r.rssBefore)))} | ${Math.round(median(rs.map((r) => r.peak)))} | ${Math.round(median(rs.map((r) => r.peak - r.rssBefore)))} |`)
      }
    }
    console.log(`machine: ${machine()}; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`)
    console.log('')
    console.log('| data.json | hashing | runs (ms) | median (ms) | RSS before, file read (MB) | peak RSS (MB) | peak minus before (MB) |')
    console.log('|---|---|---|---:|---:|---:|---:|')
    for (const r of rows) console.log(r)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

const at = process.argv.indexOf('--child')
if (at >= 0) child(process.argv[at + 1] as string, process.argv[at + 2] as string)
else main()
