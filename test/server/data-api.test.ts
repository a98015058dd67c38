/**
 * The Data API adapter's failure path (src/server/data-api.ts), through both socket shells:
 * every failed request is counted once and logged once — by decide() with its decision_id when
 * a decision failed, by the adapter otherwise — and an unexpected exception is an internal
 * error, logged with its cause, never a decision.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { BundleManager } from '../../src/bundles/activate.js'
import { DecisionService, type DecisionRecord } from '../../src/decision/decide.js'
import type { Logger } from '../../src/log.js'
import { Metrics } from '../../src/metrics/index.js'
import { build } from '../../src/server/app.js'

interface Line { level: string, obj: Record<string, unknown> }

describe('the Data API adapter: failures counted once, logged once', () => {
  const lines: Line[] = []
  const at = (level: string) => (obj: object): void => { lines.push({ level, obj: obj as Record<string, unknown> }) }
  const logger: Logger = { info: at('info'), warn: at('warn'), error: at('error') }
  const records: DecisionRecord[] = []
  let metrics: Metrics
  let decisions: DecisionService
  const apps: Record<'fast' | 'plain', { app: FastifyInstance, url: string }> = {} as never

  before(async () => {
    const manager = new BundleManager()
    assert.equal(await manager.load(join(process.cwd(), 'bundles', 'authz.tar.gz')), true)
    metrics = new Metrics({ defaultMetrics: false })
    decisions = new DecisionService({ manager, metrics, logger, audit: (r) => { records.push(r) } })
    for (const [name, fastDataRoute] of [['fast', true], ['plain', false]] as const) {
      const app = build({ decisions, manager, metrics, logger, fastDataRoute })
      apps[name] = { app, url: await app.listen({ host: '127.0.0.1', port: 0 }) }
    }
  })
  after(async () => {
    for (const a of Object.values(apps)) await a.app.close()
  })

  const errorsOf = async (code: string): Promise<number> => (await metrics.requestErrors.get()).values.find((v) => v.labels.code === code)?.value ?? 0
  const post = async (base: string, path: string, body: string): Promise<{ status: number, body: Record<string, unknown> }> => {
    const r = await fetch(new URL(path, base), { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    return { status: r.status, body: await r.json() as Record<string, unknown> }
  }

  for (const shell of ['fast', 'plain'] as const) {
    test(`${shell}: a failed decision is counted once and logged once, with its decision_id`, async () => {
      lines.length = 0
      records.length = 0
      const before = await errorsOf('PORTCULLIS_POLICY_PATH_NOT_FOUND')
      const r = await post(apps[shell].url, '/v1/data/authz/not_a_rule', '{"input":{}}')
      assert.equal(r.status, 404)
      assert.equal(r.body.portcullis_code, 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
      assert.equal(await errorsOf('PORTCULLIS_POLICY_PATH_NOT_FOUND'), before + 1)
      const logged = lines.filter((l) => l.obj.code === 'PORTCULLIS_POLICY_PATH_NOT_FOUND')
      assert.equal(logged.length, 1)
      assert.equal(logged[0]?.obj.decision_id, records[0]?.decision_id)
      assert.equal(typeof logged[0]?.obj.request_id, 'string')
    })

    test(`${shell}: a request refused before any decision is counted once and logged once`, async () => {
      lines.length = 0
      const before = await errorsOf('PORTCULLIS_INPUT_INVALID')
      const r = await post(apps[shell].url, '/v1/data/authz/allow', '{"input":')
      assert.equal(r.status, 400)
      assert.equal(await errorsOf('PORTCULLIS_INPUT_INVALID'), before + 1)
      assert.equal(lines.filter((l) => l.obj.code === 'PORTCULLIS_INPUT_INVALID').length, 1)
    })

    test(`${shell}: a decision the audit hook cannot record is a 503 PORTCULLIS_AUDIT_UNAVAILABLE, logged with its cause, never a decision`, async () => {
      lines.length = 0
      decisions.setAuditHook(() => { throw new TypeError('audit sink broke') })
      try {
        const before = await errorsOf('PORTCULLIS_AUDIT_UNAVAILABLE')
        const r = await post(apps[shell].url, '/v1/data/authz/allow', '{"input":{}}')
        assert.equal(r.status, 503)
        assert.equal(r.body.portcullis_code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
        assert.equal(Object.hasOwn(r.body, 'result'), false)
        assert.equal(await errorsOf('PORTCULLIS_AUDIT_UNAVAILABLE'), before + 1)
        // the failed decision once (its cause: the hook's exception); the hook failing again
        // while recording that failure is a second fault, logged as the audit's
        const logged = lines.filter((l) => l.level === 'error' && l.obj.component !== 'audit')
        assert.equal(logged.length, 1)
        assert.ok(logged[0]?.obj.err instanceof TypeError)
        assert.equal(typeof logged[0]?.obj.decision_id, 'string')
        assert.equal(lines.filter((l) => l.obj.component === 'audit').length, 1)
      } finally {
        decisions.setAuditHook((rec) => { records.push(rec) })
      }
    })
  }
})
