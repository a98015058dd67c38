/**
 * The bundle-server configuration in OPA's own keys (config/bundle-service.ts): an OPA
 * configuration's services/bundles/keys section loads unchanged beside Portcullis's own
 * `bundles` settings, and what cannot work is refused with PORTCULLIS_CONFIG_INVALID.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { remoteBundles } from '../../src/config/bundle-service.js'
import { remoteBundleOptionsFrom } from '../../src/server/runtime-options.js'
import { PortcullisError } from '../../src/errors.js'

function load (t: { after: (fn: () => void) => void }, yaml: string): ReturnType<typeof loadConfig> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bsvc-config-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'config.yaml')
  writeFileSync(file, yaml)
  return loadConfig({ file, env: {} })
}

function refused (t: { after: (fn: () => void) => void }, yaml: string, key: string): void {
  assert.throws(() => load(t, yaml), (err: unknown) => {
    assert.ok(err instanceof PortcullisError)
    assert.equal(err.code, 'PORTCULLIS_CONFIG_INVALID')
    assert.equal(err.details.key, key)
    return true
  })
}

// The bundle section of OPA's configuration documentation, unchanged.
const OPA_SECTION = `
services:
  acmecorp:
    url: https://example.com/control-plane-api/v1/
    response_header_timeout_seconds: 5
    credentials:
      bearer:
        token_path: secrets/token
keys:
  global_key:
    algorithm: RS256
    key: "-----BEGIN PUBLIC KEY-----"
persistence_directory: state
bundles:
  authz:
    service: acmecorp
    resource: somedir/bundle.tar.gz
    persist: true
    polling:
      min_delay_seconds: 10
      max_delay_seconds: 20
      long_polling_timeout_seconds: 30
    signing:
      keyid: global_key
      scope: read
      exclude_files: ["*.md"]
`

test("an OPA configuration's bundle section loads unchanged, beside Portcullis's bundles settings", (t) => {
  const c = load(t, `${OPA_SECTION}\n  dir: policies\n  watch: false\n  other:\n    service: acmecorp\n`)
  assert.equal(c.bundles.watch, false)
  const remote = remoteBundles(c.bundles)
  assert.deepEqual(Object.keys(remote).sort(), ['authz', 'other'])
  assert.deepEqual(remote.other, { resource: 'bundles/other', persist: false, polling: { min_delay_seconds: 60, max_delay_seconds: 120 }, service: 'acmecorp' })
  const opts = remoteBundleOptionsFrom(c)
  const authz = opts.find((o) => o.name === 'authz')
  assert.ok(authz !== undefined)
  assert.equal(authz.service.url, 'https://example.com/control-plane-api/v1')
  assert.equal(authz.service.responseHeaderTimeoutMs, 5000)
  assert.ok(authz.service.bearer?.tokenPath?.endsWith(join('secrets', 'token')))
  assert.equal(authz.service.bearer?.scheme, 'Bearer')
  assert.deepEqual(authz.polling, { minDelayMs: 10_000, maxDelayMs: 20_000, longPollingTimeoutSeconds: 30 })
  assert.equal(authz.load.requireSignature, true)
  assert.equal(authz.load.verification?.keyId, 'global_key')
  assert.equal(authz.load.verification?.scope, 'read')
  assert.deepEqual(authz.load.excludeFiles, ['*.md'])
  assert.ok(authz.persistDir?.endsWith(join('state', 'bundles', 'authz')))
  assert.equal(opts.find((o) => o.name === 'other')?.persistDir, undefined)
})

test('services may be a list with names, as OPA accepts', (t) => {
  const c = load(t, 'services:\n  - name: s1\n    url: http://127.0.0.1:1\nbundles:\n  b:\n    service: s1\n')
  assert.equal(c.services.s1?.url, 'http://127.0.0.1:1')
  assert.equal(c.services.s1?.response_header_timeout_seconds, 10)
})

test('what cannot work is refused, naming the key', (t) => {
  const svc = 'services:\n  s1:\n    url: http://127.0.0.1:1\n'
  refused(t, `${svc}bundles:\n  signing:\n    service: s1\n`, 'bundles.signing')
  refused(t, `${svc}bundles:\n  dir:\n    service: s1\n`, 'bundles.dir')
  refused(t, `${svc}bundles:\n  b:\n    service: nope\n`, 'bundles.b.service')
  refused(t, `${svc}bundles:\n  b:\n    service: s1\n    polling: { min_delay_seconds: 30, max_delay_seconds: 10 }\n`, 'bundles.b.polling.min_delay_seconds')
  refused(t, `${svc}bundles:\n  b:\n    service: s1\n    signing: { keyid: missing }\n`, 'bundles.b.signing.keyid')
  refused(t, `${svc}bundles:\n  b:\n    service: s1\n    trigger: manual\n`, 'bundles.b.trigger')
  refused(t, 'services:\n  s1:\n    url: http://127.0.0.1:1\n    credentials: { bearer: { token: a, token_path: b } }\n', 'services.s1.credentials.bearer')
  refused(t, 'services:\n  s1:\n    url: ftp://127.0.0.1:1\n', 'services.s1.url')
  refused(t, 'services:\n  - url: http://127.0.0.1:1\n', 'services[0].name')
  refused(t, 'services:\n  s1:\n    url: http://127.0.0.1:1\n    allow_insecure_tls: true\n', 'services.s1.allow_insecure_tls')
  refused(t, 'keys:\n  k: { algorithm: RS256 }\n', 'keys.k')
})

test('signing.exclude_files patterns that match decisive files are refused at config load', (t) => {
  const svc = 'services:\n  s1:\n    url: http://127.0.0.1:1\n'
  for (const pattern of ['*', '*.json', '*.wasm', '.manifest', '*.rego', 'data.*', '*/*', '[d]ata.json', '*.yaml']) {
    refused(t, `${svc}bundles:\n  b:\n    service: s1\n    signing: { exclude_files: [${JSON.stringify(pattern)}] }\n`, 'bundles.b.signing.exclude_files')
  }
  const ok = load(t, `${svc}bundles:\n  b:\n    service: s1\n    signing: { exclude_files: ["*.md", "docs/*.txt"] }\n`)
  assert.deepEqual(remoteBundles(ok.bundles).b?.signing?.exclude_files, ['*.md', 'docs/*.txt'])
})

test('a bundle without service uses the first configured service, as OPA does', (t) => {
  const c = load(t, 'services:\n  first:\n    url: http://127.0.0.1:1\n  second:\n    url: http://127.0.0.1:2\nbundles:\n  b:\n    resource: x/b.tar.gz\n  c: {}\n')
  const remote = remoteBundles(c.bundles)
  assert.equal(remote.b?.service, 'first')
  assert.equal(remote.c?.service, 'first')
  assert.equal(remote.c?.resource, 'bundles/c')
  assert.equal(remoteBundleOptionsFrom(c).find((o) => o.name === 'b')?.service.url, 'http://127.0.0.1:1')
  // No service at all: the bundle cannot be fetched and the configuration is refused.
  assert.throws(() => load(t, 'bundles:\n  b:\n    resource: x/b.tar.gz\n'), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test("size_limit_bytes means OPA's per-file decompressed limit; the download is limited by bundles.max_bytes", (t) => {
  const c = load(t, 'services:\n  s1:\n    url: http://127.0.0.1:1\nbundles:\n  max_bytes: 5000000\n  b:\n    service: s1\n    size_limit_bytes: 1000\n  d:\n    service: s1\n')
  const opts = remoteBundleOptionsFrom(c)
  const b = opts.find((o) => o.name === 'b')
  assert.equal(b?.maxBytes, 5_000_000)
  assert.equal(b?.load.limits?.maxFileBytes, 1000)
  assert.equal(b?.load.limits?.maxBytes, 5_000_000)
  assert.equal(opts.find((o) => o.name === 'd')?.load.limits?.maxFileBytes, undefined)
})
