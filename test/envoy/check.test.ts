/**
 * check.ts, the transport-neutral adapter, called directly against the real decision pipeline
 * (a runtime over the envoy test bundle): what the socket shells cannot easily provoke.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EnvoyCheck, inputPaths, type EnvoyCheckSettings } from '../../src/envoy/check.js'
import { PortcullisError } from '../../src/errors.js'
import type { DecisionRecord } from '../../src/decision/types.js'
import { checkRequest, envoyBundles, startEnvoy, type EnvoyEnv } from './support.js'

describe('EnvoyCheck', () => {
  let bundles: ReturnType<typeof envoyBundles>
  let env: EnvoyEnv
  const records: DecisionRecord[] = []
  const settings: EnvoyCheckSettings = { path: 'envoy/authz/allow', skipRequestBodyParse: false, dryRun: false, trustedCaller: () => false, cacheBypass: true }

  before(async () => {
    bundles = envoyBundles()
    env = await startEnvoy(bundles.dir)
    env.runtime.decisions.setAuditHook((r) => { records.push(r) })
  })
  after(async () => {
    await env.close()
    bundles.cleanup()
  })

  const check = (): EnvoyCheck => new EnvoyCheck({ decisions: env.runtime.decisions, settings, transport: 'envoy-grpc', metrics: env.runtime.metrics })

  test('a Check cancelled before evaluation is an error (never an allow) and is audited', async () => {
    records.length = 0
    const controller = new AbortController()
    controller.abort(new PortcullisError('PORTCULLIS_ENVOY_DEADLINE_EXCEEDED', 'late'))
    const outcome = await check().check(checkRequest('/bool') as never, { signal: controller.signal })
    assert.equal(outcome.kind, 'error')
    assert.equal(outcome.kind === 'error' && outcome.error.code, 'PORTCULLIS_ENVOY_DEADLINE_EXCEEDED')
    assert.deepEqual(records.map((r) => r.error?.code), ['PORTCULLIS_ENVOY_DEADLINE_EXCEEDED'])
    const plain = new AbortController()
    plain.abort()
    const cancelled = await check().check(checkRequest('/bool') as never, { signal: plain.signal })
    assert.equal(cancelled.kind === 'error' && cancelled.error.code, 'PORTCULLIS_ENVOY_CANCELLED')
  })

  test('an unparseable request is refused and audited with its request id', async () => {
    records.length = 0
    const outcome = await check().check(checkRequest('/a?b=%', { id: 'rq-9' }) as never, { remoteAddress: '127.0.0.1' })
    assert.equal(outcome.kind === 'refused' && outcome.error.code, 'PORTCULLIS_ENVOY_REQUEST_INVALID')
    assert.equal(records.length, 1)
    assert.deepEqual([records[0]?.request.requestId, records[0]?.request.requestedBy, records[0]?.request.transport], ['rq-9', '127.0.0.1', 'envoy-grpc'])
  })

  test('dry run: the verdict is an allow, the recorded decision a deny', async () => {
    records.length = 0
    const dry = new EnvoyCheck({ decisions: env.runtime.decisions, settings: { ...settings, dryRun: true }, transport: 'envoy-http' })
    const outcome = await dry.check(checkRequest('/deny') as never)
    assert.ok(outcome.kind === 'decided' && outcome.dryRun && outcome.verdict.allowed)
    assert.equal((records[0]?.decision?.result as { allowed: boolean }).allowed, false)
  })

  test('identity off: no credentials are built, so an untrusted caller\'s source.certificate is neither counted nor logged, and the decision is as usual', async () => {
    assert.equal(env.runtime.decisions.identityEnabled, false)
    const warnings: object[] = []
    const logger = { info: () => {}, warn: (o: object) => { warnings.push(o) }, error: () => {} }
    const ignored = async (): Promise<number> => (await env.runtime.metrics.envoyPeerCertificatesIgnored.get()).values.reduce((n, v) => n + v.value, 0)
    const before = await ignored()
    const c = new EnvoyCheck({ decisions: env.runtime.decisions, settings, transport: 'envoy-grpc', metrics: env.runtime.metrics, logger })
    const req = checkRequest('/bool', {}, { source: { certificate: '-----BEGIN%20CERTIFICATE-----', address: { socketAddress: { address: '10.0.0.7', portValue: 1 } } } })
    const outcome = await c.check(req as never, { remoteAddress: '192.0.2.1' })
    assert.ok(outcome.kind === 'decided' && outcome.verdict.allowed)
    assert.deepEqual(warnings, [])
    assert.equal(await ignored(), before)
  })

  test('inputPaths splits dotted paths', () => {
    assert.deepEqual(inputPaths(['attributes.request.http.id', 'parsed_query']), [['attributes', 'request', 'http', 'id'], ['parsed_query']])
  })
})
