/**
 * Per-call cost of the hot host builtins — time.now_ns, io.jwt.decode_verify,
 * crypto.x509.parse_certificates, net.cidr_merge — in Portcullis (a wasm bundle compiled by
 * `opa build -t wasm`, evaluated through PolicySnapshot.evaluate, host builtins in
 * src/policy/builtins) against the same query and input in `opa bench`. A baseline query that
 * only returns its input shows the evaluation overhead both pay without any builtin.
 *
 *   node --import tsx benchmarks/builtins.ts [--seconds 2]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../src/bundles/load.js'
import { compileBundle } from '../src/policy/engine.js'
import { PolicySnapshot } from '../src/policy/snapshot.js'
import { requireOpa } from '../scripts/lib/opa.js'
import { keys, token } from '../test/policy/builtins/cases/keys.js'
import { fmt, machine, opaBench, opsPerSecond } from './lib.js'

const argSeconds = process.argv.indexOf('--seconds')
const SECONDS = argSeconds > 0 ? Number(process.argv[argSeconds + 1]) : 2
const opa = requireOpa()
const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-builtins-'))

const k = await keys()
const NOW = 1_700_000_000
const jwt = token('RS256', { typ: 'JWT' }, { sub: 'spiffe://example.org/web', aud: 'portcullis', iss: 'issuer', exp: NOW + 3600 }, k.rsa.privateKey)
const cidrs = Array.from({ length: 100 }, (_, i) => `10.${Math.floor(i / 4)}.${(i % 4) * 64}.0/26`).concat(['192.168.0.0/24', '192.168.1.0/24', '172.16.0.1'])

const cases: Array<{ name: string, expr: string, input: unknown }> = [
  { name: 'baseline (returns input.x)', expr: 'input.x', input: { x: 1 } },
  { name: 'time.now_ns', expr: 'time.now_ns()', input: {} },
  { name: 'io.jwt.decode_verify (RS256, PEM key)', expr: 'io.jwt.decode_verify(input.token, {"cert": input.cert, "time": input.time})', input: { token: jwt, cert: k.rsa.spkiPem, time: NOW * 1e9 } },
  { name: 'crypto.x509.parse_certificates (1 EC cert)', expr: 'crypto.x509.parse_certificates(input.pem)', input: { pem: k.ecCertPem } },
  { name: 'net.cidr_merge (103 CIDRs)', expr: 'net.cidr_merge(input.cidrs)', input: { cidrs } },
]

console.log(`Host builtins: Portcullis vs opa bench — ${machine()}`)
console.log(`${SECONDS}s per measurement\n`)
console.log('| query | Portcullis ns/op | opa bench ns/op | ratio (Portcullis / OPA) |')
console.log('|---|---:|---:|---:|')
try {
  for (const [i, c] of cases.entries()) {
    const dir = join(work, String(i))
    execFileSync('mkdir', ['-p', dir])
    writeFileSync(join(dir, 'p.rego'), `package bench\n\nr := ${c.expr}\n`)
    const inputJson = JSON.stringify(c.input)
    writeFileSync(join(dir, 'input.json'), inputJson)
    execFileSync(opa, ['build', '-t', 'wasm', '-e', 'bench/r', '-o', 'b.tar.gz', 'p.rego'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    const compiled = compileBundle(await loadBundle(join(dir, 'b.tar.gz'), { name: 'bench' }))
    const snap = new PolicySnapshot(1, [{ compiled, activatedAt: new Date() }])
    const check = snap.evaluate('bench/r', undefined, { inputJson })
    if (!check.defined) throw new Error(`${c.name}: undefined in Portcullis (${JSON.stringify(check.builtinErrors)})`)
    const ours = opsPerSecond(() => { snap.evaluate('bench/r', undefined, { inputJson }) }, SECONDS)
    const theirs = opaBench(['-d', join(dir, 'p.rego'), '-i', join(dir, 'input.json'), '--benchmem=false', 'data.bench.r'])
    const ratio = theirs === undefined ? 'n/a' : (ours.nsPerOp / theirs.nsPerOp).toFixed(2)
    console.log(`| ${c.name} | ${fmt(ours.nsPerOp)} | ${theirs === undefined ? 'n/a' : fmt(theirs.nsPerOp)} | ${ratio} |`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
