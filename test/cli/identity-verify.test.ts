/**
 * `portcullis identity verify`. Certificates (@peculiar/x509) and tokens (jose) are generated
 * in setup and written to a temp directory.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { identityVerifyCommand } from '../../src/cli/identity-verify.js'
import { captureIo } from '../helpers/io.js'
import { epoch, HOUR, makeJwtKey, makeTrustDomain, pemOf, signJwt, spiffeBundle, T0, urlEncodePem, type JwtKey } from '../identity/support/pki.js'

describe('portcullis identity verify', () => {
  let dir: string
  let td: Awaited<ReturnType<typeof makeTrustDomain>>
  let key: JwtKey
  let k8s: JwtKey
  const at = ['--now', T0.toISOString()]
  const file = (name: string, content: string): string => {
    const p = join(dir, name)
    writeFileSync(p, content)
    return p
  }
  const run = async (args: string[], stdin = ''): Promise<{ code: number, out: string, err: string }> => {
    const io = captureIo(stdin)
    const code = await identityVerifyCommand.run(args, io)
    return { code, out: io.out(), err: io.err() }
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-identity-'))
    td = await makeTrustDomain('example.org')
    key = await makeJwtKey('ES256', 'svid-1')
    k8s = await makeJwtKey('RS256', 'k8s-1')
    file('ca.pem', td.root.pem)
    file('chain.pem', pemOf(td.leaf, td.intermediate))
    file('leaf.pem', td.leaf.pem)
    file('bundle.json', await spiffeBundle({ x509: [td.root], jwt: [key] }))
    file('k8s-jwks.json', JSON.stringify({ keys: [{ ...k8s.publicJwk, use: 'sig' }] }))
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('--cert with a PEM trust domain prints the identity and exits 0', async () => {
    const r = await run(['--cert', join(dir, 'chain.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at])
    assert.equal(r.code, 0, r.err)
    const doc = JSON.parse(r.out)
    assert.equal(doc.type, 'x509-svid')
    assert.equal(doc.spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
  })

  test('--cert with a SPIFFE bundle as the trust domain', async () => {
    const r = await run(['--cert', join(dir, 'chain.pem'), '--trust-domain', `example.org=${join(dir, 'bundle.json')}`, ...at])
    assert.equal(r.code, 0, r.err)
  })

  test('a rejected chain prints the code and exits 1', async () => {
    const r = await run(['--cert', join(dir, 'leaf.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at])
    assert.equal(r.code, 1)
    assert.equal(r.out, '')
    assert.match(r.err, /^PORTCULLIS_IDENTITY_UNTRUSTED: /)
    const expired = await run(['--cert', join(dir, 'chain.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, '--now', new Date(T0.getTime() + 2 * HOUR).toISOString()])
    assert.match(expired.err, /^PORTCULLIS_IDENTITY_EXPIRED: /)
    const bad = await run(['--cert', file('bad.pem', 'not pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at])
    assert.equal(bad.code, 1)
    assert.match(bad.err, /^PORTCULLIS_IDENTITY_MALFORMED: /)
  })

  test('--token with --jwt-bundle and --audience (JWT-SVID), from a file and from stdin', async () => {
    const token = await signJwt(key, { sub: 'spiffe://example.org/ns/prod/sa/api', aud: 'portcullis', exp: epoch(HOUR) })
    const tokenFile = file('svid.jwt', token + '\n')
    const args = ['--jwt-bundle', `example.org=${join(dir, 'bundle.json')}`, '--audience', 'portcullis', ...at]
    const r = await run(['--token', tokenFile, ...args])
    assert.equal(r.code, 0, r.err)
    assert.equal(JSON.parse(r.out).type, 'jwt-svid')
    const s = await run(['--token', '-', ...args], token)
    assert.equal(s.code, 0, s.err)
    const wrongAud = await run(['--token', tokenFile, '--jwt-bundle', `example.org=${join(dir, 'bundle.json')}`, '--audience', 'someone-else', ...at])
    assert.equal(wrongAud.code, 1)
    assert.match(wrongAud.err, /^PORTCULLIS_IDENTITY_AUDIENCE: /)
  })

  test('--token with --oidc-issuer and --jwks (Kubernetes token)', async () => {
    const iss = 'https://kubernetes.default.svc.cluster.local'
    const token = await signJwt(k8s, { iss, sub: 'system:serviceaccount:prod:api', aud: ['portcullis'], exp: epoch(HOUR), 'kubernetes.io': { namespace: 'prod', serviceaccount: { name: 'api', uid: 'u' } } })
    const r = await run(['--token', file('k8s.jwt', token), '--oidc-issuer', iss, '--jwks', join(dir, 'k8s-jwks.json'), '--audience', 'portcullis', ...at])
    assert.equal(r.code, 0, r.err)
    const doc = JSON.parse(r.out)
    assert.equal(doc.type, 'oidc')
    assert.deepEqual(doc.kubernetes, { namespace: 'prod', service_account: { name: 'api', uid: 'u' } })
  })

  test('--xfcc with a trust domain', async () => {
    const hash = createHash('sha256').update(td.leaf.der).digest('hex')
    const header = `By=spiffe://example.org/envoy;Hash=${hash};Cert="${urlEncodePem(td.leaf.pem)}";Chain="${urlEncodePem(pemOf(td.leaf, td.intermediate))}";URI=spiffe://example.org/ns/prod/sa/api`
    const r = await run(['--xfcc', header, '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at])
    assert.equal(r.code, 0, r.err)
    assert.equal(JSON.parse(r.out).source, 'xfcc')
    const injected = await run(['--xfcc', 'Subject="CN=a\\",Cert=x";URI=spiffe://example.org/x', '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at])
    assert.equal(injected.code, 1)
    assert.match(injected.err, /^PORTCULLIS_IDENTITY_MALFORMED: /)
  })

  test('--config file (YAML under "identity") with relative paths', async () => {
    const cfg = file('portcullis.yaml', 'identity:\n  trust_domains:\n    example.org:\n      x509_authorities: [ca.pem]\n')
    const r = await run(['--cert', join(dir, 'chain.pem'), '--config', cfg, ...at])
    assert.equal(r.code, 0, r.err)
  })

  test('usage and configuration errors exit 2', async () => {
    assert.equal((await run([])).code, 2)
    assert.equal((await run(['--cert', 'a', '--token', 'b'])).code, 2)
    assert.equal((await run(['--cert', join(dir, 'chain.pem'), '--trust-domain', 'nonsense'])).code, 2)
    assert.equal((await run(['--token', join(dir, 'ca.pem'), '--jwt-bundle', `example.org=${join(dir, 'bundle.json')}`])).code, 2)
    const missing = await run(['--cert', join(dir, 'chain.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, '--config', file('bad.json', '{"identity": {"unknown": 1}}')])
    assert.equal(missing.code, 2)
    assert.match(missing.err, /^PORTCULLIS_CONFIG_INVALID: /)
    const noFile = await run(['--cert', join(dir, 'chain.pem'), '--jwt-bundle', `example.org=${join(dir, 'nope.json')}`, ...at])
    assert.equal(noFile.code, 2)
    assert.match(noFile.err, /^PORTCULLIS_IDENTITY_BUNDLE_INVALID: /)
    const help = await run(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.out, /identity verify/)
  })

  test('registered as "portcullis identity verify" and usable from a shell script', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'identity', 'verify', '--cert', join(dir, 'chain.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).spiffe_id, 'spiffe://example.org/ns/prod/sa/api')
    const no = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'identity', 'verify', '--cert', join(dir, 'leaf.pem'), '--trust-domain', `example.org=${join(dir, 'ca.pem')}`, ...at], { encoding: 'utf8' })
    assert.equal(no.status, 1)
  })
})
