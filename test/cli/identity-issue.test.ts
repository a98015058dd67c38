/**
 * `portcullis identity issue`: SVIDs issued from the demo trust domain and from keys generated
 * in setup, then verified the way the server verifies them (`portcullis identity verify`, and
 * the X.509-SVID verifier) — never by re-reading what the issuer meant to write.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, readFileSync, statSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader, exportPKCS8 } from 'jose'
import { DEMO_FILES, demoTrustDomainDir, identityIssueCommand } from '../../src/cli/identity-issue.js'
import { identityVerifyCommand } from '../../src/cli/identity-verify.js'
import { main } from '../../src/cli/main.js'
import { pemCertificates, parseCertificateDer } from '../../src/identity/pem.js'
import { checkLeafRules } from '../../src/identity/x509-rules.js'
import { captureIo } from '../helpers/io.js'
import { makeCa, makeJwtKey, makeLeaf, privateKeyPem, type Issued } from '../identity/support/pki.js'

interface Run { code: number, out: string, err: string }

async function issue (args: string[]): Promise<Run> {
  const io = captureIo()
  const code = await identityIssueCommand.run(args, io)
  return { code, out: io.out(), err: io.err() }
}

async function verify (args: string[]): Promise<Run> {
  const io = captureIo()
  const code = await identityVerifyCommand.run(args, io)
  return { code, out: io.out(), err: io.err() }
}

const demoBundle = join(demoTrustDomainDir(), DEMO_FILES.bundle)
const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'

describe('portcullis identity issue', () => {
  let dir: string
  let ca: Issued
  const file = (name: string, content: string): string => {
    const p = join(dir, name)
    writeFileSync(p, content)
    return p
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-issue-'))
    const now = Date.now()
    ca = await makeCa({ name: 'own root', uri: 'spiffe://example.org', notBefore: new Date(now - 3600_000), notAfter: new Date(now + 30 * 86400_000) })
    file('ca.pem', ca.pem)
    file('ca.key', await privateKeyPem(ca))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('--demo --jwt prints a JWT-SVID that portcullis identity verify accepts against the demo bundle', async () => {
    const r = await issue(['--demo', '--jwt', '--spiffe-id', FRONTEND])
    assert.equal(r.code, 0, r.err)
    assert.notEqual(r.err, '', '--demo warns on stderr')
    const token = r.out.trim()
    const header = decodeProtectedHeader(token)
    const claims = decodeJwt(token)
    const bundle = JSON.parse(readFileSync(demoBundle, 'utf8')) as { keys: Array<{ use: string, kid?: string }> }
    // JWT-SVID §2, §3: kid names the bundle's jwt-svid key; sub, aud, exp present
    assert.deepEqual({ alg: header.alg, typ: header.typ, kid: header.kid }, { alg: 'ES256', typ: 'JWT', kid: bundle.keys.find((k) => k.use === 'jwt-svid')?.kid })
    assert.equal(claims.sub, FRONTEND)
    assert.equal(claims.aud, 'portcullis')
    assert.equal((claims.exp as number) - (claims.iat as number), 300)
    const v = await verify(['--token', file('demo.jwt', token), '--jwt-bundle', `example.org=${demoBundle}`, '--audience', 'portcullis'])
    assert.equal(v.code, 0, v.err)
    assert.equal(JSON.parse(v.out).spiffe_id, FRONTEND)
  })

  test('--demo --x509 writes an X.509-SVID and its key that verify against the demo bundle', async () => {
    const cert = join(dir, 'frontend.pem')
    const key = join(dir, 'frontend.key')
    const r = await issue(['--demo', '--x509', '--spiffe-id', FRONTEND, '--out-cert', cert, '--out-key', key, '--ttl', '10m'])
    assert.equal(r.code, 0, r.err)
    assert.equal(statSync(key).mode & 0o777, 0o600)
    const v = await verify(['--cert', cert, '--trust-domain', `example.org=${demoBundle}`])
    assert.equal(v.code, 0, v.err)
    const doc = JSON.parse(v.out)
    assert.equal(doc.spiffe_id, FRONTEND)
    const x = new X509Certificate(readFileSync(cert))
    assert.ok(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(key))))
    assert.ok(Date.parse(x.validTo) - Date.now() <= 10 * 60_000)
    // X509-SVID §2, §4: exactly one URI SAN, cA=false, keyUsage digitalSignature only
    const { facts } = checkLeafRules(parseCertificateDer(pemCertificates(readFileSync(cert, 'utf8'), 'leaf')[0] as Buffer, 'leaf'))
    assert.deepEqual(facts.uris, [FRONTEND])
    assert.equal(facts.ca, false)
    assert.equal(facts.keyUsage, 0x80)
  })

  test('an existing key or token file readable by others becomes 0600 before the new secret is in it', async () => {
    const cert = join(dir, 'reissued.pem')
    const key = file('reissued.key', 'old key\n')
    const token = file('reissued.jwt', 'old token\n')
    chmodSync(key, 0o644)
    chmodSync(token, 0o644)
    const x = await issue(['--demo', '--x509', '--spiffe-id', FRONTEND, '--out-cert', cert, '--out-key', key])
    assert.equal(x.code, 0, x.err)
    assert.equal(statSync(key).mode & 0o777, 0o600)
    assert.ok(new X509Certificate(readFileSync(cert)).checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(key))))
    const j = await issue(['--demo', '--jwt', '--spiffe-id', FRONTEND, '--out', token])
    assert.equal(j.code, 0, j.err)
    assert.equal(statSync(token).mode & 0o777, 0o600)
    assert.equal(decodeJwt(readFileSync(token, 'utf8').trim()).sub, FRONTEND)
  })

  test('--ca-cert/--ca-key issue from another trust domain\'s CA; the demo bundle rejects the result', async () => {
    const cert = join(dir, 'own.pem')
    const r = await issue(['--x509', '--spiffe-id', FRONTEND, '--ca-cert', join(dir, 'ca.pem'), '--ca-key', join(dir, 'ca.key'), '--out-cert', cert, '--out-key', join(dir, 'own.key')])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.err.includes('DEMO'), false)
    assert.equal((await verify(['--cert', cert, '--trust-domain', `example.org=${join(dir, 'ca.pem')}`])).code, 0)
    const foreign = await verify(['--cert', cert, '--trust-domain', `example.org=${demoBundle}`])
    assert.equal(foreign.code, 1)
    assert.match(foreign.err, /^PORTCULLIS_IDENTITY_UNTRUSTED:/)
  })

  test('--jwt-key with --kid and --audience; a short --ttl expires', async () => {
    const key = await makeJwtKey('ES256', 'own-1')
    const keyFile = file('jwt.key', await exportPKCS8(key.privateKey))
    const jwks = file('jwks.json', JSON.stringify({ keys: [{ ...key.publicJwk, use: 'jwt-svid' }] }))
    const r = await issue(['--jwt', '--spiffe-id', FRONTEND, '--jwt-key', keyFile, '--kid', 'own-1', '--audience', 'orders', '--audience', 'portcullis', '--ttl', '60s', '--out', join(dir, 'own.jwt')])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '')
    const token = join(dir, 'own.jwt')
    assert.deepEqual(decodeJwt(readFileSync(token, 'utf8').trim()).aud, ['orders', 'portcullis'])
    assert.equal((await verify(['--token', token, '--jwt-bundle', `example.org=${jwks}`, '--audience', 'orders'])).code, 0)
    const later = new Date(Date.now() + 5 * 60_000).toISOString()
    const expired = await verify(['--token', token, '--jwt-bundle', `example.org=${jwks}`, '--audience', 'orders', '--now', later])
    assert.equal(expired.code, 1)
    assert.match(expired.err, /^PORTCULLIS_IDENTITY_EXPIRED:/)
  })

  test('a CA refuses to issue outside its own trust domain', async () => {
    const r = await issue(['--x509', '--spiffe-id', 'spiffe://other.org/ns/a/sa/b', '--ca-cert', join(dir, 'ca.pem'), '--ca-key', join(dir, 'ca.key'), '--out-cert', join(dir, 'x.pem'), '--out-key', join(dir, 'x.key')])
    assert.equal(r.code, 2)
    assert.match(r.err, /^PORTCULLIS_IDENTITY_UNTRUSTED:/)
  })

  test('keys that cannot sign SVIDs are refused with a code', async () => {
    const now = Date.now()
    const leaf = await makeLeaf({ issuer: ca, notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) })
    const notCa = await issue(['--x509', '--spiffe-id', FRONTEND, '--ca-cert', file('leaf.pem', leaf.pem), '--ca-key', file('leaf.key', await privateKeyPem(leaf)), '--out-cert', join(dir, 'y.pem'), '--out-key', join(dir, 'y.key')])
    assert.equal(notCa.code, 2)
    assert.match(notCa.err, /^PORTCULLIS_IDENTITY_BUNDLE_INVALID:/)
    const otherCa = await makeCa({ name: 'other' })
    const mismatched = await issue(['--x509', '--spiffe-id', FRONTEND, '--ca-cert', join(dir, 'ca.pem'), '--ca-key', file('other.key', await privateKeyPem(otherCa)), '--out-cert', join(dir, 'z.pem'), '--out-key', join(dir, 'z.key')])
    assert.equal(mismatched.code, 2)
    assert.match(mismatched.err, /^PORTCULLIS_IDENTITY_BUNDLE_INVALID:/)
    const garbage = await issue(['--jwt', '--spiffe-id', FRONTEND, '--jwt-key', file('garbage.key', 'not a key')])
    assert.equal(garbage.code, 2)
    assert.match(garbage.err, /^PORTCULLIS_IDENTITY_BUNDLE_INVALID:/)
  })

  test('bad SPIFFE IDs and usage errors exit 2', async () => {
    const bad = await issue(['--demo', '--jwt', '--spiffe-id', 'spiffe://example.org'])
    assert.equal(bad.code, 2)
    assert.match(bad.err, /PORTCULLIS_IDENTITY_BAD_SPIFFE_ID:/)
    for (const args of [
      ['--demo', '--spiffe-id', FRONTEND],
      ['--demo', '--jwt', '--x509', '--spiffe-id', FRONTEND],
      ['--demo', '--jwt'],
      ['--demo', '--jwt', '--spiffe-id', FRONTEND, '--ttl', '25h'],
      ['--demo', '--jwt', '--spiffe-id', FRONTEND, '--ttl', 'soon'],
      ['--demo', '--x509', '--spiffe-id', FRONTEND],
      ['--demo', '--jwt', '--spiffe-id', FRONTEND, '--jwt-key', 'k.pem'],
      ['--jwt', '--spiffe-id', FRONTEND],
    ]) {
      const r = await issue(args)
      assert.equal(r.code, 2, args.join(' '))
      assert.match(r.err, /^usage error:/, args.join(' '))
    }
  })

  test('is registered as "portcullis identity issue"', async () => {
    const io = captureIo()
    assert.equal(await main(['identity', 'issue', '--help'], io), 0)
    assert.match(io.out(), /identity issue/)
  })
})
