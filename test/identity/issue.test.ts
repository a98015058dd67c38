/**
 * src/identity/issue.ts: issued SVIDs verified by Portcullis's own verifiers (X.509-SVID path
 * validation with PKI.js, JWT-SVID through the identity verifier) and by OpenSSL through
 * Node's X509Certificate.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { derToPem, pemCertificates } from '../../src/identity/pem.js'
import { createIdentityVerifier, validateIdentityConfig } from '../../src/identity/index.js'
import { createRootCa, generateSigningKey, importSigningKey, issueJwtSvid, issueX509Svid, jwtBundleEntry, loadJwtSigningKey, loadSigningCa, privateKeyPem, x509BundleEntry } from '../../src/identity/issue.js'
import { verifyX509Svid } from '../../src/identity/x509-svid.js'
import { mergeBundle, parseSpiffeBundle } from '../../src/identity/bundle.js'
import { tempDir, write } from './support/pki.js'

const HOUR_MS = 3600_000
const ID = 'spiffe://example.org/ns/shop/sa/frontend'

async function trustDomain (notAfter = new Date(Date.now() + 24 * HOUR_MS)): Promise<Awaited<ReturnType<typeof createRootCa>>> {
  return await createRootCa('example.org', { key: await generateSigningKey(), notBefore: new Date(Date.now() - HOUR_MS), notAfter, commonName: 'test root' })
}

describe('issuing SVIDs', () => {
  test('serial numbers are positive minimal DER INTEGERs that OpenSSL parses, every time', async () => {
    // Random 16-byte serials: before the fix, one in 256 began 0x00 followed by a byte below
    // 0x80 (DER padding OpenSSL refuses); 400 issues hit that case with ~79 % probability.
    const ca = await trustDomain()
    for (let i = 0; i < 400; i++) {
      const svid = await issueX509Svid(ca, ID, { ttlSeconds: 600 })
      const cert = new X509Certificate(svid.certPem)
      assert.match(cert.serialNumber, /^(0[1-9A-F]|[1-7][0-9A-F])[0-9A-F]{30}$/i, cert.serialNumber) // first byte 0x01-0x7f
    }
  })

  test('an issued X.509-SVID verifies against a SPIFFE bundle of its CA, and OpenSSL agrees on the chain', async () => {
    const ca = await trustDomain()
    const svid = await issueX509Svid(ca, ID, { ttlSeconds: 600 })
    const bundle = mergeBundle('example.org', [parseSpiffeBundle(JSON.stringify({ keys: [await x509BundleEntry(ca)] }), 'bundle.json')])
    const { identity, expiresAt } = await verifyX509Svid(pemCertificates(svid.certPem, 'svid'), () => bundle, new Date(), 'mtls')
    assert.equal(identity.spiffe_id, ID)
    assert.equal(expiresAt.getTime(), svid.notAfter.getTime() - (svid.notAfter.getTime() % 1000))
    const leaf = new X509Certificate(svid.certPem)
    assert.ok(leaf.verify(new X509Certificate(derToPem(ca.der)).publicKey))
    assert.equal(leaf.ca, false)
  })

  test('a CA reloaded from PEM issues the same way; an SVID never outlives its CA', async () => {
    const ca = await trustDomain(new Date(Date.now() + HOUR_MS))
    const loaded = await loadSigningCa(derToPem(ca.der), await privateKeyPem(ca.key))
    assert.equal(loaded.trustDomain, 'example.org')
    const svid = await issueX509Svid(loaded, ID, { ttlSeconds: 24 * 3600 })
    assert.equal(svid.notAfter.getTime(), ca.cert.notAfter.value.getTime())
  })

  test('RSA and P-384 keys sign; other keys are refused', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    assert.equal((await importSigningKey(rsa, 'rsa')).alg, 'RS256')
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString()
    assert.equal((await importSigningKey(p384, 'p384')).alg, 'ES384')
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    await assert.rejects(importSigningKey(ed, 'ed25519'), { code: 'PORTCULLIS_IDENTITY_BUNDLE_INVALID' })
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    await assert.rejects(importSigningKey(small, 'rsa-1024'), { code: 'PORTCULLIS_IDENTITY_BUNDLE_INVALID' })
  })

  test('an issued JWT-SVID is accepted by the identity verifier; expired and wrong-audience ones are not', async (t) => {
    const dir = tempDir(t)
    const key = await loadJwtSigningKey(await privateKeyPem(await generateSigningKey()))
    const file = write(dir, 'bundle.json', JSON.stringify({ keys: [await jwtBundleEntry(key)] }))
    const verifier = createIdentityVerifier(validateIdentityConfig({ trust_domains: { 'example.org': { spiffe_bundles: [file] } }, jwt_svid: { audiences: ['portcullis'] }, watch: { enabled: false } }))
    t.after(() => verifier.close())
    const ask = async (token: string) => await verifier.verify({ headers: { authorization: `Bearer ${token}` } })
    const ok = await ask((await issueJwtSvid(key, ID, { audience: ['portcullis'], ttlSeconds: 60 })).token)
    assert.equal(ok.kind, 'verified')
    assert.equal(ok.kind === 'verified' ? ok.identity.spiffe_id : undefined, ID)
    const old = await ask((await issueJwtSvid(key, ID, { audience: ['portcullis'], ttlSeconds: 60, now: new Date(Date.now() - 10 * 60_000) })).token)
    assert.equal(old.kind === 'rejected' ? old.error.code : old.kind, 'PORTCULLIS_IDENTITY_EXPIRED')
    const elsewhere = await ask((await issueJwtSvid(key, ID, { audience: ['orders'], ttlSeconds: 60 })).token)
    assert.equal(elsewhere.kind === 'rejected' ? elsewhere.error.code : elsewhere.kind, 'PORTCULLIS_IDENTITY_AUDIENCE')
    await assert.rejects(issueJwtSvid(key, ID, { audience: [], ttlSeconds: 60 }), { code: 'PORTCULLIS_IDENTITY_AUDIENCE' })
    await assert.rejects(issueJwtSvid(key, 'spiffe://example.org/', { audience: ['portcullis'], ttlSeconds: 60 }), { code: 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID' })
  })
})
