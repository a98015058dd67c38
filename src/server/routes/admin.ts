/**
 * Operational endpoints: /metrics (Prometheus, open, as in OPA), and the protected
 * GET /v1/status and POST /v1/cache/flush (authorized by the system authz policy).
 */
import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'
import type { DecisionService } from '../../decision/decide.js'

export interface AdminRouteOptions {
  manager: BundleManager
  decisions: DecisionService
  guard: preHandlerAsyncHookHandler
  metricsText: () => Promise<string>
  metricsContentType: string
  identityStatus: (() => unknown) | undefined
  flushCache: () => Promise<number>
}

export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (app, opts) => {
  app.get('/metrics', async (_request, reply) => {
    return reply.type(opts.metricsContentType).send(await opts.metricsText())
  })

  app.get('/v1/status', { preHandler: opts.guard }, async () => ({
    result: {
      bundles: opts.manager.status(),
      snapshot_generation: opts.manager.snapshot.generation,
      trust_bundles: opts.identityStatus?.() ?? null,
      identity: { enabled: opts.decisions.identityEnabled },
      cache: opts.decisions.cacheStats() ?? { enabled: false },
      audit: { state: 'disabled' },
      process: { pid: process.pid, uptime_s: Math.round(process.uptime()) },
    },
  }))

  app.post('/v1/cache/flush', { preHandler: opts.guard }, async () => ({ result: { flushed: await opts.flushCache() } }))
}
