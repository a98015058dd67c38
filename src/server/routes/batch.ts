/**
 * Batch decisions, as Enterprise OPA's batch API (and @styra/opa's evaluateBatch) expect:
 *   POST /v1/batch/data/{path}  {"inputs": {"id": input, ...}, "common_input": {...}}
 * common_input is merged under each input (the input's own keys win, objects merged deeply).
 * 200 when every decision succeeded, 207 when some failed (each response then carries
 * http_status_code), 500 when all failed.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsync } from 'fastify'
import { isJsonObject } from '../../canonical-json.js'
import { PortcullisError } from '../../errors.js'
import type { DataApi } from '../data-api.js'
import { ResultSlots } from '../../decision/result-json.js'
import { setDataMember as put } from '../../policy/bundle.js'

const MAX_BATCH = 10_000
/**
 * Bound on the input a batch makes its items decide in all: `common_input` is merged under every
 * item, so 3,000 items under a 500 KB common input held a worker for seconds and their echoed
 * results overflowed the answer (a string past V8's limit: a 500). Refused with 413 beforehand.
 */
const MAX_BATCH_INPUT_BYTES = 64 * 1024 * 1024

/** An item's input under common_input, objects merged member by member (an exact number is a number, never merged). */
export function mergeCommon (common: unknown, input: unknown): unknown {
  if (!isJsonObject(common) || !isJsonObject(input)) return input === undefined ? common : input
  const out: Record<string, unknown> = { ...common }
  for (const [k, v] of Object.entries(input)) put(out, k, Object.hasOwn(common, k) ? mergeCommon(common[k], v) : v)
  return out
}

export const batchRoutes: FastifyPluginAsync<{ api: DataApi }> = async (app, { api }) => {
  app.post<{ Body: { inputs?: Record<string, unknown>, common_input?: unknown } }>('/v1/batch/data/*', {
    schema: {
      body: {
        type: 'object',
        required: ['inputs'],
        properties: { inputs: { type: 'object' }, common_input: {} },
      },
      response: {
        // one schema for 200, 207 and 500: per-input results or OPA-shaped errors
        '2xx': { type: 'object', properties: { batch_decision_id: { type: 'string' }, responses: { type: 'object', additionalProperties: { type: 'object', additionalProperties: true } } } },
        500: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, portcullis_code: { type: 'string' }, batch_decision_id: { type: 'string' }, responses: { type: 'object', additionalProperties: { type: 'object', additionalProperties: true } } } },
      },
    },
  }, async (request, reply) => {
    const { inputs, common_input: common } = request.body
    const ids = Object.keys(inputs ?? {})
    if (ids.length > MAX_BATCH) throw new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `a batch holds at most ${MAX_BATCH} inputs`, { limit: MAX_BATCH })
    if (common !== undefined && ids.length > 1) {
      const commonBytes = JSON.stringify(common)?.length ?? 0
      if (commonBytes * ids.length > MAX_BATCH_INPUT_BYTES) {
        throw new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `common_input (${commonBytes} bytes) merged under ${ids.length} inputs exceeds ${MAX_BATCH_INPUT_BYTES} bytes in all; send smaller batches`, { limit: MAX_BATCH_INPUT_BYTES })
      }
    }
    const path = api.pathOf(request.raw.url, '/v1/batch/data')
    if (path === '') throw new PortcullisError('PORTCULLIS_POLICY_PATH_NOT_FOUND', 'the whole data document is not served; ask for a path such as /v1/batch/data/authz/allow', { path: '' })
    const responses: Record<string, Record<string, unknown>> = {}
    let failed = 0
    const slots = new ResultSlots()
    // known before the items are decided, so each item's audit event names its batch
    const batch_decision_id = randomUUID()
    for (const id of ids) {
      try {
        const d = await api.decisions.decide(api.request(request.raw, path, mergeCommon(common, (inputs as Record<string, unknown>)[id]), `${request.id}/${id}`, { transport: 'batch', batchDecisionId: batch_decision_id }))
        const r: Record<string, unknown> = { decision_id: d.decision_id }
        if (d.defined) r.result = slots.valueOf(d)
        // a deny's reasons, with policy.return_reasons (docs/policies.md "Deny reasons")
        if (d.returnReasons === true && d.reasons !== undefined) r.reasons = d.reasons
        put(responses, id, r)
      } catch (err) {
        // counted and logged once, as any failed Data API request is (the adapter's failure())
        const e = api.failure(err, `${request.id}/${id}`).error
        failed++
        put(responses, id, { code: e.opaCode, message: e.message, portcullis_code: e.code })
      }
    }
    // written here, not by fastify's serializer, so exact results keep their digits
    reply.type('application/json; charset=utf-8')
    if (failed === 0) return reply.send(slots.stringify({ batch_decision_id, responses }))
    for (const r of Object.values(responses)) r.http_status_code = r.code === undefined ? '200' : '500'
    if (failed === ids.length) return reply.status(500).send(slots.stringify({ code: 'internal_error', message: 'every decision in the batch failed', batch_decision_id, responses }))
    return reply.status(207).send(slots.stringify({ batch_decision_id, responses }))
  })
}
