/**
 * The fastify application: build() returns the app without listening (tests use inject();
 * listen lives in src/server/listen.ts). Routes are thin: translate, call decision/, reply.
 * Every route has request and response schemas.
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import compress from '@fastify/compress'
import type { BundleManager } from '../bundles/activate.js'
import type { DecisionService } from '../decision/decide.js'
import { PortcullisError } from '../errors.js'
import { DataApi, JSON_TYPE } from './data-api.js'
import { silentLogger, type Logger } from '../log.js'
import { withFastDataRoute } from './fast-data.js'
import { withClientCertificateGate, type ClientCertificateGate } from './tls.js'
import type { Metrics } from '../metrics/index.js'
import { watchConnectionErrors } from '../metrics/connections.js'
import { registerBodyHandling } from './plugins/body.js'
import { dataRoutes } from './routes/data.js'
import { batchRoutes } from './routes/batch.js'
import { healthRoutes } from './routes/health.js'
import { adminRoutes } from './routes/admin.js'
import { auditRoutes } from './routes/audit.js'
import { consoleRoutes } from './routes/console.js'
import type { PolicySnapshot } from '../policy/snapshot.js'
import type { JobRegistry } from '../console/jobs.js'
import { adminGuard } from './plugins/admin-authz.js'
import { routeCompilers } from './route-code.js'

export interface BuildOptions {
  decisions: DecisionService
  manager: BundleManager
  metrics?: Metrics
  /** Text of /metrics (a worker asks the primary for the whole group's view). */
  metricsText?: () => Promise<string>
  /** Trust-bundle status of the identity plugins, for /v1/status. */
  identityStatus?: () => unknown
  /** The SPIFFE Workload API client: its readiness gates /health/ready, its status is in /v1/status. */
  workloadApi?: { ready: () => boolean, status: () => unknown }
  /** Decision-log shipping status for /v1/status (src/audit/ship/). */
  decisionLogsStatus?: () => unknown
  /** Flush the decision cache (in a worker group: every worker's). */
  flushCache?: () => Promise<number>
  bodyLimit?: number
  maxJsonDepth?: number
  requestTimeoutMs?: number
  keepAliveTimeoutMs?: number
  defaultDecision?: string
  adminAuthzPath?: string
  /** admin.allowed_hosts: Host names besides this server's own (plugins/host-check.ts). */
  allowedHosts?: readonly string[]
  /** The host part of server.addr (a name counts as one of this server's own). */
  listenHost?: string
  /** Judges TLS client certificates before any route answers (TLS client_auth request / require). */
  clientCertificates?: ClientCertificateGate
  /** Answer plain `POST /v1/data/{path}` requests without the framework (fast-data.ts); default true. */
  fastDataRoute?: boolean
  /** HTTPS options (TLS listener); fastify creates an https server when present. */
  https?: import('node:https').ServerOptions
  /** Where request and decision failures are logged (pino in the runtime); silent when absent. */
  logger?: Logger
  /** The shared audit directory (audit.enabled), read by the /v1/audit/* endpoints: every stream, every worker's. */
  auditDir?: string
  /** The compliance console (/v1/console/*, /ui/; docs/console.md); absent: not served. */
  console?: {
    grantsPath: string
    checkpointKeyFile?: string
    /** audit.checkpoint.previous_public_key_files: after a key rotation, the keys of older checkpoints. */
    checkpointPreviousKeyFiles?: string[]
    loadCandidate?: (file: string) => Promise<PolicySnapshot>
    maxBundleBytes: number
    strictBuiltinErrors: boolean
    uiDir?: string
    jobs?: JobRegistry
    /** console.cache_max_bytes. */
    cacheMaxBytes?: number
  }
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
  const log = opts.logger ?? silentLogger
  const api = new DataApi({ decisions: opts.decisions, ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}), logger: log, bodyLimit, maxDepth })
  const app = Fastify({
    // Portcullis logs failures itself, once each (data-api.ts, decide.ts); fastify's per-request lines are off
    logger: false,
    bodyLimit,
    requestTimeout,
    keepAliveTimeout,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    // The route schemas are this code's own constants: checking them against JSON Schema's
    // meta-schema (Ajv compiles the meta-schema first, at every start) proves nothing a test
    // does not; requests are validated exactly as before.
    ajv: { customOptions: { validateSchema: false } },
    // Route schemas as the build generated them, where it did (route-code.ts); compiled here otherwise.
    // (fastify then treats the compiler as custom: it leaves a `headers` schema's key case alone — no route has one.)
    schemaController: { compilersFactory: routeCompilers(process.env.PORTCULLIS_WRITE_ROUTE_CODE !== undefined ? { record: process.env.PORTCULLIS_WRITE_ROUTE_CODE } : {}) },
    return503OnClosing: true,
    // a URL the router cannot decode is answered like every other failure (the Data API adapter
    // refuses the same paths with the same code on the framework-free route)
    frameworkErrors: (err: Error & { code?: string }, request: { id: string }, reply: { status: (n: number) => { type: (t: string) => { send: (b: string) => void } } }) => {
      const error = err.code === 'FST_ERR_BAD_URL' ? new PortcullisError('PORTCULLIS_PATH_INVALID', 'the request URL is not validly percent-encoded', {}) : err
      // audited as a refused decision request (when it is one) before the answer; an answer
      // that cannot be sent (the client is gone) is logged, never an unhandled rejection
      api.refuse(error, (request as { raw?: IncomingMessage }).raw, request.id, ({ status, text }) => { reply.status(status).type(JSON_TYPE).send(text) })
        .catch((e: unknown) => { log.warn({ err: e, request_id: request.id }, 'the answer to a refused request could not be sent') })
    },
    genReqId,
    // (https is also given so fastify reports https:// addresses; the server itself comes from serverFactory)
    ...(opts.https !== undefined ? { https: opts.https } : {}),
    // Our own server so Node checks request timeouts often enough to matter (its default
    // check interval is 30 s, far longer than a decision request may take).
    serverFactory: (fastifyHandler) => {
      const routes = opts.fastDataRoute === false
        ? fastifyHandler
        : withFastDataRoute(fastifyHandler, {
          api,
          ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
          bodyLimit,
          isClosing: () => closing,
          genReqId,
        })
      const gate = opts.clientCertificates
      const handler = gate === undefined
        ? routes
        : withClientCertificateGate(routes, gate, (res, err) => {
          // counted and logged once, as every other failure
          const { status, text } = api.failure(err)
          res.writeHead(status, { 'content-type': JSON_TYPE, 'connection': 'close' })
          res.end(text)
        })
      const serverOpts = {
        requestTimeout,
        keepAliveTimeout,
        headersTimeout: Math.min(requestTimeout === 0 ? 60_000 : requestTimeout, 60_000),
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor((requestTimeout === 0 ? 30_000 : requestTimeout) / 4))),
      }
      const server = opts.https !== undefined ? createHttpsServer({ ...opts.https, ...serverOpts }, handler) : createHttpServer(serverOpts, handler)
      // Every header is read, however many: Node's default kept the first 1,000 and dropped the
      // rest without a word (a credential or Content-Encoding after them vanished); the header
      // size limit (16 KiB) bounds them all.
      server.maxHeadersCount = 0
      // counted and logged before fastify's own clientError listener answers the request
      watchConnectionErrors(server, { listener: 'data-api', metrics: opts.metrics, log, answer: false })
      return server
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

  app.setErrorHandler(async (err, request, reply) => {
    // a decision request that failed before its decision (bad body, 413, batch limit, bad path)
    // is audited as a refusal first, as on the framework-free route and in the Envoy adapter;
    // OPA error shape: {code, message, errors?}; our stable code in portcullis_code
    await api.refuse(err, request.raw, request.id, ({ status, text }) => { reply.status(status).type(JSON_TYPE).send(text) })
    return reply
  })

  app.setNotFoundHandler((request, reply) => {
    return reply.status(404).send({ code: 'resource_not_found', message: `${request.method} ${request.url} is not an endpoint`, portcullis_code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
  })

  // the Host names the admin endpoints (on loopback) and the console (always) answer for
  const host = { allowedHosts: opts.allowedHosts ?? [], ...(opts.listenHost !== undefined ? { listenHost: opts.listenHost } : {}), https: opts.https !== undefined }
  const guard = adminGuard({ manager: opts.manager, decisions: opts.decisions, authzPath: opts.adminAuthzPath ?? 'system/authz/allow', host })
  // Single decisions are small and hot: no response-compression hook on their path.
  void app.register(dataRoutes, { api, defaultDecision: opts.defaultDecision ?? 'system/main' })
  void app.register(healthRoutes, { manager: opts.manager, ...(opts.workloadApi !== undefined ? { workloadApi: opts.workloadApi } : {}) })
  // Batch, status and metrics responses can be large: gzip them for clients that accept it
  // (encapsulated, so the hook only runs for these routes).
  void app.register(async (large) => {
    // request bodies are inflated by registerBodyHandling for every route; compress only responses
    large.addHook('onRoute', (route) => { (route as { decompress?: boolean }).decompress = false })
    await large.register(compress, { global: true, threshold: 1024, encodings: ['gzip'] })
    await large.register(batchRoutes, { api })
    await large.register(adminRoutes, {
      manager: opts.manager,
      decisions: opts.decisions,
      guard,
      metricsText: opts.metricsText ?? (async () => (await opts.metrics?.registry.metrics()) ?? ''),
      metricsContentType: opts.metrics?.registry.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
      identityStatus: opts.identityStatus,
      workloadApiStatus: opts.workloadApi === undefined ? undefined : () => opts.workloadApi?.status(),
      decisionLogsStatus: opts.decisionLogsStatus,
      flushCache: opts.flushCache ?? (async () => opts.decisions.flushCache()),
    })
    await large.register(auditRoutes, { guard, auditDir: opts.auditDir })
    const c = opts.console
    if (c !== undefined) {
      await large.register(consoleRoutes, {
        guard,
        auditDir: opts.auditDir,
        checkpointKeyFile: c.checkpointKeyFile,
        checkpointPreviousKeyFiles: c.checkpointPreviousKeyFiles ?? [],
        grantsPath: c.grantsPath,
        snapshot: () => opts.manager.snapshot,
        loadCandidate: c.loadCandidate,
        maxBundleBytes: c.maxBundleBytes,
        strictBuiltinErrors: c.strictBuiltinErrors,
        ...(c.uiDir !== undefined ? { uiDir: c.uiDir } : {}),
        ...(c.jobs !== undefined ? { jobs: c.jobs } : {}),
        host,
        ...(c.cacheMaxBytes !== undefined ? { cacheMaxBytes: c.cacheMaxBytes } : {}),
      })
    }
  })
  return app
}
