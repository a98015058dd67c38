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

const statusSchema = {
  type: 'object',
  properties: {
    result: {
      type: 'object',
      properties: {
        bundles: { type: 'array', items: { type: 'object', additionalProperties: true } },
        snapshot_generation: { type: 'integer' },
        trust_bundles: { anyOf: [{ type: 'object', additionalProperties: true }, { type: 'null' }] },
        identity: { type: 'object', properties: { enabled: { type: 'boolean' } } },
        cache: { type: 'object', additionalProperties: true },
        audit: { type: 'object', additionalProperties: true },
        process: { type: 'object', properties: { pid: { type: 'integer' }, uptime_s: { type: 'integer' } } },
      },
    },
  },
}

export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (app, opts) => {
  app.get('/metrics', { schema: { response: { 200: { type: 'string' } } } }, async (_request, reply) => {
    return reply.type(opts.metricsContentType).send(await opts.metricsText())
  })

  app.get('/v1/status', { preHandler: opts.guard, schema: { response: { 200: statusSchema } } }, async () => ({
    result: {
      bundles: opts.manager.status(),
      snapshot_generation: opts.manager.snapshot.generation,
      trust_bundles: opts.identityStatus?.() ?? null,
      identity: { enabled: opts.decisions.identityEnabled },
      cache: opts.decisions.cacheStats() ?? { enabled: false },
      audit: { state: opts.decisions.auditEnabled ? 'enabled' : 'disabled' },
      process: { pid: process.pid, uptime_s: Math.round(process.uptime()) },
    },
  }))

  app.post('/v1/cache/flush', {
    preHandler: opts.guard,
    schema: { response: { 200: { type: 'object', properties: { result: { type: 'object', properties: { flushed: { type: 'integer' } } } } } } },
  }, async () => ({ result: { flushed: await opts.flushCache() } }))
}
