/** decision_logs shipping keys and services: OPA's keys and rules, and shipping's need of the audit log. */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { shippingTarget, shippingWarnings } from '../../src/config/decision-logs.js'
import { loadConfig } from '../../src/config/load.js'

function write (text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'dl-config-'))
  const f = join(dir, 'c.yaml')
  writeFileSync(f, text)
  return f
}

function invalidKey (fn: () => unknown, key: string): void {
  assert.throws(fn, (err: { code: string, details: { key: string } }) => {
    assert.equal(err.code, 'PORTCULLIS_CONFIG_INVALID')
    assert.equal(err.details.key, key)
    return true
  })
}

test('shipping without the durable audit log is refused, naming the key', () => {
  const f = write(`
services:
  acmecorp:
    url: https://example.com/control-plane-api/v1
decision_logs:
  service: acmecorp
`)
  invalidKey(() => loadConfig({ file: f, env: {} }), 'decision_logs.service')
})

test("OPA's rules: min and max delay together, max >= min, a named service must exist", () => {
  const svc = 'services:\n  s:\n    url: http://127.0.0.1:1\n'
  invalidKey(() => loadConfig({ file: write(`${svc}decision_logs:\n  reporting:\n    min_delay_seconds: 5\n`), env: {} }), 'decision_logs.reporting.max_delay_seconds')
  invalidKey(() => loadConfig({ file: write(`${svc}decision_logs:\n  reporting:\n    max_delay_seconds: 5\n`), env: {} }), 'decision_logs.reporting.min_delay_seconds')
  invalidKey(() => loadConfig({ file: write(`${svc}decision_logs:\n  service: nope\n`), env: {} }), 'decision_logs.service')
  invalidKey(() => loadConfig({ file: write(`${svc}decision_logs:\n  service: s\n  reporting:\n    min_delay_seconds: 10\n    max_delay_seconds: 5\n`), env: {} }), 'decision_logs.reporting.max_delay_seconds')
  invalidKey(() => loadConfig({ file: write(`${svc}decision_logs:\n  reporting:\n    trigger: sometimes\n`), env: {} }), 'decision_logs.reporting.trigger')
})

test('services in the list form, with credential paths resolved against the config file', () => {
  const f = write(`
services:
  - name: logs
    url: https://logs.example.com
    credentials:
      bearer:
        token_path: token.txt
    tls:
      ca_cert: ca.pem
`)
  const c = loadConfig({ file: f, env: {} })
  const svc = c.services?.logs
  assert.ok(svc !== undefined)
  assert.equal(svc.credentials?.bearer?.token_path, join(f, '..', 'token.txt'))
  assert.equal(svc.tls?.ca_cert, join(f, '..', 'ca.pem'))
  invalidKey(() => loadConfig({ file: write('services:\n  - url: http://x\n'), env: {} }), 'services[0].name')
})

test('which service and resource, as OPA decides: named, else the first unless console; partition_name wins over resource', () => {
  const svcs = 'services:\n  a:\n    url: http://127.0.0.1:1\n  b:\n    url: http://127.0.0.1:2\n'
  const audit = 'audit:\n  enabled: true\n  dir: audit\n'
  const target = (text: string): ReturnType<typeof shippingTarget> => shippingTarget(loadConfig({ file: write(text), env: {} }))
  // services for other uses (bundles) and no decision_logs section: no shipping, no audit needed
  assert.equal(target(svcs), undefined)
  assert.deepEqual(target(`${svcs}${audit}decision_logs:\n  mask_decision: /system/log/mask\n`)?.serviceName, 'a')
  assert.equal(target(`${svcs}${audit}decision_logs:\n  mask_decision: /system/log/mask\n`)?.resource, '/logs')
  assert.equal(target(`${svcs}decision_logs:\n  console: true\n`), undefined)
  assert.equal(target(`${svcs}${audit}decision_logs:\n  console: true\n  service: b\n`)?.serviceName, 'b')
  assert.equal(target(`${svcs}${audit}decision_logs:\n  service: a\n  resource: custom/path\n`)?.resource, '/custom/path')
  assert.equal(target(`${svcs}${audit}decision_logs:\n  service: a\n  resource: /x\n  partition_name: p1\n`)?.resource, '/logs/p1')
})

test("an OPA configuration's decision_logs section works unchanged (with the audit log on)", () => {
  const c = loadConfig({
    file: write(`
services:
  acmecorp:
    url: https://example.com/control-plane-api/v1
    credentials:
      bearer:
        token: "bGFza2RqZmxha3NkamZsa2Fqc2Rsa2ZqYWtsc2RqZmtramRmYWxkc2tm"
decision_logs:
  service: acmecorp
  partition_name: prod
  reporting:
    buffer_size_limit_bytes: 32768
    upload_size_limit_bytes: 4096
    min_delay_seconds: 5
    max_delay_seconds: 10
    trigger: periodic
  mask_decision: /system/log/mask
  drop_decision: /system/log/drop
  console: false
audit:
  enabled: true
  dir: audit
`),
    env: {},
  })
  assert.equal(c.decision_logs.reporting.upload_size_limit_bytes, 4096)
  assert.equal(c.decision_logs.reporting.min_delay_seconds, 5)
  assert.equal(shippingTarget(c)?.resource, '/logs/prod')
})

test('retention that may outrun shipping is warned about', () => {
  const base = 'services:\n  s:\n    url: http://127.0.0.1:1\ndecision_logs:\n  service: s\n  reporting:\n    min_delay_seconds: 60\n    max_delay_seconds: 600\n'
  const c1 = loadConfig({ file: write(`${base}audit:\n  enabled: true\n  dir: a\n  retention:\n    max_age_seconds: 900\n    protect_unshipped: false\n`), env: {} })
  assert.equal(shippingWarnings(c1).length, 2)
  // the default protects unshipped events: one warning (the log may grow), none about loss
  const c0 = loadConfig({ file: write(`${base}audit:\n  enabled: true\n  dir: a\n  retention:\n    max_age_seconds: 900\n`), env: {} })
  assert.equal(shippingWarnings(c0).length, 1)
  const c2 = loadConfig({ file: write(`${base}audit:\n  enabled: true\n  dir: a\n  retention:\n    max_age_seconds: 86400\n    protect_unshipped: false\n`), env: {} })
  assert.equal(shippingWarnings(c2).length, 1)
  const c3 = loadConfig({ file: write(`${base}audit:\n  enabled: true\n  dir: a\n`), env: {} })
  assert.deepEqual(shippingWarnings(c3), [])
})

test("reporting defaults are OPA's", () => {
  const c = loadConfig({ env: {} })
  assert.deepEqual(c.decision_logs.reporting, { min_delay_seconds: 300, max_delay_seconds: 600, upload_size_limit_bytes: 32768, trigger: 'periodic' })
})
