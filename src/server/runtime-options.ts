/**
 * What a configuration means for the parts a process is assembled from (runtime.ts), and for the
 * commands that load bundles as `serve` does (`eval`, `replay`): bundle verification, remote
 * bundle downloaders, the builtins' process-wide settings, the engine's options, the console's.
 * Plain functions of the resolved configuration; nothing here opens a file watcher, socket or log.
 */
import { readFileSync } from 'node:fs'
import { BundleManager } from '../bundles/activate.js'
import type { SigningPolicy, VerificationConfig, VerificationKey } from '../bundles/verify.js'
import type { RemoteBundleOptions } from '../bundles/service/index.js'
import { persistDirOf } from '../bundles/service/persist.js'
import { remoteBundles } from '../config/bundle-service.js'
import { BUNDLE_SERVICE_DEFAULTS } from '../config/defaults.js'
import type { ResolvedConfig } from '../config/load.js'
import { PortcullisError } from '../errors.js'
import { configureBuiltins } from '../policy/builtins/config.js'
import type { EngineOptions } from '../policy/engine.js'
import type { BuildOptions } from './app.js'
import { isLoopback } from './plugins/admin-authz.js'
import { parseAddr } from './listen.js'

/** Verification keys by id: bundles.signing.keys and OPA's top-level `keys` (ids never both, config/bundle-service.ts). */
function verificationKeys (config: ResolvedConfig): Record<string, VerificationKey> {
  const out: Record<string, VerificationKey> = {}
  for (const [id, k] of [...Object.entries(config.bundles.signing.keys), ...Object.entries(config.keys)]) {
    const key = k.key ?? readFileSync(k.key_file as string, 'utf8')
    out[id] = { key, ...(k.algorithm !== undefined ? { algorithm: k.algorithm } : {}), ...(k.scope !== undefined ? { scope: k.scope } : {}) }
  }
  return out
}

/** The bundle verification `serve` applies to bundles from its directory (bundles.signing, keys); replay uses it too. */
export function verification (config: ResolvedConfig): VerificationConfig | undefined {
  const keys = verificationKeys(config)
  if (Object.keys(keys).length === 0) return undefined
  const out: VerificationConfig = { keys }
  if (config.bundles.signing.key_id !== undefined) out.keyId = config.bundles.signing.key_id
  if (config.bundles.signing.scope !== undefined) out.scope = config.bundles.signing.scope
  return out
}

/**
 * The downloader options of every remote bundle (`bundles.<name>` with a `service`). A bundle
 * with `signing` must carry a valid `.signatures.json` verified with its keyid/scope (OPA); one
 * without is treated like a file from the bundles directory (bundles.signing applies).
 */
export function remoteBundleOptionsFrom (config: Readonly<ResolvedConfig>): RemoteBundleOptions[] {
  const out: RemoteBundleOptions[] = []
  const keys = verificationKeys(config as ResolvedConfig)
  const limits = { maxBytes: config.bundles.max_bytes, maxFiles: config.bundles.max_files }
  for (const [name, b] of Object.entries(remoteBundles(config.bundles))) {
    const s = config.services[b.service]
    if (s === undefined) continue // refused by config validation
    let signing: SigningPolicy
    if (b.signing !== undefined) {
      signing = {
        verification: { keys, ...(b.signing.keyid !== undefined && b.signing.keyid !== '' ? { keyId: b.signing.keyid } : {}), ...(b.signing.scope !== undefined && b.signing.scope !== '' ? { scope: b.signing.scope } : {}) },
        requireSignature: true,
        excludeFiles: [...(b.signing.exclude_files ?? [])],
      }
    } else {
      signing = { verification: verification(config as ResolvedConfig), requireSignature: config.bundles.signing.required }
    }
    const bearer = s.credentials?.bearer
    const clientTls = s.credentials?.client_tls
    out.push({
      name,
      resource: b.resource,
      service: {
        name: b.service,
        url: s.url,
        ...(s.headers !== undefined ? { headers: { ...s.headers } } : {}),
        ...(bearer !== undefined ? { bearer: { ...(bearer.token !== undefined ? { token: bearer.token } : {}), ...(bearer.token_path !== undefined ? { tokenPath: bearer.token_path } : {}), scheme: bearer.scheme ?? 'Bearer' } } : {}),
        ...(clientTls !== undefined ? { clientTls: { cert: clientTls.cert, privateKey: clientTls.private_key, ...(clientTls.private_key_passphrase !== undefined ? { passphrase: clientTls.private_key_passphrase } : {}) } } : {}),
        ...(s.tls !== undefined ? { tls: { ...(s.tls.ca_cert !== undefined ? { caCert: s.tls.ca_cert } : {}), ...(s.tls.system_ca_required !== undefined ? { systemCaRequired: s.tls.system_ca_required } : {}) } } : {}),
        responseHeaderTimeoutMs: (s.response_header_timeout_seconds ?? BUNDLE_SERVICE_DEFAULTS.response_header_timeout_seconds) * 1000,
      },
      polling: {
        minDelayMs: b.polling.min_delay_seconds * 1000,
        maxDelayMs: b.polling.max_delay_seconds * 1000,
        ...(b.polling.long_polling_timeout_seconds !== undefined ? { longPollingTimeoutSeconds: b.polling.long_polling_timeout_seconds } : {}),
      },
      // OPA's size_limit_bytes is the bundle reader's limit on each file, decompressed.
      load: { ...signing, limits: { ...limits, ...(b.size_limit_bytes !== undefined ? { maxFileBytes: b.size_limit_bytes } : {}) } },
      maxBytes: config.bundles.max_bytes,
      ...(b.persist ? { persistDir: persistDirOf(config.persistence_directory, name) } : {}),
    })
  }
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

/** console.enabled, defaulting to on only when the Data API listens on a loopback address. */
export function consoleEnabled (config: Readonly<ResolvedConfig>): boolean {
  if (config.console.enabled !== undefined) return config.console.enabled
  const host = listenHostOf(config.server.addr)
  return host === 'localhost' || isLoopback(host)
}

/** The host part of server.addr as the server listens on it (`[::1]:8181` gives `::1`, `:8181` 127.0.0.1). */
export function listenHostOf (addr: string): string {
  return parseAddr(addr).host
}

/** What the console routes need: the grants entrypoint, the checkpoint key, and candidate loading as serve loads bundles. */
export function consoleOptions (config: Readonly<ResolvedConfig>): NonNullable<BuildOptions['console']> {
  return {
    grantsPath: config.console.grants_path,
    cacheMaxBytes: config.console.cache_max_bytes,
    ...(config.audit.checkpoint.key_file !== undefined ? { checkpointKeyFile: config.audit.checkpoint.key_file } : {}),
    ...(config.audit.checkpoint.previous_public_key_files !== undefined ? { checkpointPreviousKeyFiles: [...config.audit.checkpoint.previous_public_key_files] } : {}),
    maxBundleBytes: config.bundles.max_bytes,
    strictBuiltinErrors: config.policy.strict_builtin_errors,
    loadCandidate: async (file: string) => {
      const m = new BundleManager({
        load: { verification: verification(config as ResolvedConfig), requireSignature: config.bundles.signing.required, limits: { maxBytes: config.bundles.max_bytes, maxFiles: config.bundles.max_files } },
        engine: engineOptionsFrom(config),
      })
      if (!(await m.load(file))) {
        const e = m.status().find((s) => s.source === file)?.last_error
        throw new PortcullisError(e?.code ?? 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID', e?.message ?? 'the candidate bundle cannot be loaded')
      }
      return m.snapshot
    },
  }
}

/** The policy engine's options from a configuration: the builtin switches that are on, the wasm memory bound. */
export function engineOptionsFrom (config: Readonly<ResolvedConfig>): EngineOptions {
  return {
    builtins: { switches: new Set(config.policy.builtin_switches) },
    memory: { maxPages: config.policy.max_memory_pages },
  }
}
