/**
 * OPA Data API (v1/server/server.go), so existing OPA clients work unchanged:
 *   POST /v1/data/{path}  {"input": ...}            -> {result?, decision_id, metrics?, provenance?, warning?}
 *   GET  /v1/data/{path}?input=<json>
 *   POST /v0/data/{path}  <raw input>               -> bare value, 404 undefined_document if undefined
 *   POST /                <raw input>               -> the default decision, bare value
 * An undefined decision is 200 without `result` on v1. Query: pretty, metrics, provenance,
 * strict-builtin-errors. Every failure is an OPA-shaped error; none is ever an allow.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Decision, DecisionService } from '../../decision/decide.js'
import { PortcullisError } from '../../errors.js'
import { credentialsOf } from '../plugins/credentials.js'
import { VERSION } from '../../version.js'

const flag = (v: string | undefined): boolean => v !== undefined && v !== 'false' && v !== '0'

interface DataQuery { input?: string, pretty?: string, metrics?: string, provenance?: string, 'strict-builtin-errors'?: string, explain?: string, instrument?: string }

const querySchema = {
  type: 'object',
  properties: {
    input: { type: 'string' },
    pretty: { type: 'string' },
    metrics: { type: 'string' },
    provenance: { type: 'string' },
    'strict-builtin-errors': { type: 'string' },
    explain: { type: 'string' },
    instrument: { type: 'string' },
  },
}

const v1Response = {
  200: {
    type: 'object',
    properties: {
      result: {},
      decision_id: { type: 'string' },
      metrics: { type: 'object', additionalProperties: { type: 'number' } },
      provenance: { type: 'object', additionalProperties: true },
      explanation: { type: 'array', items: { type: 'string' } },
      warning: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    },
  },
}

export const dataRoutes: FastifyPluginAsync<{ decisions: DecisionService, defaultDecision: string }> = async (app, { decisions, defaultDecision }) => {
  const decide = (request: FastifyRequest, path: string, input: unknown, strict?: boolean, explain?: boolean): Promise<Decision> =>
    decisions.decide({
      path,
      input,
      ...(explain === true ? { explain: true } : {}),
      // credentials are only gathered when an identity plugin will read them
      ...(decisions.identityEnabled ? { credentials: credentialsOf(request) } : {}),
      transport: 'http',
      ...(strict === true ? { strictBuiltinErrors: true } : {}),
      ...(request.socket.remoteAddress !== undefined ? { requestedBy: request.socket.remoteAddress } : {}),
      requestId: request.id,
    })

  const v1 = async (request: FastifyRequest<{ Querystring: DataQuery }>, reply: FastifyReply, path: string, input: unknown, hasInput: boolean): Promise<unknown> => {
    const q = request.query
    const d = await decide(request, path, input, flag(q['strict-builtin-errors']), q.explain !== undefined && q.explain !== 'off')
    const body: Record<string, unknown> = {}
    if (d.defined) body.result = d.result
    body.decision_id = d.decision_id
    if (flag(q.metrics)) {
      body.metrics = {
        timer_rego_query_eval_ns: d.metrics.timer_rego_query_eval_ns,
        timer_portcullis_identity_ns: d.metrics.timer_portcullis_identity_ns,
        timer_server_handler_ns: Math.round(reply.elapsedTime * 1e6),
        counter_portcullis_cache_hit: d.cached ? 1 : 0,
      }
    }
    if (flag(q.provenance)) body.provenance = { version: VERSION, bundles: d.bundles }
    // ?explain: the policy's trace() notes (OPA's explain=notes, as plain lines)
    if (d.explanation !== undefined) body.explanation = d.explanation
    if (!hasInput) body.warning = { code: 'api_usage_warning', message: "'input' key missing from the request" }
    if (flag(q.pretty)) return reply.type('application/json; charset=utf-8').send(JSON.stringify(body, null, 2) + '\n')
    return body
  }

  app.post<{ Params: { '*': string }, Querystring: DataQuery, Body: unknown }>('/v1/data/*', {
    schema: { querystring: querySchema, response: v1Response },
  }, async (request, reply) => {
    const body = request.body
    if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) {
      throw new PortcullisError('PORTCULLIS_INPUT_INVALID', 'request body must be a JSON object {"input": ...}', { body: 'type' })
    }
    const hasInput = body !== undefined && Object.hasOwn(body, 'input')
    return v1(request, reply, request.params['*'], hasInput ? (body as { input: unknown }).input : undefined, hasInput)
  })

  app.get<{ Params: { '*': string }, Querystring: DataQuery }>('/v1/data/*', {
    schema: { querystring: querySchema, response: v1Response },
  }, async (request, reply) => {
    const raw = request.query.input
    let input: unknown
    if (raw !== undefined) {
      try {
        input = JSON.parse(raw)
      } catch (err) {
        throw new PortcullisError('PORTCULLIS_INPUT_INVALID', `query parameter input is not valid JSON: ${(err as Error).message}`, { parameter: 'input' })
      }
    }
    return v1(request, reply, request.params['*'], input, raw !== undefined)
  })

  // The whole data document cannot be computed from compiled entrypoints.
  for (const method of ['GET', 'POST'] as const) {
    app.route({
      method,
      url: '/v1/data',
      schema: { querystring: querySchema },
      handler: async () => {
        throw new PortcullisError('PORTCULLIS_POLICY_PATH_NOT_FOUND', 'the whole data document is not served; ask for a path such as /v1/data/authz/allow', { path: '' })
      },
    })
  }

  const bare = async (request: FastifyRequest, reply: FastifyReply, path: string): Promise<unknown> => {
    const d = await decide(request, path, request.body)
    if (!d.defined) {
      throw new PortcullisError('PORTCULLIS_POLICY_UNDEFINED', `document missing: data.${d.path.replaceAll('/', '.')}`, { path: d.path })
    }
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(d.result))
  }

  // v0 and the default decision answer the bare value (any JSON), serialized as is.
  const bareSchema = { response: { 200: {}, 404: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, portcullis_code: { type: 'string' } } } } }
  app.post<{ Params: { '*': string } }>('/v0/data/*', { schema: bareSchema }, async (request, reply) => bare(request, reply, request.params['*']))
  app.post('/', { schema: bareSchema }, async (request, reply) => bare(request, reply, defaultDecision))
}
