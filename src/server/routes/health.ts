/**
 * Health: GET /health (OPA: 200 {}; with ?bundles, 500 until every bundle has activated once),
 * GET /health/live (the process answers), GET /health/ready (bundles active: safe to route to).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'

export const healthRoutes: FastifyPluginAsync<{ manager: BundleManager }> = async (app, { manager }) => {
  const ready = (): boolean => manager.ready() && manager.snapshot.bundles.size > 0
  app.get<{ Querystring: { bundles?: string, plugins?: string } }>('/health', {
    schema: { querystring: { type: 'object', properties: { bundles: { type: 'string' }, plugins: { type: 'string' } } } },
  }, async (request, reply) => {
    if ((request.query.bundles !== undefined || request.query.plugins !== undefined) && !ready()) {
      return reply.status(500).send({ error: 'not all configured bundles have been activated' })
    }
    return {}
  })
  app.get('/health/live', async () => ({}))
  app.get('/health/ready', async (_request, reply) => {
    if (!ready()) {
      return reply.status(503).send({ error: 'not ready', bundles: manager.status().map((s) => ({ name: s.name, state: s.state, last_error: s.last_error?.code })) })
    }
    return {}
  })
}
