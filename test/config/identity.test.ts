import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateIdentityConfig } from '../../src/config/identity.js'
import { loadConfig } from '../../src/config/load.js'
import { trustDomainProblem } from '../../src/identity/spiffe-id.js'

const INVALID = 'PORTCULLIS_CONFIG_INVALID'

test('defaults: deny on missing and rejected, nothing enabled without configuration', () => {
  const c = validateIdentityConfig({})
  assert.equal(c.on_missing, 'deny')
  assert.equal(c.on_rejected, 'deny')
  assert.equal(c.x509_svid.enabled, false)
  assert.equal(c.jwt_svid.enabled, false)
  assert.deepEqual(c.oidc.issuers, [])
  assert.equal(c.cache.enabled, true)
  assert.deepEqual(validateIdentityConfig(undefined), c)
})

test('a full configuration validates, fills defaults and resolves relative paths', () => {
  const c = validateIdentityConfig({
    on_missing: 'allow',
    on_rejected: 'allow',
    trust_domains: {
      'example.org': { x509_authorities: 'ca.pem', spiffe_bundles: ['/abs/bundle.json'], bundle_endpoint: { url: 'https://spire.example.org:8443', ca: 'tls-ca.pem' } },
    },
    x509_svid: { xfcc: { trusted_proxies: ['10.0.0.0/8', '::1'] } },
    jwt_svid: { audiences: ['portcullis'], header: 'X-Workload-Token', leeway_seconds: 5 },
    oidc: { issuers: [{ issuer: 'https://kubernetes.default.svc', audiences: ['portcullis'], jwks_file: 'k8s.json' }] },
  }, { baseDir: '/etc/portcullis' })
  assert.deepEqual(c.trust_domains['example.org']?.x509_authorities, ['/etc/portcullis/ca.pem'])
  assert.deepEqual(c.trust_domains['example.org']?.spiffe_bundles, ['/abs/bundle.json'])
  assert.equal(c.trust_domains['example.org']?.bundle_endpoint?.ca, '/etc/portcullis/tls-ca.pem')
  assert.equal(c.trust_domains['example.org']?.bundle_endpoint?.timeout_ms, 5000)
  assert.equal(c.x509_svid.enabled, true)
  assert.deepEqual(c.x509_svid.sources, ['mtls', 'ext_authz', 'xfcc'])
  assert.deepEqual(c.x509_svid.ext_authz.trusted_callers, ['127.0.0.0/8', '::1'])
  assert.equal(c.jwt_svid.enabled, true)
  assert.equal(c.jwt_svid.header, 'x-workload-token')
  assert.equal(c.oidc.issuers[0]?.jwks_file, '/etc/portcullis/k8s.json')
  assert.deepEqual(c.oidc.issuers[0]?.algorithms, ['RS256'])
})

const bad: Array<[string, unknown, string]> = [
  ['unknown top-level key', { trust_domain: {} }, 'identity.trust_domain'],
  ['unknown nested key', { jwt_svid: { audiences: ['a'], audience: 'a' } }, 'identity.jwt_svid.audience'],
  ['on_missing value', { on_missing: 'maybe' }, 'identity.on_missing'],
  ['invalid trust domain name', { trust_domains: { 'Example.org': { x509_authorities: ['a'] } } }, 'identity.trust_domains.Example.org'],
  ['trust domain with no source', { trust_domains: { 'example.org': {} } }, 'identity.trust_domains.example.org'],
  ['http bundle endpoint off loopback', { trust_domains: { 'example.org': { bundle_endpoint: { url: 'http://spire.example.org' } } } }, 'identity.trust_domains.example.org.bundle_endpoint.url'],
  ['min refresh above max', { trust_domains: { 'example.org': { bundle_endpoint: { url: 'https://s', min_refresh_seconds: 100, max_refresh_seconds: 10 } } } }, 'identity.trust_domains.example.org.bundle_endpoint.min_refresh_seconds'],
  ['JWT-SVID without audience', { jwt_svid: {} }, 'identity.jwt_svid.audiences'],
  ['algorithm outside the SPIFFE list', { jwt_svid: { audiences: ['a'], algorithms: ['HS256'] } }, 'identity.jwt_svid.algorithms[0]'],
  ['leeway too large', { jwt_svid: { audiences: ['a'], leeway_seconds: 3600 } }, 'identity.jwt_svid.leeway_seconds'],
  ['xfcc without trusted proxies', { x509_svid: { sources: ['xfcc'] } }, 'identity.x509_svid.xfcc.trusted_proxies'],
  ['bad CIDR', { x509_svid: { xfcc: { trusted_proxies: ['10.0.0.0/40'] } } }, 'identity.x509_svid.xfcc.trusted_proxies[0]'],
  ['unknown source', { x509_svid: { sources: ['smoke-signals'] } }, 'identity.x509_svid.sources[0]'],
  ['OIDC issuer without audiences', { oidc: { issuers: [{ issuer: 'https://i', discovery: true }] } }, 'identity.oidc.issuers[0].audiences'],
  ['OIDC issuer with two key sources', { oidc: { issuers: [{ issuer: 'https://i', audiences: ['a'], discovery: true, jwks_file: 'x' }] } }, 'identity.oidc.issuers[0]'],
  ['OIDC issuer without key source', { oidc: { issuers: [{ issuer: 'https://i', audiences: ['a'] }] } }, 'identity.oidc.issuers[0]'],
  ['duplicate OIDC issuer', { oidc: { issuers: [{ issuer: 'https://i', audiences: ['a'], discovery: true }, { issuer: 'https://i', audiences: ['a'], discovery: true }] } }, 'identity.oidc.issuers[1].issuer'],
  ['cache size type', { cache: { max_entries: 'many' } }, 'identity.cache.max_entries'],
  ['not an object', [], 'identity'],
  // Shapes the schema rejects.
  ['trust domain name too long', { trust_domains: { ['a'.repeat(256)]: { x509_authorities: ['a'] } } }, `identity.trust_domains.${'a'.repeat(256)}`],
  ['trust domain with a port', { trust_domains: { 'example.org:443': { x509_authorities: ['a'] } } }, 'identity.trust_domains.example.org:443'],
  ['trust domain value not a mapping', { trust_domains: { 'example.org': null } }, 'identity.trust_domains.example.org'],
  ['empty file name in a list', { trust_domains: { 'example.org': { x509_authorities: [''] } } }, 'identity.trust_domains.example.org.x509_authorities[0]'],
  ['bundle endpoint without url', { trust_domains: { 'example.org': { bundle_endpoint: {} } } }, 'identity.trust_domains.example.org.bundle_endpoint.url'],
  ['bundle endpoint timeout 0', { trust_domains: { 'example.org': { bundle_endpoint: { url: 'https://s', timeout_ms: 0 } } } }, 'identity.trust_domains.example.org.bundle_endpoint.timeout_ms'],
  ['bundle endpoint url not a URL', { trust_domains: { 'example.org': { bundle_endpoint: { url: 'not a url' } } } }, 'identity.trust_domains.example.org.bundle_endpoint.url'],
  ['header name with a space', { jwt_svid: { audiences: ['a'], header: 'x token' } }, 'identity.jwt_svid.header'],
  ['empty algorithm list', { jwt_svid: { audiences: ['a'], algorithms: [] } }, 'identity.jwt_svid.algorithms'],
  ['JWT-SVID enabled with an empty audience list', { jwt_svid: { enabled: true, audiences: [] } }, 'identity.jwt_svid.audiences'],
  ['enabled not a boolean', { x509_svid: { enabled: 'yes' } }, 'identity.x509_svid.enabled'],
  ['xfcc element', { x509_svid: { xfcc: { trusted_proxies: ['::1'], element: 'middle' } } }, 'identity.x509_svid.xfcc.element'],
  ['not an IP address', { x509_svid: { xfcc: { trusted_proxies: ['proxy.local'] } } }, 'identity.x509_svid.xfcc.trusted_proxies[0]'],
  ['CIDR with two prefixes', { x509_svid: { xfcc: { trusted_proxies: ['10.0.0.0/8/8'] } } }, 'identity.x509_svid.xfcc.trusted_proxies[0]'],
  ['ext_authz trusted caller not an IP address', { x509_svid: { ext_authz: { trusted_callers: ['envoy.local'] } } }, 'identity.x509_svid.ext_authz.trusted_callers[0]'],
  ['ext_authz unknown key', { x509_svid: { ext_authz: { trust: true } } }, 'identity.x509_svid.ext_authz.trust'],
  ['issuers not a list', { oidc: { issuers: { issuer: 'https://i' } } }, 'identity.oidc.issuers'],
  ['OIDC issuer with an empty audience list', { oidc: { issuers: [{ issuer: 'https://i', audiences: [], discovery: true }] } }, 'identity.oidc.issuers[0].audiences'],
  ['OIDC discovery with an issuer that is not a URL', { oidc: { issuers: [{ issuer: 'kubernetes', audiences: ['a'], discovery: true }] } }, 'identity.oidc.issuers[0].issuer'],
  ['OIDC jwks_uri over plain http off loopback', { oidc: { issuers: [{ issuer: 'https://i', audiences: ['a'], jwks_uri: 'http://i/keys' }] } }, 'identity.oidc.issuers[0].jwks_uri'],
  ['OIDC unknown key', { oidc: { issuers: [{ issuer: 'https://i', audiences: ['a'], discovery: true, jwks: 'x' }] } }, 'identity.oidc.issuers[0].jwks'],
  ['cache max_ttl_seconds above a day', { cache: { max_ttl_seconds: 86401 } }, 'identity.cache.max_ttl_seconds'],
  ['watch debounce negative', { watch: { debounce_ms: -1 } }, 'identity.watch.debounce_ms'],
]

for (const [why, raw, key] of bad) {
  test(`rejects ${why}, naming ${key}`, () => {
    assert.throws(() => validateIdentityConfig(raw), (err: { code?: string, details?: { key?: string } }) => {
      assert.equal(err.code, INVALID)
      assert.equal(err.details?.key, key)
      return true
    })
  })
}

test('a lone string is a list of one; an empty mapping is the section with its defaults', () => {
  const c = validateIdentityConfig({ trust_domains: { 'example.org': { x509_authorities: 'ca.pem' } }, jwt_svid: { audiences: 'portcullis', algorithms: 'ES256' }, x509_svid: null, oidc: { issuers: null } })
  assert.deepEqual(c.trust_domains['example.org']?.x509_authorities, ['ca.pem'])
  assert.deepEqual(c.jwt_svid.audiences, ['portcullis'])
  assert.deepEqual(c.jwt_svid.algorithms, ['ES256'])
  assert.equal(c.x509_svid.enabled, true)
  // ext_authz only ever sees a certificate the envoy/ transport hands it from a trusted caller
  assert.deepEqual(c.x509_svid.sources, ['mtls', 'ext_authz'])
  assert.deepEqual(c.oidc.issuers, [])
  assert.deepEqual(validateIdentityConfig(null), validateIdentityConfig({}))
})

test('defaults are not shared between configurations', () => {
  const a = validateIdentityConfig({ trust_domains: { 'example.org': { x509_authorities: ['ca.pem'] } } }, { baseDir: '/a' })
  const b = validateIdentityConfig({ trust_domains: { 'example.org': { jwt_authorities: ['k.json'] } } }, { baseDir: '/b' })
  assert.deepEqual(a.trust_domains['example.org']?.jwt_authorities, [])
  assert.deepEqual(b.trust_domains['example.org']?.x509_authorities, [])
})

test('the schema trust domain rule agrees with the SPIFFE ID parser', () => {
  const names = ['example.org', 'a', 'a-b_c.d', '0', 'Example.org', 'example.org:8443', 'user@example.org', 'ex%61mple.org', 'ex ample', 'exämple.org', 'a'.repeat(255), 'a'.repeat(256), '']
  for (const name of names) {
    let schemaAccepts = true
    try { validateIdentityConfig({ trust_domains: { [name]: { x509_authorities: ['ca.pem'] } } }) } catch { schemaAccepts = false }
    assert.equal(schemaAccepts, trustDomainProblem(name) === undefined, JSON.stringify(name))
  }
})

test('loadConfig validates the identity section with the same schema and checks, naming the key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-identity-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const [why, raw, key] of bad) {
    const file = join(dir, 'c.json')
    writeFileSync(file, JSON.stringify({ identity: raw }))
    assert.throws(() => loadConfig({ file, env: {} }), (err: { code?: string, details?: { key?: string } }) => {
      assert.equal(err.code, INVALID, why)
      assert.equal(err.details?.key, key, why)
      return true
    })
  }
  const file = join(dir, 'ok.yaml')
  writeFileSync(file, 'identity:\n  trust_domains:\n    example.org:\n      x509_authorities: ca.pem\n')
  const c = loadConfig({ file, env: {} })
  assert.deepEqual(c.identity?.trust_domains['example.org']?.x509_authorities, [join(dir, 'ca.pem')])
  assert.ok(Object.isFrozen(c.identity?.trust_domains))
  writeFileSync(file, 'identity:\n')
  assert.equal(loadConfig({ file, env: {} }).identity?.on_missing, 'deny')
})
