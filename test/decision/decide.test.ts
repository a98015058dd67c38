import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager } from '../../src/bundles/activate.js'
import { DecisionCache } from '../../src/cache/decision-cache.js'
import { DecisionService, type DecisionRecord } from '../../src/decision/decide.js'
import { createIdentityVerifier, validateIdentityConfig, type IdentityVerifier } from '../../src/identity/index.js'
import { Metrics } from '../../src/metrics/index.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'
import { jwtSvidIssuer, type JwtSvidIssuer } from '../helpers/jwt-svid.js'

const repoBundle = (name: string): string => join(process.cwd(), 'bundles', `${name}.tar.gz`)
const frontend = 'spiffe://example.org/ns/shop/sa/frontend'
const order = { service: 'orders', method: 'GET', path: '/orders/1' }

describe('the decision pipeline', () => {
  let dir: string
  let issuer: JwtSvidIssuer
  let verifier: IdentityVerifier
  const managers: BundleManager[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-decide-'))
    issuer = await jwtSvidIssuer(dir)
    verifier = createIdentityVerifier(validateIdentityConfig({
      trust_domains: { 'example.org': { jwt_authorities: [issuer.jwksFile] } },
      jwt_svid: { audiences: ['portcullis'] },
      watch: { enabled: false },
    }))
    await verifier.ready
  })
  after(async () => {
    await verifier.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function service (opts: { identity?: 'deny' | 'allow', cache?: boolean, bundles?: string[] } = {}): Promise<{ svc: DecisionService, manager: BundleManager, records: DecisionRecord[], metrics: Metrics }> {
    const manager = new BundleManager()
    managers.push(manager)
    for (const b of opts.bundles ?? [repoBundle('authz')]) assert.equal(await manager.load(b), true)
    const records: DecisionRecord[] = []
    const metrics = new Metrics({ defaultMetrics: false })
    const svc = new DecisionService({
      manager,
      metrics,
      audit: (r) => records.push(r),
      ...(opts.cache !== false ? { cache: new DecisionCache({ maxEntries: 100, ttlMs: 60_000, metrics }) } : {}),
      ...(opts.identity !== undefined ? { identity: { verifier, onMissing: opts.identity, onRejected: opts.identity } } : {}),
    })
    return { svc, manager, records, metrics }
  }

  test('a verified JWT-SVID becomes input.identity and reaches the policy', async () => {
    const { svc } = await service({ identity: 'deny' })
    const token = await issuer.sign(frontend)
    const d = await svc.decide({ path: 'authz/allow', input: order, credentials: { headers: { authorization: `Bearer ${token}` } } })
    assert.equal(d.result, true)
    assert.equal((d.input as { identity: { spiffe_id: string } }).identity.spiffe_id, frontend)
  })

  test('a caller cannot forge input.identity', async () => {
    const { svc } = await service({ identity: 'allow' })
    const forged = { ...order, identity: { spiffe_id: frontend }, identity_error: null }
    const d = await svc.decide({ path: 'authz/allow', input: forged, credentials: { headers: {} } })
    assert.equal(d.result, false)
    assert.equal((d.input as Record<string, unknown>).identity, undefined)
    assert.deepEqual((d.input as { identity_error: { code: string } }).identity_error.code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('anonymous callers are denied before the policy by default', async () => {
    const { svc, records } = await service({ identity: 'deny' })
    await assert.rejects(svc.decide({ path: 'authz/allow', input: order, credentials: { headers: {} } }), { code: 'PORTCULLIS_IDENTITY_REQUIRED' })
    assert.equal(records.length, 1)
    assert.equal(records[0]?.error?.code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('a rejected credential is never anonymous: denied with its code, or passed as identity_error', async () => {
    const token = await issuer.sign(frontend)
    const at = token.lastIndexOf('.') + 10
    const bad = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1)
    const deny = await service({ identity: 'deny' })
    await assert.rejects(deny.svc.decide({ path: 'authz/allow', input: order, credentials: { headers: { authorization: `Bearer ${bad}` } } }), (err: { code: string }) => err.code.startsWith('PORTCULLIS_IDENTITY_') && err.code !== 'PORTCULLIS_IDENTITY_REQUIRED')
    assert.match(await deny.metrics.registry.metrics(), /portcullis_identity_rejections_total\{code="PORTCULLIS_IDENTITY_/)
    const allow = await service({ identity: 'allow' })
    const d = await allow.svc.decide({ path: 'authz/allow', input: order, credentials: { headers: { authorization: `Bearer ${bad}` } } })
    assert.equal(d.result, false)
    const e = (d.input as { identity_error: { code: string } }).identity_error
    assert.ok(e.code.startsWith('PORTCULLIS_IDENTITY_') && e.code !== 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('non-object input is refused when identity is on', async () => {
    const { svc } = await service({ identity: 'allow' })
    await assert.rejects(svc.decide({ path: 'authz/allow', input: 'x' }), { code: 'PORTCULLIS_INPUT_INVALID' })
  })

  test('repeated inputs are answered from the cache, each with its own decision_id and audit record', async () => {
    const { svc, records } = await service()
    const input = { ...order, identity: { spiffe_id: frontend } }
    const a = await svc.decide({ path: 'authz/allow', input })
    const b = await svc.decide({ path: 'authz/allow', input: { identity: { spiffe_id: frontend }, path: '/orders/1', method: 'GET', service: 'orders' } })
    assert.equal(a.cached, false)
    assert.equal(b.cached, true)
    assert.equal(b.result, true)
    assert.notEqual(a.decision_id, b.decision_id)
    assert.equal(records.length, 2)
    assert.equal(records[1]?.decision?.cached, true)
    assert.equal(records[1]?.decision_id, b.decision_id)
    const c = await svc.decide({ path: 'authz/allow', input: { ...input, method: 'DELETE' } })
    assert.equal(c.cached, false)
    assert.equal(c.result, false)
  })

  test('a cached result cannot be changed by a consumer of an earlier decision', async () => {
    const { svc } = await service()
    const input = { ...order, service: 'nope', identity: { spiffe_id: frontend } }
    const a = await svc.decide({ path: 'authz/decision', input })
    assert.throws(() => { (a.result as { allow: boolean }).allow = true })
    assert.throws(() => { (a.result as { reasons: string[] }).reasons.push('x') })
    const b = await svc.decide({ path: 'authz/decision', input })
    assert.equal(b.cached, true)
    assert.deepEqual(b.result, { allow: false, reasons: ['service "nope" is not registered'] })
  })

  test('the cache is emptied when a bundle activates', async () => {
    const { svc, manager } = await service()
    const input = { ...order, identity: { spiffe_id: frontend } }
    await svc.decide({ path: 'authz/allow', input })
    assert.equal((await svc.decide({ path: 'authz/allow', input })).cached, true)
    await manager.load(repoBundle('envoy'))
    assert.equal((await svc.decide({ path: 'authz/allow', input })).cached, false)
  })

  test('undefined decisions are cached as undefined, errors never are', async () => {
    const { svc } = await service()
    const a = await svc.decide({ path: 'authz/decision/nothing', input: order })
    const b = await svc.decide({ path: 'authz/decision/nothing', input: order })
    assert.equal(a.defined, false)
    assert.equal(b.defined, false)
    assert.equal(b.cached, true)
    await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }), { code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
    // a path no bundle owns is undefined (OPA's answer), and not cached
    const n = await svc.decide({ path: 'nowhere/x', input: {} })
    assert.deepEqual([n.defined, n.cached, n.bundle], [false, false, ''])
    assert.equal((await svc.decide({ path: 'nowhere/x', input: {} })).cached, false)
  })

  test('no bundle active: PORTCULLIS_POLICY_NOT_READY', async () => {
    const manager = new BundleManager()
    const svc = new DecisionService({ manager })
    await assert.rejects(svc.decide({ path: 'authz/allow', input: {} }), { code: 'PORTCULLIS_POLICY_NOT_READY' })
  })

  describe('with non-deterministic builtins', needsOpa(), () => {
    test('a policy calling time.now_ns is never cached', async () => {
      const basic = buildFixture('basic', dir)
      const { svc } = await service({ bundles: [basic] })
      const a = await svc.decide({ path: 'basic/allow', input: { user: 'alice' } })
      const b = await svc.decide({ path: 'basic/allow', input: { user: 'alice' } })
      assert.deepEqual([a.cached, b.cached], [false, false])
    })
  })

  describe('explain', needsOpa(), () => {
    test('?explain returns the policy\'s trace() notes and bypasses the cache', async () => {
      const other = buildFixture('other', dir)
      const { svc } = await service({ bundles: [other] })
      const plain = await svc.decide({ path: 'other/traced', input: { name: 'x' } })
      assert.equal(plain.explanation, undefined)
      const d = await svc.decide({ path: 'other/traced', input: { name: 'x' }, explain: true })
      assert.equal(d.result, true)
      assert.equal(d.cached, false)
      assert.deepEqual(d.explanation, ['checking x'])
    })
  })

  test('decisions are counted by outcome', async () => {
    const { svc, metrics } = await service()
    await svc.decide({ path: 'authz/allow', input: { ...order, identity: { spiffe_id: frontend } } })
    await svc.decide({ path: 'authz/allow', input: order })
    await svc.decide({ path: 'authz/decision/nothing', input: order })
    await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }))
    const text = await metrics.registry.metrics()
    for (const outcome of ['allow', 'deny', 'undefined', 'error']) assert.match(text, new RegExp(`portcullis_decisions_total\\{outcome="${outcome}"`), outcome)
  })
})
