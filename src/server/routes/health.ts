/**
 * Health: GET /health (OPA: 200 {}; with ?bundles, 500 until every bundle has activated once),
 * GET /health/live (the process answers), GET /health/ready (bundles active: safe to route to).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'

const empty = { type: 'object', additionalProperties: false, properties: {} }
const failure = {
  type: 'object',
  properties: {
    error: { type: 'string' },
    bundles: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' }, last_error: { type: 'string' } } } },
  },
}

export const healthRoutes: FastifyPluginAsync<{ manager: BundleManager }> = async (app, { manager }) => {
  const ready = (): boolean => manager.ready() && manager.snapshot.bundles.size > 0
  app.get<{ Querystring: { bundles?: string, plugins?: string } }>('/health', {
    schema: { querystring: { type: 'object', properties: { bundles: { type: 'string' }, plugins: { type: 'string' } } }, response: { 200: empty, 500: failure } },
  }, async (request, reply) => {
    if ((request.query.bundles !== undefined || request.query.plugins !== undefined) && !ready()) {
      return reply.status(500).send({ error: 'not all configured bundles have been activated' })
    }
    return {}
  })
  app.get('/health/live', { schema: { response: { 200: empty } } }, async () => ({}))
  app.get('/health/ready', { schema: { response: { 200: empty, 503: failure } } }, async (_request, reply) => {
    if (!ready()) {
      return reply.status(503).send({ error: 'not ready', bundles: manager.status().map((s) => ({ name: s.name, state: s.state, last_error: s.last_error?.code })) })
    }
    return {}
  })
}
