/** GET /health (OPA): 200 {} when serving; with ?bundles, 500 until every bundle activated once. */
import type { FastifyPluginAsync } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'

export const healthRoutes: FastifyPluginAsync<{ manager: BundleManager }> = async (app, { manager }) => {
  app.get<{ Querystring: { bundles?: string } }>('/health', async (request, reply) => {
    if (request.query.bundles !== undefined && !manager.ready()) {
      return reply.status(500).send({ error: 'not all bundles have been activated' })
    }
    return {}
  })
}
