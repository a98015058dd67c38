/**
 * Health: GET /health (OPA: 200 {}; with ?bundles, 500 until every bundle has activated once;
 * with ?plugins, also until the Workload API has delivered), GET /health/live (the process
 * answers), GET /health/ready (bundles active and, when configured, the Workload API's first
 * bundles / SVID received: safe to route to).
 */
import type { FastifyPluginAsync } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'

const empty = { type: 'object', additionalProperties: false, properties: {} }
const failure = {
  type: 'object',
  properties: {
    error: { type: 'string' },
    bundles: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, state: { type: 'string' }, last_error: { type: 'string' } } } },
    plugins: { type: 'object', additionalProperties: true },
  },
}

export const healthRoutes: FastifyPluginAsync<{ manager: BundleManager, workloadApi?: { ready: () => boolean, status: () => unknown } }> = async (app, { manager, workloadApi }) => {
  const bundlesReady = (): boolean => manager.ready() && manager.snapshot.bundles.size > 0
  const ready = (): boolean => bundlesReady() && (workloadApi?.ready() ?? true)
  const plugins = (): { plugins?: Record<string, unknown> } => workloadApi === undefined ? {} : { plugins: { workload_api: workloadApi.status() } }
  app.get<{ Querystring: { bundles?: string, plugins?: string } }>('/health', {
    schema: { querystring: { type: 'object', properties: { bundles: { type: 'string' }, plugins: { type: 'string' } } }, response: { 200: empty, 500: failure } },
  }, async (request, reply) => {
    if ((request.query.bundles !== undefined || request.query.plugins !== undefined) && !bundlesReady()) {
      return reply.status(500).send({ error: 'not all configured bundles have been activated' })
    }
    if (request.query.plugins !== undefined && workloadApi !== undefined && !workloadApi.ready()) {
      return reply.status(500).send({ error: 'the Workload API has not delivered yet', ...plugins() })
    }
    return {}
  })
  app.get('/health/live', { schema: { response: { 200: empty } } }, async () => ({}))
  app.get('/health/ready', { schema: { response: { 200: empty, 503: failure } } }, async (_request, reply) => {
    if (!ready()) {
      return reply.status(503).send({ error: 'not ready', bundles: manager.status().map((s) => ({ name: s.name, state: s.state, last_error: s.last_error?.code })), ...plugins() })
    }
    return {}
  })
}
