/**
 * The example policies under policies/: their Rego unit tests pass under the real `opa test`,
 * the committed bundles in bundles/ are built from exactly these sources, and Portcullis gives
 * the same answers through the compiled wasm.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundlesDir, buildPolicy, policyPackages, sourceRevision } from '../../scripts/lib/policies.js'
import { readTarGz } from '../../src/bundles/archive.js'
import { BundleManager } from '../../src/bundles/activate.js'
import { needsOpa, runOpa } from '../helpers/opa.js'

const packages = policyPackages()

test('every policy package has a committed bundle whose revision matches its sources (run `npm run build:policies`)', async () => {
  assert.deepEqual(packages.map((p) => p.name), ['authz', 'envoy', 'system'])
  for (const pkg of packages) {
    const committed = join(bundlesDir, `${pkg.name}.tar.gz`)
    const files = await readTarGz(readFileSync(committed), committed)
    const manifest = JSON.parse((files.get('.manifest') as Buffer).toString()) as { revision: string }
    assert.equal(manifest.revision, sourceRevision(pkg.dir), `bundles/${pkg.name}.tar.gz is stale against policies/${pkg.name}: run npm run build:policies`)
  }
})

describe('with the opa CLI', needsOpa(), () => {
  test('opa test passes for every policy package', () => {
    const out = runOpa(['test', '--format', 'json', ...packages.map((p) => p.dir)])
    const results = JSON.parse(out) as Array<{ name: string, fail?: boolean, error?: unknown }>
    assert.ok(results.length >= 20, `expected the Rego test suites, got ${results.length} tests`)
    const failed = results.filter((r) => r.fail === true || r.error !== undefined).map((r) => r.name)
    assert.deepEqual(failed, [])
  })

  test('rebuilding the sources reproduces the committed bundles byte for byte', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-rebuild-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    for (const pkg of packages) {
      const out = join(dir, `${pkg.name}.tar.gz`)
      buildPolicy(pkg, out)
      assert.ok(readFileSync(out).equals(readFileSync(join(bundlesDir, `${pkg.name}.tar.gz`))), `bundles/${pkg.name}.tar.gz is stale: run npm run build:policies`)
    }
  })
})

describe('the committed bundles answer as their Rego tests say', () => {
  const manager = new BundleManager()
  const load = (async () => {
    for (const p of packages) assert.equal(await manager.load(join(bundlesDir, `${p.name}.tar.gz`)), true, p.name)
  })()

  test('service-to-service authorization by SPIFFE ID', async () => {
    await load
    const ask = (spiffe_id: string | undefined, service: string, method: string, path: string): unknown =>
      manager.snapshot.evaluate('authz/allow', { identity: spiffe_id === undefined ? undefined : { spiffe_id }, service, method, path }).result
    assert.equal(ask('spiffe://example.org/ns/shop/sa/frontend', 'orders', 'GET', '/orders/42'), true)
    assert.equal(ask('spiffe://example.org/ns/shop/sa/frontend', 'orders', 'DELETE', '/orders/42'), false)
    assert.equal(ask('spiffe://example.org/ns/shop/sa/billing', 'orders', 'GET', '/orders/42/invoice'), true)
    assert.equal(ask('spiffe://example.org/ns/ops/sa/prom', 'payments', 'GET', '/metrics'), true)
    assert.equal(ask('spiffe://evil.org/ns/shop/sa/frontend', 'orders', 'GET', '/orders/1'), false)
    assert.equal(ask(undefined, 'orders', 'GET', '/orders/1'), false)
    const d = manager.snapshot.evaluate('authz/decision', { service: 'inventory', method: 'GET', path: '/' }).result as { allow: boolean, reasons: string[] }
    assert.equal(d.allow, false)
    assert.ok(d.reasons.includes('service "inventory" is not registered'))
  })

  test('Envoy ext_authz policy in opa-envoy-plugin input shape', async () => {
    await load
    const req = (method: string, parsed: string[], spiffe?: string): unknown => ({
      attributes: { request: { http: { method, path: '/' + parsed.join('/'), headers: {} } } },
      parsed_path: parsed,
      parsed_query: {},
      ...(spiffe === undefined ? {} : { identity: { spiffe_id: spiffe } }),
    })
    assert.equal(manager.snapshot.evaluate('envoy/authz/allow', req('GET', ['healthz'])).result, true)
    assert.equal(manager.snapshot.evaluate('envoy/authz/allow', req('POST', ['api', 'orders'], 'spiffe://example.org/ns/shop/sa/frontend')).result, true)
    assert.equal(manager.snapshot.evaluate('envoy/authz/allow', req('GET', ['api', 'ordersx'], 'spiffe://example.org/ns/shop/sa/frontend')).result, false)
    const r = manager.snapshot.evaluate('envoy/authz/response', req('GET', ['api', 'orders'])).result as { allowed: boolean, http_status: number }
    assert.deepEqual([r.allowed, r.http_status], [false, 401])
    const refund = (body: unknown, truncated: boolean): { allowed: boolean, http_status: number, request_headers_to_remove?: string[] } => manager.snapshot.evaluate('envoy/authz/response', {
      ...(req('POST', ['api', 'refunds'], 'spiffe://example.org/ns/shop/sa/billing') as object),
      parsed_body: body,
      ...(truncated ? { truncated_body: true } : {}),
    }).result as { allowed: boolean, http_status: number, request_headers_to_remove?: string[] }
    const ok = refund({ amount: 120, currency: 'EUR' }, false)
    assert.deepEqual([ok.allowed, ok.http_status, ok.request_headers_to_remove], [true, 200, ['authorization']])
    assert.deepEqual([refund({ amount: 120, currency: 'EUR' }, true).http_status, refund({ amount: 9000, currency: 'EUR' }, false).http_status], [413, 403])
  })

  test('decision-log mask policy erases credentials', async () => {
    await load
    const masks = manager.snapshot.evaluate('system/log/mask', { input: { attributes: { request: { http: { headers: { authorization: 'Bearer x', accept: '*/*' } } } } } }).result
    assert.deepEqual(masks, ['/input/attributes/request/http/headers/authorization'])
  })
})
