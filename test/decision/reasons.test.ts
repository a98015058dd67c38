/**
 * Deny reasons end to end (src/decision/reasons.ts, docs/policies.md "Deny reasons"): a real
 * runtime on loopback with the Data API and Envoy's gRPC ext_authz listener, the reasons test
 * policy compiled by the real opa (test/fixtures/bundles/reasons: reasons rules named in the
 * bundle's .manifest metadata and in the configuration), the durable audit log on (sync), and
 * real clients over the wire. Events are read back from the audit directory.
 */
import { eventsById, type AuditEventRecord } from '../helpers/audit.js'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { boundReasons, MAX_REASONS, MAX_REASONS_BYTES } from '../../src/decision/reasons.js'
import { buildFixture } from '../helpers/bundles.js'
import { checkRequest, fromStruct, OK, PERMISSION_DENIED, startEnvoy, type CheckResponse, type EnvoyEnv } from '../envoy/support.js'

type Event = AuditEventRecord


interface Server { env: EnvoyEnv, url: string, auditDir: string }

async function server (work: string, name: string, bundlesDir: string, policy: Record<string, unknown>): Promise<Server> {
  const auditDir = join(work, `audit-${name}`)
  mkdirSync(auditDir)
  const { privateKeyPem } = generateCheckpointKey()
  const keyFile = join(work, `checkpoint-${name}.pem`)
  writeFileSync(keyFile, privateKeyPem, { mode: 0o600 })
  const env = await startEnvoy(bundlesDir, {
    policy,
    audit: { enabled: true, dir: auditDir, durability: 'sync', checkpoint: { every_events: 4, every_seconds: 3600, key_file: keyFile } },
    envoy_ext_authz: { path: 'reasons/envoy' },
  })
  const address = env.runtime.app.server.address()
  assert.ok(address !== null && typeof address === 'object')
  return { env, url: `http://127.0.0.1:${address.port}`, auditDir }
}

async function data (url: string, path: string, input: unknown): Promise<Event> {
  const r = await fetch(`${url}/v1/data/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) })
  assert.equal(r.status, 200)
  return await r.json() as Event
}

const decisionIdOf = (r: CheckResponse): string => fromStruct(r.dynamicMetadata).decision_id as string
const header = (r: CheckResponse, key: string): string | undefined => r.deniedResponse?.headers?.find((h) => h.header.key === key)?.header.value

const WHY = ['only alice may read orders', { code: 'NOT_ALICE', user: 'bob' }]

describe('deny reasons: recorded in audit events, returned only when configured', () => {
  let work: string
  let off: Server
  let on: Server

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-reasons-'))
    const bundles = join(work, 'bundles')
    mkdirSync(bundles)
    buildFixture('reasons', work, { out: join('bundles', 'reasons.tar.gz'), revision: 'reasons-rev-1' })
    const configured = { 'reasons/configured': 'reasons/configured_why' }
    off = await server(work, 'off', bundles, { reasons: configured })
    on = await server(work, 'on', bundles, { reasons: configured, return_reasons: true })
  })

  after(async () => {
    await off?.env.close()
    await on?.env.close()
    rmSync(work, { recursive: true, force: true })
  })

  test('a Data API deny: reasons from the manifest-named rule in the event, not in the answer (off by default); a cache hit has them too', async () => {
    const first = await data(off.url, 'reasons/allow', { user: 'bob' })
    const second = await data(off.url, 'reasons/allow', { user: 'bob' })
    assert.equal(first.result, false)
    assert.equal(Object.hasOwn(first, 'reasons'), false)
    assert.equal(Object.hasOwn(second, 'reasons'), false)
    const events = await eventsById(off.auditDir)
    for (const d of [first, second]) {
      const e = events.get(d.decision_id) as Event
      assert.equal(e.outcome, 'deny')
      // a Rego set arrives sorted: strings before objects
      assert.deepEqual(e.reasons, WHY)
      assert.equal(e.reasons_error, undefined)
    }
    assert.equal(events.get(second.decision_id)?.cached, true)
  })

  test('an allow has no reasons (the rule is not evaluated)', async () => {
    const d = await data(off.url, 'reasons/allow', { user: 'alice' })
    assert.equal(d.result, true)
    const e = (await eventsById(off.auditDir)).get(d.decision_id) as Event
    assert.equal(e.outcome, 'allow')
    assert.equal(Object.hasOwn(e, 'reasons'), false)
    assert.equal(Object.hasOwn(e, 'reasons_error'), false)
  })

  test('a reasons rule that fails or is undefined: reasons_error with its code, the deny unchanged', async () => {
    const broken = await data(off.url, 'reasons/broken', { user: 'bob' })
    const nothing = await data(on.url, 'reasons/nothing', { user: 'bob' })
    assert.equal(broken.result, false)
    assert.equal(nothing.result, false)
    assert.equal(Object.hasOwn(nothing, 'reasons'), false)
    const b = (await eventsById(off.auditDir)).get(broken.decision_id) as Event
    assert.equal(b.outcome, 'deny')
    assert.equal(b.reasons_error.code, 'PORTCULLIS_POLICY_CONFLICT')
    assert.equal(Object.hasOwn(b, 'reasons'), false)
    const n = (await eventsById(on.auditDir)).get(nothing.decision_id) as Event
    assert.equal(n.outcome, 'deny')
    assert.equal(n.reasons_error.code, 'PORTCULLIS_REASONS_UNDEFINED')
  })

  test('a reasons rule named in the configuration (policy.reasons)', async () => {
    const d = await data(off.url, 'reasons/configured', {})
    const e = (await eventsById(off.auditDir)).get(d.decision_id) as Event
    assert.deepEqual(e.reasons, ['named in the configuration'])
  })

  test('too many reasons are cut to the bound and marked', async () => {
    const d = await data(on.url, 'reasons/many', {})
    assert.equal(d.reasons.length, MAX_REASONS)
    const e = (await eventsById(on.auditDir)).get(d.decision_id) as Event
    assert.equal(e.reasons.length, MAX_REASONS)
    assert.equal(e.reasons[0], 'reason number 1')
    assert.equal(e.reasons_truncated, true)
  })

  test('policy.return_reasons: the Data API answer carries `reasons` beside `result`', async () => {
    const d = await data(on.url, 'reasons/allow', { user: 'bob' })
    assert.equal(d.result, false)
    assert.deepEqual(d.reasons, WHY)
    const allowed = await data(on.url, 'reasons/allow', { user: 'alice' })
    assert.equal(Object.hasOwn(allowed, 'reasons'), false)
  })

  test('policy.return_reasons: each batch item that is denied carries its reasons', async () => {
    const r = await fetch(`${on.url}/v1/batch/data/reasons/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { a: { user: 'alice' }, b: { user: 'bob' } } }) })
    assert.equal(r.status, 200)
    const body = await r.json() as Event
    assert.equal(Object.hasOwn(body.responses.a, 'reasons'), false)
    assert.deepEqual(body.responses.b.reasons, WHY)
    const quiet = await (await fetch(`${off.url}/v1/batch/data/reasons/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { b: { user: 'bob' } } }) })).json() as Event
    assert.equal(quiet.responses.b.result, false)
    assert.equal(Object.hasOwn(quiet.responses.b, 'reasons'), false)
    assert.deepEqual((await eventsById(off.auditDir)).get(quiet.responses.b.decision_id)?.reasons, WHY)
  })

  test('an Envoy gRPC deny: reasons in the event; the x-portcullis-reasons header only when returned', async () => {
    const quiet = await off.env.check(checkRequest('/private'))
    assert.equal(quiet.status?.code, PERMISSION_DENIED)
    assert.equal(header(quiet, 'x-portcullis-reasons'), undefined)
    const told = await on.env.check(checkRequest('/private'))
    assert.equal(told.status?.code, PERMISSION_DENIED)
    assert.equal(told.deniedResponse?.body, 'denied')
    assert.deepEqual(JSON.parse(header(told, 'x-portcullis-reasons') as string), ['path /private is not public'])
    const allowed = await on.env.check(checkRequest('/public'))
    assert.equal(allowed.status?.code, OK)
    const offEvents = await eventsById(off.auditDir)
    const onEvents = await eventsById(on.auditDir)
    const q = offEvents.get(decisionIdOf(quiet)) as Event
    assert.equal(q.transport, 'envoy-grpc')
    assert.equal(q.outcome, 'deny')
    assert.deepEqual(q.reasons, ['path /private is not public'])
    assert.deepEqual(onEvents.get(decisionIdOf(told))?.reasons, ['path /private is not public'])
    const a = onEvents.get(decisionIdOf(allowed)) as Event
    assert.equal(a.outcome, 'allow')
    assert.equal(Object.hasOwn(a, 'reasons'), false)
  })
})

describe('boundReasons', () => {
  test('keeps strings and objects in order', () => {
    assert.deepEqual(boundReasons(['a', { b: 1 }]), { reasons: ['a', { b: 1 }] })
  })

  test('cuts at the byte bound and marks it', () => {
    const big = 'x'.repeat(1000)
    const r = boundReasons([big, big, big, big, big, big])
    assert.equal(r.truncated, true)
    assert.equal(r.reasons?.length, 4)
    assert.ok(JSON.stringify(r.reasons).length <= MAX_REASONS_BYTES)
  })

  test('anything but an array of strings or objects is PORTCULLIS_REASONS_INVALID', () => {
    assert.equal(boundReasons('no').error?.code, 'PORTCULLIS_REASONS_INVALID')
    assert.equal(boundReasons([1]).error?.code, 'PORTCULLIS_REASONS_INVALID')
    assert.equal(boundReasons([['nested']]).error?.code, 'PORTCULLIS_REASONS_INVALID')
  })
})
