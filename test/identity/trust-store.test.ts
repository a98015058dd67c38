/**
 * Trust store: per-trust-domain loading, last-good on failure, status, chokidar hot reload.
 * Certificates are generated in setup with @peculiar/x509; files live in a temp directory.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TrustStore, type TrustChangeEvent } from '../../src/identity/trust-store.js'
import type { TrustDomainConfig } from '../../src/config/schema.js'
import { makeCa, makeJwtKey, spiffeBundle, T0, tempDir, write, type Issued, type JwtKey } from './support/pki.js'

let caA: Issued
let caA2: Issued
let caB: Issued
let key: JwtKey

before(async () => {
  caA = await makeCa({ name: 'A root' })
  caA2 = await makeCa({ name: 'A root 2' })
  caB = await makeCa({ name: 'B root' })
  key = await makeJwtKey('ES256', 'a-jwt')
})

const td = (p: Partial<TrustDomainConfig>): TrustDomainConfig => ({ x509_authorities: [], spiffe_bundles: [], jwt_authorities: [], ...p })

/** Waits for the next trust-change of `trustDomain`, at most `ms`. */
async function nextChange (store: TrustStore, trustDomain: string, ms = 10_000): Promise<TrustChangeEvent> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  try {
    for (let i = 0; i < 100; i++) {
      const [ev] = await once(store, 'trust-change', { signal: ac.signal }) as [TrustChangeEvent]
      if (ev.trustDomain === trustDomain) return ev
    }
    throw new Error('too many unrelated trust changes')
  } finally {
    clearTimeout(timer)
  }
}

test('loads PEM, SPIFFE bundle and JWKS sources per trust domain, never merged across domains', async (t) => {
  const dir = tempDir(t)
  const store = new TrustStore({
    'a.test': td({ x509_authorities: [write(dir, 'a.pem', caA.pem)], spiffe_bundles: [write(dir, 'a.json', await spiffeBundle({ x509: [caA2], sequence: 3 }))], jwt_authorities: [write(dir, 'a.jwks', JSON.stringify({ keys: [key.publicJwk] }))] }),
    'b.test': td({ x509_authorities: [write(dir, 'b.pem', caB.pem)] }),
  }, { now: () => T0 })
  t.after(async () => await store.close())
  await store.ready
  const a = store.bundle('a.test')
  const b = store.bundle('b.test')
  assert.equal(a?.x509Authorities.length, 2)
  assert.equal(a?.jwtAuthorities.length, 1)
  assert.equal(a?.sequence, 3)
  assert.equal(b?.x509Authorities.length, 1)
  assert.equal(b?.x509Authorities[0]?.fingerprint_sha256, store.bundle('b.test')?.x509Authorities[0]?.fingerprint_sha256)
  assert.ok(!a?.x509Authorities.some((x) => b?.x509Authorities.some((y) => y.fingerprint_sha256 === x.fingerprint_sha256)))
  const st = store.status()
  assert.equal(st['a.test']?.state, 'OK')
  assert.equal(st['a.test']?.sequence, 3)
  assert.equal(st['a.test']?.loaded_at, T0.toISOString())
  assert.equal(st['a.test']?.sources.length, 3)
  assert.equal(st['a.test']?.last_error, undefined)
  assert.equal(store.bundle('c.test'), undefined)
})

test('a failed reload keeps the last good bundle and is reported in status', async (t) => {
  const dir = tempDir(t)
  const file = write(dir, 'a.pem', caA.pem)
  let now = T0
  const store = new TrustStore({ 'a.test': td({ x509_authorities: [file] }) }, { now: () => now })
  t.after(async () => await store.close())
  await store.ready
  const good = store.bundle('a.test')
  let changes = 0
  store.on('trust-change', () => { changes++ })
  writeFileSync(file, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n')
  now = new Date(T0.getTime() + 1000)
  await store.reload()
  assert.equal(store.bundle('a.test'), good)
  const st = store.status()['a.test']
  assert.equal(st?.state, 'ERROR')
  assert.equal(st?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  assert.equal(st?.last_error?.at, now.toISOString())
  assert.equal(st?.loaded_at, T0.toISOString())
  assert.equal(changes, 0)
  // Recovery clears the error; identical content is not a change.
  writeFileSync(file, caA.pem)
  await store.reload()
  assert.equal(store.status()['a.test']?.state, 'OK')
  assert.equal(changes, 0)
})

test('a missing file at start leaves the trust domain NOT_READY', async (t) => {
  const dir = tempDir(t)
  const store = new TrustStore({ 'a.test': td({ x509_authorities: [join(dir, 'missing.pem')] }) }, { now: () => T0 })
  t.after(async () => await store.close())
  await store.ready
  assert.equal(store.bundle('a.test'), undefined)
  const st = store.status()['a.test']
  assert.equal(st?.state, 'NOT_READY')
  assert.equal(st?.last_error?.code, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
})

test('hot reload: a rewritten or atomically replaced file changes the bundle and emits trust-change', async (t) => {
  const dir = tempDir(t)
  const file = write(dir, 'a.pem', caA.pem)
  const store = new TrustStore({ 'a.test': td({ x509_authorities: [file] }) }, { now: () => T0, watch: { enabled: true, debounce_ms: 20, use_polling: false } })
  t.after(async () => await store.close())
  await store.ready
  const first = store.bundle('a.test')?.digest

  let change = nextChange(store, 'a.test')
  writeFileSync(file, caA.pem + caA2.pem)
  let ev = await change
  assert.equal(ev.previousDigest, first)
  assert.equal(store.bundle('a.test')?.x509Authorities.length, 2)

  // Writers that stage a file and rename it into place (Kubernetes volumes, SPIRE helpers).
  change = nextChange(store, 'a.test')
  write(dir, '.a.pem.tmp', caB.pem)
  renameSync(join(dir, '.a.pem.tmp'), file)
  ev = await change
  assert.equal(store.bundle('a.test')?.x509Authorities.length, 1)
  assert.notEqual(ev.digest, first)
})
