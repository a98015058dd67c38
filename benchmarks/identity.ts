/**
 * Identity verification throughput: X.509-SVID chain (cold: full PKI.js path validation each
 * time; cached: verified-credential cache hit) and JWT-SVID with ES256 and RS256 (cold and cached).
 *
 *   node --import tsx benchmarks/identity.ts [--seconds 2]
 *
 * Keys and certificates are generated at start (@peculiar/x509, jose); nothing touches the network.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { availableParallelism } from 'node:os'
import { createIdentityVerifier, validateIdentityConfig, type CredentialContext, type IdentityVerifier } from '../src/identity/index.js'
import { epoch, HOUR, makeJwtKey, makeTrustDomain, signJwt, spiffeBundle, T0 } from '../test/identity/support/pki.js'

const secondsArg = process.argv.indexOf('--seconds')
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 2
const MAX_ITERATIONS = 5_000_000

async function bench (name: string, verifier: IdentityVerifier, ctx: CredentialContext): Promise<number> {
  // Warm up (and prove the credential verifies).
  for (let i = 0; i < 20; i++) {
    const r = await verifier.verify(ctx)
    if (r.kind !== 'verified') throw new Error(`${name}: ${r.kind === 'rejected' ? r.error.code : r.kind}`)
  }
  const deadline = performance.now() + SECONDS * 1000
  let n = 0
  const start = performance.now()
  while (n < MAX_ITERATIONS && performance.now() < deadline) {
    await verifier.verify(ctx)
    n++
  }
  const rate = n / ((performance.now() - start) / 1000)
  console.log(`${name.padEnd(34)} ${Math.round(rate).toString().padStart(10)} verifications/s  (${n} in ${SECONDS}s)`)
  return rate
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-identity-'))
try {
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

  const claims = { sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'portcullis', exp: epoch(HOUR) }
  const x509Ctx: CredentialContext = { peerCertificates: td.chain }
  const esCtx: CredentialContext = { headers: { authorization: `Bearer ${await signJwt(es256, claims)}` } }
  const rsCtx: CredentialContext = { headers: { authorization: `Bearer ${await signJwt(rs256, claims)}` } }

  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${SECONDS}s per case, single caller`)
  await bench('X.509-SVID chain (cold)', cold, x509Ctx)
  await bench('X.509-SVID chain (cached)', cached, x509Ctx)
  await bench('JWT-SVID ES256 (cold)', cold, esCtx)
  await bench('JWT-SVID ES256 (cached)', cached, esCtx)
  await bench('JWT-SVID RS256 (cold)', cold, rsCtx)
  await bench('JWT-SVID RS256 (cached)', cached, rsCtx)
  await Promise.all([cold.close(), cached.close()])
} finally {
  rmSync(dir, { recursive: true, force: true })
}
