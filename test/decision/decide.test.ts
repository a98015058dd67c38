import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager } from '../../src/bundles/activate.js'
import { DecisionCache } from '../../src/cache/decision-cache.js'
import { DecisionService, type DecisionRecord } from '../../src/decision/decide.js'
import { createIdentityVerifier, validateIdentityConfig, type IdentityVerifier } from '../../src/identity/index.js'
import { Metrics } from '../../src/metrics/index.js'
import { needsOpa } from '../helpers/opa.js'
import { buildBundleDir, buildFixture } from '../helpers/bundles.js'
import type { IdentityPort } from '../../src/decision/types.js'
import type { Logger } from '../../src/log.js'
import { PortcullisError } from '../../src/errors.js'
import { ExactNumber } from '../../src/canonical-json.js'
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
      audit: (r) => { records.push(r) },
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
    // a number a double cannot hold is kept as an ExactNumber object: still a number, refused
    // (it was spread into {"text": digits, "identity": ...}, the input {"text": digits} as well)
    await assert.rejects(svc.decide({ path: 'authz/allow', input: new ExactNumber('12345678901234567890') }), { code: 'PORTCULLIS_INPUT_INVALID' })
  })

  const bearer = async (id = frontend): Promise<{ headers: Record<string, string> }> => ({ headers: { authorization: `Bearer ${await issuer.sign(id)}` } })

  test('repeated inputs are answered from the cache, each with its own decision_id and audit record', async () => {
    const { svc, records } = await service({ identity: 'deny' })
    const credentials = await bearer()
    const input = order
    const a = await svc.decide({ path: 'authz/allow', input, credentials })
    const b = await svc.decide({ path: 'authz/allow', input: { path: '/orders/1', method: 'GET', service: 'orders' }, credentials })
    assert.equal(a.cached, false)
    assert.equal(b.cached, true)
    assert.equal(b.result, true)
    assert.notEqual(a.decision_id, b.decision_id)
    assert.equal(records.length, 2)
    assert.equal(records[1]?.decision?.cached, true)
    assert.equal(records[1]?.decision_id, b.decision_id)
    const c = await svc.decide({ path: 'authz/allow', input: { ...input, method: 'DELETE' }, credentials })
    assert.equal(c.cached, false)
    assert.equal(c.result, false)
  })

  test('a cached result cannot be changed by a consumer of an earlier decision', async () => {
    const { svc } = await service({ identity: 'deny' })
    const credentials = await bearer()
    const input = { ...order, service: 'nope' }
    const a = await svc.decide({ path: 'authz/decision', input, credentials })
    assert.throws(() => { (a.result as { allow: boolean }).allow = true })
    assert.throws(() => { (a.result as { reasons: string[] }).reasons.push('x') })
    const b = await svc.decide({ path: 'authz/decision', input, credentials })
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
    const { svc, metrics } = await service({ identity: 'allow' })
    await svc.decide({ path: 'authz/allow', input: order, credentials: await bearer() })
    await svc.decide({ path: 'authz/allow', input: order })
    await svc.decide({ path: 'authz/decision/nothing', input: order })
    await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }))
    const text = await metrics.registry.metrics()
    for (const outcome of ['allow', 'deny', 'undefined', 'error']) assert.match(text, new RegExp(`portcullis_decisions_total\\{outcome="${outcome}"`), outcome)
  })

  /** A policy package written and built by the real opa in a temp dir. */
  function policyBundle (name: string, rego: string, data: unknown, revision: string): string {
    const src = join(dir, `src-${name}-${Math.random().toString(36).slice(2, 8)}`)
    mkdirSync(join(src, name), { recursive: true })
    writeFileSync(join(src, name, 'policy.rego'), rego)
    writeFileSync(join(src, name, 'data.json'), JSON.stringify(data))
    writeFileSync(join(src, '.manifest'), JSON.stringify({ roots: [name] }))
    return buildBundleDir(src, join(dir, `${name}-${Math.random().toString(36).slice(2, 8)}.tar.gz`), { revision, extraArgs: ['-e', `${name}/allow`] })
  }

  const captureLog = (): { logger: Logger, lines: Array<{ level: string, obj: Record<string, unknown> }> } => {
    const lines: Array<{ level: string, obj: Record<string, unknown> }> = []
    const at = (level: string) => (obj: object): void => { lines.push({ level, obj: obj as Record<string, unknown> }) }
    return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines }
  }

  describe('hardening', needsOpa(), () => {
    // Regression: the snapshot was taken before the identity await and the answer inserted after
    // it, so an activation in between emptied the cache and then received the stale answer
    // (keyed by bundle name and revision only: equal revisions, or none, read it back).
    test('a decision computed on an old snapshot is not cached after an activation', async () => {
      const gen = (v: number): string => policyBundle('gen', 'package gen\n\ndefault allow := false\n\nallow if data.gen.v == 1\n', { v }, 'same-revision')
      const v1 = gen(1)
      const v2 = gen(2)
      const manager = new BundleManager()
      managers.push(manager)
      assert.equal(await manager.load(v1, 'gen'), true)
      let release: () => void = () => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const verifier: IdentityPort = { verify: async () => { await gate; return { kind: 'verified', identity: { spiffe_id: frontend } } } }
      const svc = new DecisionService({ manager, cache: new DecisionCache({ maxEntries: 10, ttlMs: 60_000 }), identity: { verifier, onMissing: 'deny', onRejected: 'deny' } })
      const pending = svc.decide({ path: 'gen/allow', input: {} })
      assert.equal(await manager.load(v2, 'gen'), true) // activates while the decision awaits its identity
      release()
      const stale = await pending
      assert.equal(stale.result, true) // it finished on the snapshot it began with
      const fresh = await svc.decide({ path: 'gen/allow', input: {} })
      assert.equal(fresh.cached, false)
      assert.equal(fresh.result, false)
      assert.equal((await svc.decide({ path: 'gen/allow', input: {} })).cached, true)
    })

    test('a cache flush (trust change) while a decision is in flight keeps its answer out of the cache', async () => {
      const manager = new BundleManager()
      managers.push(manager)
      assert.equal(await manager.load(repoBundle('authz')), true)
      let release: () => void = () => {}
      const gate = new Promise<void>((resolve) => { release = resolve })
      const verifier: IdentityPort = { verify: async () => { await gate; return { kind: 'verified', identity: { spiffe_id: frontend } } } }
      const svc = new DecisionService({ manager, cache: new DecisionCache({ maxEntries: 10, ttlMs: 60_000 }), identity: { verifier, onMissing: 'deny', onRejected: 'deny' } })
      const pending = svc.decide({ path: 'authz/allow', input: order })
      svc.flushCache()
      release()
      assert.equal((await pending).result, true)
      assert.equal(svc.cacheStats()?.entries, 0)
    })

    // Regression (defect 3): input.identity was only removed when identity plugins were on.
    test('a caller cannot forge input.identity with identity plugins off: removed and counted', async () => {
      const { svc, metrics } = await service()
      const d = await svc.decide({ path: 'authz/allow', input: { ...order, identity: { spiffe_id: frontend }, identity_error: null } })
      assert.equal(d.result, false)
      assert.equal(Object.hasOwn(d.input as object, 'identity'), false)
      assert.equal(Object.hasOwn(d.input as object, 'identity_error'), false)
      const text = await metrics.registry.metrics()
      assert.match(text, /portcullis_input_reserved_keys_removed_total\{key="identity"\} 1/)
      assert.match(text, /portcullis_input_reserved_keys_removed_total\{key="identity_error"\} 1/)
    })

    test('paths with control characters are refused, never folded into another path', async () => {
      const { svc } = await service()
      for (let c = 0; c < 0x20; c++) {
        await assert.rejects(svc.decide({ path: `authz/allow${String.fromCharCode(c)}strict`, input: order }), { code: 'PORTCULLIS_PATH_INVALID' }, `0x${c.toString(16)}`)
      }
      await assert.rejects(svc.decide({ path: 'authz/allow\x7f', input: order }), { code: 'PORTCULLIS_PATH_INVALID' })
      // empty segments are skipped, as OPA does
      assert.equal((await svc.decide({ path: '/authz//allow/', input: order })).path, 'authz/allow')
    })

    // Defect 10: non-strict builtin errors keep OPA's semantics (the expression is undefined) but
    // are counted by builtin and logged with the decision id.
    test('a builtin error that flips `not deny` is counted and logged with its builtin name', async () => {
      const b = policyBundle('flip', 'package flip\n\ndeny if units.parse(input.size) > 100\n\nallow if not deny\n', {}, 'r1')
      const manager = new BundleManager()
      managers.push(manager)
      assert.equal(await manager.load(b), true)
      const metrics = new Metrics({ defaultMetrics: false })
      const { logger, lines } = captureLog()
      const svc = new DecisionService({ manager, metrics, logger, cache: new DecisionCache({ maxEntries: 10, ttlMs: 60_000 }) })
      const d = await svc.decide({ path: 'flip/allow', input: { size: 'not a size' } })
      assert.equal(d.result, true) // OPA's answer too: the failing expression is undefined
      assert.match(await metrics.registry.metrics(), /portcullis_builtin_errors_total\{builtin="units.parse"\} 1/)
      const line = lines.find((l) => l.obj.builtin === 'units.parse')
      assert.equal(line?.level, 'warn')
      assert.equal(line?.obj.decision_id, d.decision_id)
      assert.equal(line?.obj.code, 'PORTCULLIS_POLICY_BUILTIN_ERROR')
      // never cached: the error shows every time
      assert.equal((await svc.decide({ path: 'flip/allow', input: { size: 'not a size' } })).cached, false)
      // strict mode makes it a failed decision (deny)
      await assert.rejects(svc.decide({ path: 'flip/allow', input: { size: 'not a size' }, strictBuiltinErrors: true }), { code: 'PORTCULLIS_POLICY_BUILTIN_ERROR' })
    })

    // Defect 5: every failure on the decision path is logged once, with its decision id and code.
    test('a failed decision is logged once with its decision_id and code', async () => {
      const manager = new BundleManager()
      managers.push(manager)
      assert.equal(await manager.load(repoBundle('authz')), true)
      const { logger, lines } = captureLog()
      const svc = new DecisionService({ manager, logger })
      const records: DecisionRecord[] = []
      svc.setAuditHook((r) => { records.push(r) })
      await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }), { code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
      assert.equal(lines.length, 1)
      assert.equal(lines[0]?.obj.code, 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
      assert.equal(lines[0]?.obj.decision_id, records[0]?.decision_id)
    })

  describe('an audit hook that returns a promise (sync durability)', () => {
    test('no hook promise: decide() runs to the end without awaiting (the fast Data API shell relies on it)', async () => {
      const { svc, records } = await service({ cache: false })
      let settled = false
      const p = svc.decide({ path: 'authz/allow', input: order }).then(() => { settled = true })
      // one microtask turn for the async function's own promise; nothing else is awaited
      await Promise.resolve()
      assert.equal(settled, true)
      await p
      assert.equal(records.length, 1)
    })

    test('the answer waits for the hook; a rejection is PORTCULLIS_AUDIT_UNAVAILABLE, never the decision', async () => {
      const { svc, metrics } = await service({ cache: false })
      let release: () => void = () => {}
      svc.setAuditHook(() => new Promise<void>((resolve) => { release = resolve }))
      let settled = false
      const pending = svc.decide({ path: 'authz/allow', input: order }).then((d) => { settled = true; return d })
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(settled, false)
      release()
      assert.equal((await pending).defined, true)

      const seen: DecisionRecord[] = []
      svc.setAuditHook((r) => { seen.push(r); return r.error === undefined ? Promise.reject(new Error('disk full')) : undefined })
      await assert.rejects(svc.decide({ path: 'authz/allow', input: order }), { code: 'PORTCULLIS_AUDIT_UNAVAILABLE' })
      // the decision, then (best effort) its failure, under the same decision_id
      assert.deepEqual(seen.map((r) => r.error?.code), [undefined, 'PORTCULLIS_AUDIT_UNAVAILABLE'])
      assert.equal(seen[0]?.decision_id, seen[1]?.decision_id)
      const errors = (await metrics.decisions.get()).values.filter((v) => v.labels.outcome === 'error').reduce((n, v) => n + v.value, 0)
      assert.equal(errors, 1)
    })

    test('a failed decision whose record is rejected too: PORTCULLIS_AUDIT_UNAVAILABLE (a refusal), the decision\'s error as its cause', async () => {
      const { svc } = await service({ cache: false })
      svc.setAuditHook(() => Promise.reject(new Error('disk full')))
      await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }), (err: PortcullisError) => {
        assert.equal(err.code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
        assert.equal((err.cause as PortcullisError).code, 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
        return true
      })
      // recorded: the decision's own error
      svc.setAuditHook(() => undefined)
      await assert.rejects(svc.decide({ path: 'authz/not_a_rule', input: {} }), { code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
    })

    test('recordRefusal waits for the hook and survives its rejection', async () => {
      const { svc } = await service({ cache: false })
      let release: () => void = () => {}
      svc.setAuditHook(() => new Promise<void>((resolve) => { release = resolve }))
      let settled = false
      const pending = svc.recordRefusal({ path: 'envoy/authz/allow', transport: 'envoy-grpc' }, new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'bad')).then((id) => { settled = true; return id })
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(settled, false)
      release()
      assert.match(await pending, /^[0-9a-f-]{36}$/)
      svc.setAuditHook(() => Promise.reject(new Error('disk full')))
      assert.match(await svc.recordRefusal({ path: 'x' }, new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'bad')), /^[0-9a-f-]{36}$/)
    })
  })
  })
})
