/**
 * Operational endpoints: /metrics (Prometheus, open, as in OPA), and the protected
 * GET /v1/status and POST /v1/cache/flush (authorized by the system authz policy).
 */
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { PortcullisError } from '../../errors.js'
import type { BundleManager } from '../../bundles/activate.js'
import type { DecisionService } from '../../decision/decide.js'

/**
 * CSRF defence for the protected POST that changes state (the cache flush): a browser request
 * from another site is refused. Browsers say where a request comes from (`Sec-Fetch-Site`, and
 * `Origin` on every POST); tools (curl, an operator's script) send neither and are not affected.
 * Without it, any page an operator opened could flush the cache of a loopback server, which the
 * system policy's loopback rule admits.
 */
async function notCrossSite (request: FastifyRequest): Promise<void> {
  const site = request.headers['sec-fetch-site']
  const origin = request.headers.origin
  let foreign = site === 'cross-site' || site === 'same-site'
  if (!foreign && typeof origin === 'string') {
    // both read by URL, so a default port written or left out compares equal
    try {
      const o = new URL(origin)
      foreign = o.host !== new URL(`${o.protocol}//${String(request.headers.host ?? '')}`).host
    } catch { foreign = true }
  }
  if (foreign) throw new PortcullisError('PORTCULLIS_CONSOLE_CROSS_SITE', `${request.method} ${request.url}: a browser request from another site (${typeof origin === 'string' ? origin : String(site)}) is refused`)
}

export interface AdminRouteOptions {
  manager: BundleManager
  decisions: DecisionService
  guard: preHandlerAsyncHookHandler
  metricsText: () => Promise<string>
  metricsContentType: string
  identityStatus: (() => unknown) | undefined
  workloadApiStatus: (() => unknown) | undefined
  decisionLogsStatus?: (() => unknown) | undefined
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
        workload_api: { type: 'object', additionalProperties: true },
        cache: { type: 'object', additionalProperties: true },
        audit: { type: 'object', additionalProperties: true },
        decision_logs: { anyOf: [{ type: 'object', additionalProperties: true }, { type: 'null' }] },
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
      workload_api: opts.workloadApiStatus?.() ?? { enabled: false },
      cache: opts.decisions.cacheStats() ?? { enabled: false },
      audit: { state: opts.decisions.auditEnabled ? 'enabled' : 'disabled' },
      decision_logs: opts.decisionLogsStatus?.() ?? null,
      process: { pid: process.pid, uptime_s: Math.round(process.uptime()) },
    },
  }))

  app.post('/v1/cache/flush', {
    preHandler: [notCrossSite, opts.guard],
    schema: { response: { 200: { type: 'object', properties: { result: { type: 'object', properties: { flushed: { type: 'integer' } } } } } } },
  }, async () => ({ result: { flushed: await opts.flushCache() } }))
}
