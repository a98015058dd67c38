/**
 * The fastify application: build() returns the app without listening (tests use inject();
 * listen lives in src/server/listen.ts). Routes are thin: translate, call decision/, reply.
 * Every route has request and response schemas.
 */
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import compress from '@fastify/compress'
import type { BundleManager } from '../bundles/activate.js'
import type { DecisionService } from '../decision/decide.js'
import { errorResponse } from './error-response.js'
import { withFastDataRoute } from './fast-data.js'
import { withClientCertificateGate, type ClientCertificateGate } from './tls.js'
import type { Metrics } from '../metrics/index.js'
import { registerBodyHandling } from './plugins/body.js'
import { dataRoutes } from './routes/data.js'
import { batchRoutes } from './routes/batch.js'
import { healthRoutes } from './routes/health.js'
import { adminRoutes } from './routes/admin.js'
import { adminGuard } from './plugins/admin-authz.js'

export interface BuildOptions {
  decisions: DecisionService
  manager: BundleManager
  metrics?: Metrics
  /** Text of /metrics (a worker asks the primary for the whole group's view). */
  metricsText?: () => Promise<string>
  /** Trust-bundle status of the identity plugins, for /v1/status. */
  identityStatus?: () => unknown
  /** Flush the decision cache (in a worker group: every worker's). */
  flushCache?: () => Promise<number>
  bodyLimit?: number
  maxJsonDepth?: number
  requestTimeoutMs?: number
  keepAliveTimeoutMs?: number
  defaultDecision?: string
  adminAuthzPath?: string
  /** Judges TLS client certificates before any route answers (TLS client_auth request / require). */
  clientCertificates?: ClientCertificateGate
  /** Answer plain `POST /v1/data/{path}` requests without the framework (fast-data.ts); default true. */
  fastDataRoute?: boolean
  /** HTTPS options (TLS listener); fastify creates an https server when present. */
  https?: import('node:https').ServerOptions
  logger?: FastifyServerOptions['logger']
}

export function build (opts: BuildOptions): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024
  const maxDepth = opts.maxJsonDepth ?? 64
  const requestTimeout = opts.requestTimeoutMs ?? 10_000
  let closing = false
  // one request-id sequence for fastify and the framework-free decision route
  let requestSeq = 0
  const genReqId = (): string => `req-${(requestSeq++).toString(36)}`
  const keepAliveTimeout = opts.keepAliveTimeoutMs ?? 72_000
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit,
    requestTimeout,
    keepAliveTimeout,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    return503OnClosing: true,
    genReqId,
    // (https is also given so fastify reports https:// addresses; the server itself comes from serverFactory)
    ...(opts.https !== undefined ? { https: opts.https } : {}),
    // Our own server so Node checks request timeouts often enough to matter (its default
    // check interval is 30 s, far longer than a decision request may take).
    serverFactory: (fastifyHandler) => {
      const routes = opts.fastDataRoute === false
        ? fastifyHandler
        : withFastDataRoute(fastifyHandler, {
          decisions: opts.decisions,
          ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
          bodyLimit,
          maxDepth,
          requireClientCertificate: opts.clientCertificates?.required === true,
          isClosing: () => closing,
          genReqId,
        })
      const gate = opts.clientCertificates
      const handler = gate === undefined
        ? routes
        : withClientCertificateGate(routes, gate, (res, err) => {
          const { error, body } = errorResponse(err, bodyLimit)
          opts.metrics?.requestErrors.inc({ code: error.code })
          res.writeHead(error.status, { 'content-type': 'application/json; charset=utf-8', 'connection': 'close' })
          res.end(JSON.stringify(body))
        })
      const serverOpts = {
        requestTimeout,
        keepAliveTimeout,
        headersTimeout: Math.min(requestTimeout === 0 ? 60_000 : requestTimeout, 60_000),
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor((requestTimeout === 0 ? 30_000 : requestTimeout) / 4))),
      }
      return opts.https !== undefined ? createHttpsServer({ ...opts.https, ...serverOpts }, handler) : createHttpServer(serverOpts, handler)
    },
  } as FastifyServerOptions) as unknown as FastifyInstance
  const metrics = opts.metrics

  app.addHook('preClose', (done) => { closing = true; done() })
  registerBodyHandling(app, { maxDepth })
  if (metrics !== undefined) {
    app.addHook('onResponse', (request, reply, done) => {
      const status = reply.statusCode
      const outcome = status < 400 ? 'ok' : status < 500 ? 'client_error' : 'server_error'
      metrics.httpDuration.observe({ route: request.routeOptions.url ?? 'unmatched', method: request.method, outcome }, reply.elapsedTime / 1000)
      done()
    })
  }

  app.setErrorHandler((err, request, reply) => {
    // OPA error shape: {code, message, errors?}; our stable code in portcullis_code.
    const { error, body } = errorResponse(err, bodyLimit, (e) => request.log.error({ err: e }, 'unhandled error'))
    metrics?.requestErrors.inc({ code: error.code })
    return reply.status(error.status).send(body)
  })

  app.setNotFoundHandler((request, reply) => {
    return reply.status(404).send({ code: 'resource_not_found', message: `${request.method} ${request.url} is not an endpoint`, portcullis_code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
  })

  const guard = adminGuard({ manager: opts.manager, decisions: opts.decisions, authzPath: opts.adminAuthzPath ?? 'system/authz/allow' })
  // Single decisions are small and hot: no response-compression hook on their path.
  void app.register(dataRoutes, { decisions: opts.decisions, defaultDecision: opts.defaultDecision ?? 'system/main' })
  void app.register(healthRoutes, { manager: opts.manager })
  // Batch, status and metrics responses can be large: gzip them for clients that accept it
  // (encapsulated, so the hook only runs for these routes).
  void app.register(async (large) => {
    // request bodies are inflated by registerBodyHandling for every route; compress only responses
    large.addHook('onRoute', (route) => { (route as { decompress?: boolean }).decompress = false })
    await large.register(compress, { global: true, threshold: 1024, encodings: ['gzip'] })
    await large.register(batchRoutes, { decisions: opts.decisions })
    await large.register(adminRoutes, {
      manager: opts.manager,
      decisions: opts.decisions,
      guard,
      metricsText: opts.metricsText ?? (async () => (await opts.metrics?.registry.metrics()) ?? ''),
      metricsContentType: opts.metrics?.registry.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
      identityStatus: opts.identityStatus,
      flushCache: opts.flushCache ?? (async () => opts.decisions.flushCache()),
    })
  })
  return app
}
