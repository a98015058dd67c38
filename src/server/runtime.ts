/**
 * Assembles one Portcullis process from a validated configuration: metrics, bundle manager and
 * watcher, identity verifier, decision cache, decision pipeline, HTTP(S) app. `start()`
 * listens; `stop()` stops accepting, lets in-flight requests finish, closes watchers.
 */
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger as PinoLogger } from 'pino'
import { BundleManager } from '../bundles/activate.js'
import { watchBundles, type BundleWatcher, scanBundles } from '../bundles/watch.js'
import type { VerificationConfig } from '../bundles/verify.js'
import { DecisionCache } from '../cache/decision-cache.js'
import type { ResolvedConfig } from '../config/load.js'
import { DecisionService } from '../decision/decide.js'
import { auditStream, openAuditTrail, type AuditTrail } from '../audit/trail.js'
import { createIdentityVerifier, type IdentityVerifier } from '../identity/index.js'
import { Metrics } from '../metrics/index.js'
import { configureBuiltins } from '../policy/builtins/config.js'
import type { EngineOptions } from '../policy/engine.js'
import { build } from './app.js'
import { parseAddr } from './listen.js'
import { clientCertificateGate, httpsOptions, watchServerCertificate, type ClientCertificateGate } from './tls.js'

export interface RuntimeHooks {
  /** /metrics text (a worker asks the primary for the group's aggregate). */
  metricsText?: () => Promise<string>
  /** Flush every process's decision cache. */
  flushCache?: () => Promise<number>
}

/** What a listener beside the Data API (Envoy ext_authz, src/envoy/) is built from. */
export interface RuntimeParts {
  config: Readonly<ResolvedConfig>
  decisions: DecisionService
  metrics: Metrics
  logger: PinoLogger
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
  /** The audit trail (audit.enabled or decision_logs.console), installed as the pipeline's audit hook. */
  audit: AuditTrail | undefined
  logger: PinoLogger
  /** Listeners beside the Data API (e.g. Envoy ext_authz gRPC and HTTP service mode). */
  listeners: AttachedListener[]
  /** Listens; resolves to the URL. */
  start: () => Promise<string>
  /** Graceful: stop accepting, finish in-flight requests (up to the grace period), close. */
  stop: () => Promise<void>
}

function verification (config: ResolvedConfig): VerificationConfig | undefined {
  const keys = config.bundles.signing.keys
  if (Object.keys(keys).length === 0) return undefined
  const out: VerificationConfig = { keys: {} }
  for (const [id, k] of Object.entries(keys)) {
    const key = k.key ?? readFileSync(k.key_file as string, 'utf8')
    out.keys[id] = { key, ...(k.algorithm !== undefined ? { algorithm: k.algorithm } : {}), ...(k.scope !== undefined ? { scope: k.scope } : {}) }
  }
  if (config.bundles.signing.key_id !== undefined) out.keyId = config.bundles.signing.key_id
  if (config.bundles.signing.scope !== undefined) out.scope = config.bundles.signing.scope
  return out
}

/**
 * The host builtins' process-wide settings from a configuration: what opa.runtime() reports
 * (the non-secret settings, and only the environment variables named) and http.send's limits.
 * `serve` and `eval` both call it, so the CLI answers as the server does.
 */
export function configureBuiltinsFrom (config: Readonly<ResolvedConfig>): void {
  const env: Record<string, string> = {}
  for (const name of config.policy.runtime_env) {
    const v = process.env[name]
    if (v !== undefined) env[name] = v
  }
  configureBuiltins({
    runtime: {
      config: {
        server: { addr: config.server.addr, workers: config.server.workers },
        bundles: { dir: config.bundles.dir, signing_required: config.bundles.signing.required },
        policy: { builtin_switches: config.policy.builtin_switches, strict_builtin_errors: config.policy.strict_builtin_errors },
      },
    },
    env,
    http: { timeoutMs: config.policy.http_send.timeout_ms, allowedHosts: [...config.policy.http_send.allowed_hosts] },
  })
}

/** The policy engine's options from a configuration: the builtin switches that are on, the wasm memory bound. */
export function engineOptionsFrom (config: Readonly<ResolvedConfig>): EngineOptions {
  return {
    builtins: { switches: new Set(config.policy.builtin_switches) },
    memory: { maxPages: config.policy.max_memory_pages },
  }
}

export async function createRuntime (config: Readonly<ResolvedConfig>, hooks: RuntimeHooks = {}, opts: { logger?: PinoLogger, listeners?: ListenerFactory[], auditStream?: string } = {}): Promise<Runtime> {
  const logger = opts.logger ?? pino({ name: 'portcullis', level: config.logging.level })
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

  let identity: IdentityVerifier | undefined
  if (config.identity !== undefined) {
    identity = createIdentityVerifier(config.identity, { logger: logger.child({ component: 'identity' }), metrics })
    await identity.ready
  }
  let clientCertificates: ClientCertificateGate | undefined
  try {
    clientCertificates = tls !== undefined && tls.client_auth !== 'none' ? clientCertificateGate(tls, identity) : undefined
  } catch (err) {
    await identity?.close()
    throw err
  }
  if (clientCertificates !== undefined) {
    const gate = clientCertificates
    // A removed CA or key must stop admitting connections that were judged before the change.
    identity?.on('trust-change', () => { gate.invalidate() })
  }
  const cache = config.cache.enabled ? new DecisionCache({ maxEntries: config.cache.max_entries, ttlMs: config.cache.ttl_ms, metrics }) : undefined
  const decisions = new DecisionService({
    manager,
    metrics,
    strictBuiltinErrors: config.policy.strict_builtin_errors,
    logger: logger.child({ component: 'decision' }),
    ...(cache !== undefined ? { cache } : {}),
    ...(identity !== undefined
      ? { identity: { verifier: identity, onMissing: config.identity?.on_missing ?? 'deny', onRejected: config.identity?.on_rejected ?? 'deny' } }
      : {}),
  })
  // A trust-bundle change can turn an accepted identity into a rejected one: cached decisions go too.
  identity?.on('trust-change', () => { decisions.flushCache() })

  // The audit trail is open before any bundle loads or any listener starts: no decision is
  // answered unrecorded. One stream per process (`main`, or `w<slot>` in a worker group).
  let audit: AuditTrail | undefined
  try {
    audit = await openAuditTrail(config, { stream: opts.auditStream ?? auditStream(), metrics, logger: logger.child({ component: 'audit' }), consoleLogger: logger })
  } catch (err) {
    await identity?.close()
    throw err
  }
  audit?.install(decisions)

  let watcher: BundleWatcher | undefined
  if (config.bundles.watch) {
    watcher = watchBundles(config.bundles.dir, manager, { debounceMs: config.bundles.debounce_ms, stabilityMs: config.bundles.stability_ms })
    await watcher.ready
  } else {
    for (const b of await scanBundles(config.bundles.dir)) await manager.load(b.source, b.name)
  }

  const app = build({
    decisions,
    manager,
    metrics,
    ...(hooks.metricsText !== undefined ? { metricsText: hooks.metricsText } : {}),
    ...(hooks.flushCache !== undefined ? { flushCache: hooks.flushCache } : {}),
    ...(identity !== undefined ? { identityStatus: () => identity.status() } : {}),
    bodyLimit: config.server.body_limit_bytes,
    maxJsonDepth: config.server.max_json_depth,
    requestTimeoutMs: config.server.request_timeout_ms,
    keepAliveTimeoutMs: config.server.keep_alive_timeout_ms,
    defaultDecision: config.server.default_decision,
    adminAuthzPath: config.admin.authz_path,
    ...(https !== undefined ? { https } : {}),
    ...(clientCertificates !== undefined ? { clientCertificates } : {}),
    fastDataRoute: config.server.fast_data_route,
    logger: logger.child({ component: 'server' }),
    ...(config.audit.enabled ? { auditDir: config.audit.dir } : {}),
  })
  const listeners = (opts.listeners ?? []).map((f) => f({ config, decisions, metrics, logger })).filter((l): l is AttachedListener => l !== undefined)
  let certWatcher: { close: () => Promise<void> } | undefined
  return {
    app,
    manager,
    decisions,
    metrics,
    identity,
    audit,
    logger,
    listeners,
    start: async () => {
      const { host, port } = parseAddr(config.server.addr)
      const url = await app.listen({ host, port })
      if (tls !== undefined) certWatcher = watchServerCertificate(app.server as unknown as { setSecureContext: (o: object) => void }, tls, logger)
      for (const l of listeners) {
        const addrs = await l.start()
        logger.info({ listener: l.name, addresses: addrs }, `${l.name} listening`)
      }
      return url
    },
    stop: async () => {
      const grace = config.server.shutdown_grace_ms
      // Other listeners first, all at once, each within the grace period.
      await Promise.all(listeners.map(async (l) => await l.stop(grace)))
      let timer: NodeJS.Timeout | undefined
      // app.close() stops accepting and waits for in-flight requests; idle keep-alive sockets are closed.
      await Promise.race([
        app.close(),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, grace) }),
      ])
      if (timer !== undefined) clearTimeout(timer)
      await certWatcher?.close()
      await watcher?.close()
      await identity?.close()
      // after every listener has stopped and every in-flight request was answered: the last
      // events are flushed and the durable log writes its final checkpoint
      await audit?.close()
    },
  }
}
