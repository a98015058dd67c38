/**
 * OPA Data API (v1/server/server.go), so existing OPA clients work unchanged:
 *   POST /v1/data/{path}  {"input": ...}            -> {result?, decision_id, metrics?, provenance?, warning?}
 *   GET  /v1/data/{path}?input=<json>
 *   POST /v0/data/{path}  <raw input>               -> bare value, 404 undefined_document if undefined
 *   POST /                <raw input>               -> the default decision, bare value
 * An undefined decision is 200 without `result` on v1. Query: pretty, metrics, provenance,
 * strict-builtin-errors, explain. Everything between the request and the decision is the Data
 * API adapter's (data-api.ts), shared with the framework-free route; these handlers only read
 * fastify's request and write its reply. Every failure is an OPA-shaped error (the app's error
 * handler, through the same adapter); none is ever an allow.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { PortcullisError } from '../../errors.js'
import { explainMode, JSON_TYPE, lastValue, queryFlag, type DataApi, type QueryValue, type V1Options } from '../data-api.js'

interface DataQuery { input?: QueryValue, pretty?: QueryValue, metrics?: QueryValue, provenance?: QueryValue, 'strict-builtin-errors'?: QueryValue, explain?: QueryValue, instrument?: QueryValue }

// A parameter may be repeated, as OPA (Go's url.Values) allows: `?pretty=false&pretty=true`.
const param = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] }
const querySchema = {
  type: 'object',
  properties: {
    input: param,
    pretty: param,
    metrics: param,
    provenance: param,
    'strict-builtin-errors': param,
    explain: param,
    instrument: param,
  },
}

// Documents the answer; the adapter writes the text itself (one serializer for both shells).
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

const v1Options = (q: DataQuery): V1Options => ({
  strict: queryFlag(q['strict-builtin-errors']),
  explain: explainMode(q.explain),
  // OPA answers ?instrument with the metrics (instrumentation's own timers are Rego evaluator ones)
  metrics: queryFlag(q.metrics) || queryFlag(q.instrument),
  provenance: queryFlag(q.provenance),
  pretty: queryFlag(q.pretty),
})

/** performance.now() at the request's start. */
const startOf = (reply: FastifyReply): number => performance.now() - reply.elapsedTime

export const dataRoutes: FastifyPluginAsync<{ api: DataApi, defaultDecision: string }> = async (app, { api, defaultDecision }) => {
  const send = (reply: FastifyReply, text: string): FastifyReply => reply.type(JSON_TYPE).send(text)
  // The path is checked before the body is read, as on the framework-free route (and as the
  // router itself refuses an undecodable URL): a request wrong in both gets the same answer.
  const pathFirst = (prefix: string) => (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    try {
      api.pathOf(request.raw.url, prefix)
      done()
    } catch (err) {
      done(err as Error)
    }
  }

  app.post<{ Querystring: DataQuery, Body: unknown }>('/v1/data/*', {
    schema: { querystring: querySchema, response: v1Response },
    onRequest: pathFirst('/v1/data'),
  }, async (request, reply) => {
    const path = api.pathOf(request.raw.url, '/v1/data')
    return send(reply, await api.v1(request.raw, path, api.v1Body(request.body), request.id, startOf(reply), v1Options(request.query)))
  })

  app.get<{ Querystring: DataQuery }>('/v1/data/*', {
    // no implicit HEAD: it would make (and audit) a decision whose answer nobody reads; 405 as OPA
    exposeHeadRoute: false,
    schema: { querystring: querySchema, response: v1Response },
    onRequest: pathFirst('/v1/data'),
  }, async (request, reply) => {
    const path = api.pathOf(request.raw.url, '/v1/data')
    // the last ?input= (OPA's readInputGetV1); OPA's GET never adds the missing-input warning
    const raw = lastValue(request.query.input)
    const input = raw === undefined ? undefined : api.queryInput(raw)
    return send(reply, await api.v1(request.raw, path, { input, hasInput: true }, request.id, startOf(reply), v1Options(request.query)))
  })

  // The whole data document (`/v1/data`, `/v1/data/`) cannot be computed from compiled entrypoints.
  for (const method of ['GET', 'POST'] as const) {
    app.route({
      method,
      url: '/v1/data',
      exposeHeadRoute: false,
      schema: { querystring: querySchema },
      // the body is checked first, as for every other v1 path
      handler: async (request: FastifyRequest, reply: FastifyReply) => send(reply, await api.v1(request.raw, '', api.v1Body(request.body), request.id, startOf(reply))),
    })
  }

  // Methods OPA's router knows on these paths but Portcullis does not serve: OPA's write API
  // (PUT/PATCH/DELETE /v1/data — data comes only from bundles), HEAD, OPTIONS and GET on v0 are 405 with the
  // methods that are served, as OPA's router answers them (no decision, so not audited).
  const notAllowed = (allow: string) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { status, text } = api.failure(new PortcullisError('PORTCULLIS_METHOD_NOT_ALLOWED', `${request.method} is not served on ${request.url.split('?')[0] ?? ''} (${allow}); Portcullis has no write API: data and policies come from bundles`, { method: request.method }), request.id)
    return reply.status(status).header('allow', allow).type(JSON_TYPE).send(text)
  }
  for (const url of ['/v1/data', '/v1/data/*']) app.route({ method: ['HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url, handler: notAllowed('GET, POST') })
  for (const url of ['/v0/data', '/v0/data/*']) app.route({ method: ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url, handler: notAllowed('POST') })

  // v0 and the default decision answer the bare value (any JSON), serialized as is.
  const bareSchema = { querystring: { type: 'object', properties: { pretty: param } }, response: { 200: {}, 404: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, portcullis_code: { type: 'string' } } } } }
  app.post<{ Querystring: DataQuery }>('/v0/data/*', { schema: bareSchema, onRequest: pathFirst('/v0/data') }, async (request, reply) =>
    send(reply, await api.bare(request.raw, api.pathOf(request.raw.url, '/v0/data'), request.body, request.id, { pretty: queryFlag(request.query.pretty) })))
  app.post<{ Querystring: DataQuery }>('/', { schema: bareSchema }, async (request, reply) =>
    send(reply, await api.bare(request.raw, defaultDecision, request.body, request.id, { pretty: queryFlag(request.query.pretty) })))
}
