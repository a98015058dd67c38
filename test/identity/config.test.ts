import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateIdentityConfig } from '../../src/identity/config.js'

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
  assert.deepEqual(c.x509_svid.sources, ['mtls', 'xfcc'])
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
