/**
 * Assembles one Portcullis process from a validated configuration: metrics, bundle manager and
 * watcher, identity verifier, decision cache, decision pipeline, HTTP(S) app. `start()`
 * listens; `stop()` stops accepting, lets in-flight requests finish, closes watchers. Each part
 * registers its stop on one list (stop-list.ts) that unwinds a failed start and is stop().
 */
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger as PinoLogger } from 'pino'
import { BundleManager } from '../bundles/activate.js'
import { watchBundles, type BundleWatcher, loadBundlesDir } from '../bundles/watch.js'
import type { BundleService } from '../bundles/service/index.js'
import { DecisionCache } from '../cache/decision-cache.js'
import type { ResolvedConfig } from '../config/load.js'
import { DecisionService } from '../decision/decide.js'
import type { AuditTrail } from '../audit/trail.js'
import { auditStream } from '../audit/stream.js'
import type { Shipper } from '../audit/ship/index.js'
import { shippingTarget, shippingWarnings } from '../config/decision-logs.js'
import type { IdentityVerifier } from '../identity/index.js'
import { Metrics } from '../metrics/index.js'
import type { JobRegistry } from '../console/jobs.js'
import { parseAddr } from './listen.js'
import { configureBuiltinsFrom, consoleEnabled, consoleOptions, engineOptionsFrom, listenHostOf, remoteBundleOptionsFrom, verification } from './runtime-options.js'
import { clientCertificateGate, httpsOptions, watchServerCertificate, type ClientCertificateGate } from './tls.js'
import { feedCertificateProvider, serveDataApiWithSvid } from './serving-svid.js'
import { StopList } from './stop-list.js'
import type { SvidCertificateProvider, WorkloadApi, ServingSvid } from '../identity/workload-api/index.js'

export interface RuntimeHooks {
  /** /metrics text (a worker asks the primary for the group's aggregate). */
  metricsText?: () => Promise<string>
  /** Flush every process's decision cache. */
  flushCache?: () => Promise<number>
  /** Console job state (a worker asks the primary, so any worker answers for a job). */
  consoleJobs?: JobRegistry
}

/** What a listener beside the Data API (Envoy ext_authz, src/envoy/) is built from. */
export interface RuntimeParts {
  config: Readonly<ResolvedConfig>
  decisions: DecisionService
  metrics: Metrics
  logger: PinoLogger
  /** With workload_api.serving_svid: the serving X.509-SVID as a grpc-js certificate provider (rotates in place). */
  servingCertificates?: SvidCertificateProvider
  /** With servingCertificates: the SVID served now (undefined before the first or after a PermissionDenied). */
  servingSvid?: () => ServingSvid | undefined
}

/**
 * A listener the runtime starts after the Data API and stops before it. Listeners of other
 * transports are handed in (cli/serve.ts passes envoy/'s), so server/ never imports another
 * transport.
 */
export interface AttachedListener {
  readonly name: string
  /** Listens; resolves to the addresses it listens on (for the log). */
  start: () => Promise<string[]>
  /** Graceful: stop accepting, let in-flight calls finish for up to graceMs, close. */
  stop: (graceMs: number) => Promise<void>
}

export type ListenerFactory = (parts: RuntimeParts) => AttachedListener | undefined

export interface Runtime {
  app: FastifyInstance
  manager: BundleManager
  decisions: DecisionService
  metrics: Metrics
  identity: IdentityVerifier | undefined
  /** Downloaders of the bundles from bundle servers (config `services` + `bundles.<name>`). */
  bundleService: BundleService | undefined
  /** The audit trail (audit.enabled or decision_logs.console), installed as the pipeline's audit hook. */
  audit: AuditTrail | undefined
  /** The SPIFFE Workload API client, when workload_api.enabled. */
  workloadApi: WorkloadApi | undefined
  /** Decision-log shipping to a collector (decision_logs.service with audit.enabled), read from the durable log. */
  shipper: Shipper | undefined
  logger: PinoLogger
  /** Listeners beside the Data API (e.g. Envoy ext_authz gRPC and HTTP service mode). */
  listeners: AttachedListener[]
  /** Listens; resolves to the URL. */
  start: () => Promise<string>
  /** Graceful: stop accepting, finish in-flight requests (up to the grace period), close. */
  stop: () => Promise<void>
}

export async function createRuntime (config: Readonly<ResolvedConfig>, hooks: RuntimeHooks = {}, opts: { logger?: PinoLogger, listeners?: ListenerFactory[], auditStream?: string } = {}): Promise<Runtime> {
  const logger = opts.logger ?? pino({ name: 'portcullis', level: config.logging.level })
  // The HTTP app (fastify and the routes) is imported while the bundles load: a large data
  // document is parsed on a worker thread (policy/data-loader.ts), so the two overlap instead of
  // one waiting for the other. It is awaited where the app is built, below.
  const appModule = import('./app.js')
  appModule.catch(() => {}) // a failed start before the await below must not leave an unhandled rejection
  // TLS files are read before anything that holds a watcher or a timer, so a bad one fails the start cleanly.
  const tls = config.server.tls
  const https = tls !== undefined ? httpsOptions(tls) : undefined
  const metrics = new Metrics()
  configureBuiltinsFrom(config)
  const manager = new BundleManager({
    logger: logger.child({ component: 'bundles' }),
    load: {
      verification: verification(config),
      requireSignature: config.bundles.signing.required,
      limits: { maxBytes: config.bundles.max_bytes, maxFiles: config.bundles.max_files },
    },
    engine: engineOptionsFrom(config),
  })
  manager.on('activate', (e) => { if (e.removed !== true) metrics.bundleActivations.inc({ bundle: e.bundle }) })
  manager.on('failure', (f) => { metrics.bundleFailures.inc({ bundle: f.bundle, code: f.error.code }) })

  // Every started part's stop, on one list: a failed start unwinds it, stop() runs it, newest
  // first either way (stop-list.ts). The shutdown order is: the listeners beside the Data API,
  // the Data API (in-flight requests drain), the certificate watcher, the bundle downloaders, the
  // Workload API client, the bundles watcher, the identity verifier, the audit trail (the last
  // events flushed, the final checkpoint), the shipper (a final upload of what the log now
  // holds). A part that must stop after one opened before it is registered ahead of its opening.
  const stops = new StopList()

  let shipper: Shipper | undefined
  // last: a final upload of what the log now holds, within what is left of the grace period
  // (never hanging on a collector that is down, OPA #6443); the rest waits in the log
  stops.add(async (ctx) => await shipper?.stop(ctx.remainingMs()))
  let audit: AuditTrail | undefined
  // after every listener has stopped and every in-flight request was answered: the last
  // events are flushed and the durable log writes its final checkpoint, retrying a refusing
  // disk within what is left of the grace period
  stops.add(async (ctx) => await audit?.close(ctx.remainingMs()))

  let identity: IdentityVerifier | undefined
  if (config.identity !== undefined) {
    const { createIdentityVerifier } = await import('../identity/index.js')
    const verifier = createIdentityVerifier(config.identity, { logger: logger.child({ component: 'identity' }), metrics })
    identity = verifier
    stops.add(async () => await verifier.close())
    await stops.step(async () => await verifier.ready)
  }
  const clientCertificates: ClientCertificateGate | undefined = await stops.step(() => tls !== undefined && tls.client_auth !== 'none' ? clientCertificateGate(tls, identity) : undefined)
  if (clientCertificates !== undefined) {
    const gate = clientCertificates
    // A removed CA or key must stop admitting connections that were judged before the change.
    identity?.on('trust-change', () => { gate.invalidate() })
  }
  const cache = config.cache.enabled ? new DecisionCache({ maxEntries: config.cache.max_entries, maxBytes: config.cache.max_bytes, maxEntryBytes: config.cache.max_entry_bytes, ttlMs: config.cache.ttl_ms, metrics }) : undefined
  const decisions = await stops.step(() => new DecisionService({
    manager,
    metrics,
    strictBuiltinErrors: config.policy.strict_builtin_errors,
    reasons: config.policy.reasons,
    returnReasons: config.policy.return_reasons,
    logger: logger.child({ component: 'decision' }),
    ...(cache !== undefined ? { cache } : {}),
    ...(identity !== undefined
      ? { identity: { verifier: identity, onMissing: config.identity?.on_missing ?? 'deny', onRejected: config.identity?.on_rejected ?? 'deny' } }
      : {}),
  }))
  // A trust-bundle change can turn an accepted identity into a rejected one: cached decisions go too.
  identity?.on('trust-change', () => { decisions.flushCache() })

  // The audit trail is open before any bundle loads or any listener starts: no decision is
  // answered unrecorded. One stream per process (`main`, or `w<slot>` in a worker group).
  // The audit code is loaded only when a sink is on (openAuditTrail's own condition).
  audit = await stops.step(async () => config.audit.enabled || config.decision_logs.console
    ? await (await import('../audit/trail.js')).openAuditTrail(config, { stream: opts.auditStream ?? auditStream(), metrics, logger: logger.child({ component: 'audit' }), consoleLogger: logger })
    : undefined)
  await stops.step(() => { audit?.install(decisions) })

  let watcher: BundleWatcher | undefined
  // The bundles watcher opens below, after the Workload API and the downloaders, and stops after them.
  stops.add(async () => await watcher?.close())

  // The Workload API streams start now (after the trust-change listeners above: the agent's
  // bundles are trust changes too); readiness (/health/ready) waits for their first messages.
  let workloadApi: WorkloadApi | undefined
  let servingCertificates: SvidCertificateProvider | undefined
  if (config.workload_api.enabled) {
    const { wapi, client } = await stops.step(async () => {
      const wapi = await import('../identity/workload-api/index.js')
      const client = new wapi.WorkloadApi(config.workload_api, {
        logger: logger.child({ component: 'workload-api' }),
        recorder: {
          update: (stream) => { metrics.workloadApiUpdates.inc({ stream }) },
          error: (stream, code) => { metrics.workloadApiErrors.inc({ stream, code }) },
          connected: (stream, up) => { metrics.workloadApiConnected.set({ stream }, up ? 1 : 0) },
        },
      })
      return { wapi, client }
    })
    workloadApi = client
    stops.add(() => { client.close() })
    if (config.workload_api.serving_svid) servingCertificates = feedCertificateProvider(client, new wapi.SvidCertificateProvider(), metrics)
    client.start(identity !== undefined ? { trustStore: identity.workloadApiSink } : {})
  }

  // Every process runs a shipper; the one holding the audit directory's lock ships every stream
  // in it (src/audit/ship/shipper.ts), so workers' streams and those of past runs all arrive.
  const target = shippingTarget(config)
  if (target !== undefined && config.audit.enabled) {
    shipper = await stops.step(async () => {
      const [{ createShipper }, { AuditDirReader }] = await Promise.all([import('../audit/ship/index.js'), import('../audit/log/reader.js')])
      const created = createShipper({
        dir: config.audit.dir,
        target,
        reporting: config.decision_logs.reporting,
        openDirectory: async (dir) => await AuditDirReader.open(dir),
        registry: metrics.registry,
        logger: logger.child({ component: 'decision-logs' }),
      })
      for (const w of shippingWarnings(config)) logger.warn({ component: 'decision-logs' }, w)
      return created
    })
  }

  // Remote bundles are expected before anything loads, so readiness waits for them too.
  const remote = remoteBundleOptionsFrom(config)
  const bundleService: BundleService | undefined = await stops.step(async () => remote.length > 0
    ? (await import('../bundles/service/index.js')).createBundleService(manager, remote, { logger: logger.child({ component: 'bundle-service' }), metrics })
    : undefined, async (service) => await service.close())

  // With bundles from a bundle server, a bundles directory that does not exist is simply not used.
  const useDir = bundleService === undefined || existsSync(config.bundles.dir)
  await stops.step(async () => {
    if (!useDir) {
      logger.info({ dir: config.bundles.dir }, 'bundles directory absent; serving bundles from bundle servers only')
    } else if (config.bundles.watch) {
      const w = watchBundles(config.bundles.dir, manager, { debounceMs: config.bundles.debounce_ms, stabilityMs: config.bundles.stability_ms })
      watcher = w
      await w.ready
    } else {
      await loadBundlesDir(config.bundles.dir, manager)
    }
    await bundleService?.start()
  })

  // The certificate watcher starts with the listener (start()) and stops after the Data API.
  let certWatcher: { close: () => Promise<void> } | undefined
  stops.add(async () => await certWatcher?.close())

  // From here on downloaders poll, the watcher watches and the Workload API streams: if building
  // the app or a listener throws, they are closed before the error propagates, so a failed start
  // leaves nothing running.
  const { build } = await stops.step(async () => await appModule)
  const shipping = shipper
  const app: FastifyInstance = await stops.step(() => build({
    decisions,
    manager,
    metrics,
    ...(hooks.metricsText !== undefined ? { metricsText: hooks.metricsText } : {}),
    ...(hooks.flushCache !== undefined ? { flushCache: hooks.flushCache } : {}),
    ...(identity !== undefined ? { identityStatus: () => identity.status() } : {}),
    ...(workloadApi !== undefined ? { workloadApi } : {}),
    ...(shipping !== undefined ? { decisionLogsStatus: () => shipping.status() } : {}),
    bodyLimit: config.server.body_limit_bytes,
    maxJsonDepth: config.server.max_json_depth,
    requestTimeoutMs: config.server.request_timeout_ms,
    keepAliveTimeoutMs: config.server.keep_alive_timeout_ms,
    defaultDecision: config.server.default_decision,
    adminAuthzPath: config.admin.authz_path,
    allowedHosts: config.admin.allowed_hosts,
    listenHost: listenHostOf(config.server.addr),
    ...(https !== undefined ? { https } : {}),
    ...(clientCertificates !== undefined ? { clientCertificates } : {}),
    fastDataRoute: config.server.fast_data_route,
    logger: logger.child({ component: 'server' }),
    ...(config.audit.enabled ? { auditDir: config.audit.dir } : {}),
    ...(consoleEnabled(config) ? { console: { ...consoleOptions(config), ...(hooks.consoleJobs !== undefined ? { jobs: hooks.consoleJobs } : {}) } } : {}),
  }))
  stops.add(async (ctx) => {
    if (ctx.graceMs === undefined) return await app.close()
    let timer: NodeJS.Timeout | undefined
    // app.close() stops accepting and waits for in-flight requests; idle keep-alive sockets are closed.
    await Promise.race([
      app.close(),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, ctx.graceMs) }),
    ])
    if (timer !== undefined) clearTimeout(timer)
  })

  const listeners: AttachedListener[] = await stops.step(() => {
    const wapiRef = workloadApi
    const built = (opts.listeners ?? []).map((f) => f({ config, decisions, metrics, logger, ...(servingCertificates !== undefined && workloadApi !== undefined ? { servingCertificates, servingSvid: () => wapiRef?.svid } : {}) })).filter((l): l is AttachedListener => l !== undefined)
    if (workloadApi !== undefined && tls !== undefined && config.workload_api.serving_svid) serveDataApiWithSvid(app.server, tls, workloadApi, logger)
    return built
  })
  // First: the other listeners, all at once, each within the grace period.
  stops.add(async (ctx) => await Promise.all(listeners.map(async (l) => await l.stop(ctx.graceMs ?? 0))))

  let stopped: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopped ??= stops.stop(config.server.shutdown_grace_ms)
    await stopped
  }
  return {
    app,
    manager,
    decisions,
    metrics,
    identity,
    bundleService,
    audit,
    workloadApi,
    shipper,
    logger,
    listeners,
    start: async () => {
      try {
        // The Envoy listeners first: once the Data API listens, /health/ready may say ready, and
        // a ready server must already answer ext_authz Checks (Envoy with failure_mode_allow
        // lets requests through while its authorization service does not answer).
        for (const l of listeners) {
          const addrs = await l.start()
          logger.info({ listener: l.name, addresses: addrs }, `${l.name} listening`)
        }
        const { host, port } = parseAddr(config.server.addr)
        const url = await app.listen({ host, port })
        if (tls?.cert_file !== undefined && tls.key_file !== undefined) certWatcher = watchServerCertificate(app.server as unknown as { setSecureContext: (o: object) => void }, { ...tls, cert_file: tls.cert_file, key_file: tls.key_file }, logger)
        shipper?.start()
        return url
      } catch (err) {
        // A listener that cannot bind: everything opened so far (the Workload API client
        // included) is closed, so a failed start leaves nothing running.
        await stop().catch(() => {})
        throw err
      }
    },
    stop,
  }
}
