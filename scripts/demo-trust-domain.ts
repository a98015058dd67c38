/**
 * npm run demo:trust-domain — (re)generates examples/demo-trust-domain/: the DEMO-ONLY trust
 * domain `example.org` that `npm start` verifies identities against and
 * `portcullis identity issue --demo` issues SVIDs from. Every run makes new keys.
 *
 * Its private keys are committed to a public repository: anyone can issue any identity of
 * this trust domain. Never configure it anywhere but a demo on your own machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { derToPem } from '../src/identity/pem.js'
import { createRootCa, generateSigningKey, issueX509Svid, jwtBundleEntry, loadJwtSigningKey, privateKeyPem, x509BundleEntry } from '../src/identity/issue.js'
import { DEMO_FILES, DEMO_TRUST_DOMAIN, demoTrustDomainDir } from '../src/cli/identity-issue.js'

const YEAR_MS = 365 * 24 * 3600_000
const dir = demoTrustDomainDir()
mkdirSync(dir, { recursive: true })
const now = new Date()
const notAfter = new Date(now.getTime() + 10 * YEAR_MS)

const ca = await createRootCa(DEMO_TRUST_DOMAIN, { key: await generateSigningKey(), notBefore: new Date(now.getTime() - 60_000), notAfter, commonName: `DEMO ONLY - ${DEMO_TRUST_DOMAIN} root CA - never trust in production` })
const jwtKey = await loadJwtSigningKey(await privateKeyPem(await generateSigningKey()))
// The listener's own certificate for the mTLS example: an SVID with the names clients dial.
const server = await issueX509Svid(ca, `spiffe://${DEMO_TRUST_DOMAIN}/portcullis`, { ttlSeconds: Math.floor((notAfter.getTime() - now.getTime()) / 1000), dnsNames: ['localhost'], ips: ['127.0.0.1'], now })

const bundle = {
  keys: [await x509BundleEntry(ca), await jwtBundleEntry(jwtKey)],
  spiffe_sequence: 1,
  spiffe_refresh_hint: 3600,
}
const write = (name: string, text: string, mode = 0o644): void => { writeFileSync(join(dir, name), text, { mode }) }
write(DEMO_FILES.caCert, derToPem(ca.der))
write(DEMO_FILES.caKey, await privateKeyPem(ca.key))
write(DEMO_FILES.jwtKey, await privateKeyPem(jwtKey.key))
write(DEMO_FILES.bundle, JSON.stringify(bundle, null, 2) + '\n')
write(DEMO_FILES.serverCert, server.certPem)
write(DEMO_FILES.serverKey, server.keyPem)
console.log(`wrote the DEMO-ONLY trust domain ${DEMO_TRUST_DOMAIN} to ${dir} (CA valid until ${notAfter.toISOString()}, JWT key id ${jwtKey.kid})`)
