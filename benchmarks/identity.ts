/**
 * Identity verification throughput, one caller, through createIdentityVerifier().verify():
 * X.509-SVID chains and JWT-SVIDs (ES256, RS256), cold (verified-credential cache off) and
 * cached, printed beside `openssl speed` verify figures for the same algorithms (one core,
 * the physical limit of a verification that has to check one signature).
 *
 *   node --import tsx benchmarks/identity.ts [--seconds 3] [--leaves 5000] [--no-openssl]
 *
 * "cold, distinct leaves" cycles through --leaves generated leaves, each with its own SPIFFE ID
 * and subject (x509-svid.ts keeps no per-leaf or per-name cache; runs 1–4 of benchmarks/README.md
 * were taken when it kept 4,096 printed names, which 5,000 leaves exceed), so every verification meets a leaf as for the first time: a rotation storm or an attacker with
 * fresh certificates. "cold, same leaf" repeats one chain with the cache off (the figure issue
 * 12 started from). JWT-SVID cold cycles through 1,000 distinct tokens.
 *
 * Each case prints verifications per second of wall-clock time and per CPU-second of this process
 * (process.cpuUsage: user + system, every thread). `openssl speed` reports per CPU-second, so the
 * second figure is the one to set beside it and against the per-core targets on a shared machine.
 *
 * Keys and certificates are generated at start (@peculiar/x509, jose); nothing touches the
 * network. Wrap runs in `flock /tmp/bench.lock` on a shared machine.
 */
import { spawnSync } from 'node:child_process'
import { webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createIdentityVerifier, validateIdentityConfig, type CredentialContext, type IdentityVerifier } from '../src/identity/index.js'
import { jwsPathStats } from '../src/identity/jws.js'
import { x509LeafReads, x509PathStats } from '../src/identity/x509-svid.js'
import { epoch, HOUR, makeJwtKey, makeLeaf, makeTrustDomain, signJwt, spiffeBundle, T0 } from '../test/identity/support/pki.js'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : fallback
}
const SECONDS = arg('--seconds', 3)
const LEAVES = arg('--leaves', 5000)
const OPENSSL = !process.argv.includes('--no-openssl')
const MAX_ITERATIONS = 5_000_000

async function bench (name: string, verifier: IdentityVerifier, contexts: readonly CredentialContext[]): Promise<number> {
  // Prove every credential verifies (this also warms the code, not the leaves: each pool is larger than any leaf-level cache).
  for (const ctx of contexts.slice(0, 20)) {
    const r = await verifier.verify(ctx)
    if (r.kind !== 'verified') throw new Error(`${name}: ${r.kind === 'rejected' ? r.error.code : r.kind}`)
  }
  const deadline = performance.now() + SECONDS * 1000
  let n = 0
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  while (n < MAX_ITERATIONS && performance.now() < deadline) {
    const r = await verifier.verify(contexts[n % contexts.length] as CredentialContext)
    if (r.kind !== 'verified') throw new Error(`${name}: ${r.kind === 'rejected' ? r.error.code : r.kind}`)
    n++
  }
  const rate = n / ((performance.now() - start) / 1000)
  // openssl speed reports per CPU-second of its process; this is the same measure (user + system
  // time of every thread of this process, GC helpers included), so a shared machine's other load
  // does not count against the verifier as it does in the wall-clock rate.
  const cpu = process.cpuUsage(cpu0)
  const cpuRate = n / ((cpu.user + cpu.system) / 1e6)
  console.log(`${name.padEnd(44)} ${Math.round(rate).toString().padStart(10)} verifications/s  ${Math.round(cpuRate).toString().padStart(10)} per CPU-second  (${n} in ${SECONDS}s)`)
  return cpuRate
}

/** `openssl speed -seconds N <alg>` verify/s, bounded; undefined when openssl is missing or slow. */
function opensslVerifyRate (alg: 'ecdsap256' | 'rsa2048'): number | undefined {
  const r = spawnSync('openssl', ['speed', '-seconds', String(SECONDS), alg], { encoding: 'utf8', timeout: (SECONDS * 6 + 30) * 1000 })
  if (r.status !== 0 || typeof r.stdout !== 'string') return undefined
  // Last line: "... sign/s verify/s" values are the last two numbers.
  const line = r.stdout.trim().split('\n').at(-1) ?? ''
  const nums = line.trim().split(/\s+/).map(Number).filter((x) => Number.isFinite(x))
  return nums.at(-1)
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-identity-'))
try {
  const load0 = loadavg()
  const td = await makeTrustDomain('example.org')
  const es256 = await makeJwtKey('ES256', 'es')
  const rs256 = await makeJwtKey('RS256', 'rs')
  writeFileSync(join(dir, 'root.pem'), td.root.pem)
  writeFileSync(join(dir, 'bundle.json'), await spiffeBundle({ jwt: [es256, rs256] }))
  const raw = (cache: boolean): unknown => ({
    trust_domains: { 'example.org': { x509_authorities: [join(dir, 'root.pem')], spiffe_bundles: [join(dir, 'bundle.json')] } },
    jwt_svid: { audiences: ['portcullis'] },
    cache: { enabled: cache },
    watch: { enabled: false },
  })
  const now = (): Date => T0
  const cold = createIdentityVerifier(validateIdentityConfig(raw(false)), { now })
  const cached = createIdentityVerifier(validateIdentityConfig(raw(true)), { now })
  await Promise.all([cold.ready, cached.ready])

  const leaves: CredentialContext[] = []
  // One key pair for every leaf: the verifier never reads a leaf's own key, and issuing is then quick.
  const leafKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  for (let i = 0; i < LEAVES; i++) {
    const leaf = await makeLeaf({ issuer: td.intermediate, uris: [`spiffe://example.org/ns/bench/sa/w${i}`], subject: `CN=w${i}, O=SPIRE, C=US`, keys: leafKeys })
    leaves.push({ peerCertificates: [leaf.der, td.intermediate.der] })
  }
  const tokens = async (key: typeof es256): Promise<CredentialContext[]> => await Promise.all(Array.from({ length: 1000 }, async (_, i) =>
    ({ headers: { authorization: `Bearer ${await signJwt(key, { sub: `spiffe://example.org/ns/bench/sa/w${i}`, aud: 'portcullis', exp: epoch(HOUR) })}` } })))
  const esTokens = await tokens(es256)
  const rsTokens = await tokens(rs256)
  const x509Ctx: CredentialContext = { peerCertificates: td.chain }

  console.log(`node ${process.version}, nproc ${availableParallelism()}, CPU ${cpus()[0]?.model ?? 'unknown'}, load average before ${load0.map((l) => l.toFixed(2)).join(' ')}, ${SECONDS}s per case, single caller`)
  const x0 = { ...x509PathStats }
  const j0 = { ...jwsPathStats }
  const l0 = { ...x509LeafReads }
  const x509Cold = await bench(`X.509-SVID chain (cold, ${LEAVES} distinct leaves)`, cold, leaves)
  await bench('X.509-SVID chain (cold, same leaf)', cold, [x509Ctx])
  await bench('X.509-SVID chain (cached)', cached, [x509Ctx])
  const esCold = await bench('JWT-SVID ES256 (cold, 1000 distinct tokens)', cold, esTokens)
  await bench('JWT-SVID ES256 (cached)', cached, esTokens.slice(0, 1))
  const rsCold = await bench('JWT-SVID RS256 (cold, 1000 distinct tokens)', cold, rsTokens)
  await bench('JWT-SVID RS256 (cached)', cached, rsTokens.slice(0, 1))
  console.log(`decided by the node:crypto paths: X.509 ${x509PathStats.fast - x0.fast} (deferred to PKI.js ${x509PathStats.deferred - x0.deferred}), JWT ${jwsPathStats.fast - j0.fast} (deferred to jose ${jwsPathStats.deferred - j0.deferred})`)
  console.log(`X.509 leaves read by node-forge ${x509LeafReads.nodeForge - l0.nodeForge}, by asn1js ${x509LeafReads.asn1js - l0.asn1js}`)
  await Promise.all([cold.close(), cached.close()])

  if (OPENSSL) {
    // One ECDSA P-256 verify per X.509 leaf and per ES256 token; one RSA-2048 verify per RS256 token.
    const ec = opensslVerifyRate('ecdsap256')
    const rsa = opensslVerifyRate('rsa2048')
    const pct = (x: number, of: number | undefined): string => of === undefined ? 'n/a' : `${(100 * x / of).toFixed(0)} %`
    console.log(`openssl speed -seconds ${SECONDS}: ecdsap256 verify ${ec === undefined ? 'n/a' : Math.round(ec)}/s, rsa2048 verify ${rsa === undefined ? 'n/a' : Math.round(rsa)}/s`)
    console.log(`of that limit (per CPU-second): X.509 cold ${pct(x509Cold, ec)} (target 4,000/s), ES256 cold ${pct(esCold, ec)} (target 12,000/s), RS256 cold ${pct(rsCold, rsa)} (target 10,000/s)`)
  }
  console.log(`load average after ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
