/**
 * Load, validate and freeze the configuration: defaults <- file <- environment <- flags.
 * Errors name the key and what was expected; unknown keys are rejected.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { deepFreeze } from '../deep-freeze.js'
import { DEFAULTS } from './defaults.js'
import { checkIdentity, prepareIdentity, resolveIdentity } from './identity.js'
import { checkBundleService, prepareBundleService, resolveBundleService } from './bundle-service.js'
import { checkDecisionLogs, checkReportingLayer, defaultShippingService } from './decision-logs.js'
import { ConfigSchema, type Config, type IdentityConfig } from './schema.js'
import { assertValid, compile, configInvalid as invalid, precompiledValidator } from './validate.js'
import { parseWorkloadEndpoint } from './workload-api.js'

/** The validated configuration; the identity section is validated by the same schema. */
export type ResolvedConfig = Config

export interface LoadConfigOptions {
  /** Config file (YAML or JSON). */
  file?: string
  /** Environment to read overrides from (default: process.env). */
  env?: NodeJS.ProcessEnv
  /** Flag overrides, already in config shape, e.g. `{server: {addr}}`; `identity` as a file would say it. */
  overrides?: ConfigOverrides
}

/** Flag-style overrides: any part of the configuration; `identity` raw, as a file would give it. */
export type ConfigOverrides = Omit<DeepPartial<Config>, 'identity'> & { identity?: unknown }

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends Record<string, unknown> ? DeepPartial<T[K]> : T[K] }

/** The generated validator compiled into the bundled build (scripts/build-bundle.mjs injects it); absent elsewhere. */
declare const __PORTCULLIS_CONFIG_VALIDATOR__: { validate?: unknown, digest?: unknown } | undefined
// The build's generated validator (npm run build) when it matches this schema, else compiled here.
const generated = typeof __PORTCULLIS_CONFIG_VALIDATOR__ !== 'undefined' ? __PORTCULLIS_CONFIG_VALIDATOR__ : new URL('./config-validator.cjs', import.meta.url)
const validate = precompiledValidator(generated, ConfigSchema) ?? compile(ConfigSchema)

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function merge (base: unknown, over: unknown): unknown {
  if (!isObject(base) || !isObject(over)) return over === undefined ? base : over
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v)
  return out
}

/** Environment overrides (for secrets and paths). Documented in docs/configuration.md. */
export function envOverrides (env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const set = (path: string[], value: unknown): void => {
    let node = out
    for (const k of path.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>
    node[path[path.length - 1] as string] = value
  }
  const int = (name: string, v: string): number => {
    if (!/^\d+$/.test(v)) throw invalid(`environment variable ${name}: expected a non-negative integer, got ${JSON.stringify(v)}`, name)
    return Number(v)
  }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('PORTCULLIS_')) continue
    switch (name) {
      case 'PORTCULLIS_ADDR': set(['server', 'addr'], value); break
      case 'PORTCULLIS_WORKERS': set(['server', 'workers'], int(name, value)); break
      case 'PORTCULLIS_BUNDLES_DIR': set(['bundles', 'dir'], value); break
      case 'PORTCULLIS_TLS_CERT_FILE': set(['server', 'tls', 'cert_file'], value); break
      case 'PORTCULLIS_TLS_KEY_FILE': set(['server', 'tls', 'key_file'], value); break
      case 'PORTCULLIS_LOG_LEVEL': set(['logging', 'level'], value); break
      default: {
        const m = /^PORTCULLIS_BUNDLE_KEY_([A-Za-z0-9_]+)$/.exec(name)
        if (m !== null) set(['bundles', 'signing', 'keys', (m[1] as string).toLowerCase()], { key: value })
      }
    }
  }
  return out
}

/**
 * A TLS listener that asks for client certificates must be able to verify them: against its
 * own CA file, or as X.509-SVIDs against trust domains that can hold X.509 authorities.
 * (Whether those sources actually hold any is known only once loaded; an empty bundle then
 * rejects every certificate: fail closed.)
 */
function canVerifyClientCertificates (clientCaFile: string | undefined, identity: IdentityConfig | undefined, workloadApiBundles: boolean): boolean {
  if (clientCaFile !== undefined) return true
  if (identity === undefined || !identity.x509_svid.enabled) return false
  if (workloadApiBundles) return true
  return Object.values(identity.trust_domains).some((td) => td.x509_authorities.length > 0 || td.spiffe_bundles.length > 0 || td.bundle_endpoint !== undefined)
}

export function loadConfig (opts: LoadConfigOptions = {}): Readonly<ResolvedConfig> {
  let raw: unknown = {}
  let base = process.cwd()
  if (opts.file !== undefined) {
    let text: string
    try {
      text = readFileSync(opts.file, 'utf8')
    } catch (err) {
      throw invalid(`cannot read config file ${opts.file}: ${(err as Error).message}`, '(file)')
    }
    try {
      raw = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 }) ?? {}
    } catch (err) {
      throw invalid(`config file ${opts.file} is not valid YAML/JSON: ${(err as Error).message}`, '(file)')
    }
    if (!isObject(raw)) throw invalid(`config file ${opts.file} must hold a mapping at the top level`, '(root)')
    base = dirname(resolve(opts.file))
  }
  // Settings that only make sense together get their companions' defaults.
  const layered = [raw, envOverrides(opts.env ?? process.env), opts.overrides ?? {}]
  let merged: unknown = structuredClone(DEFAULTS)
  for (const layer of layered) merged = merge(merged, layer)
  const m = merged as Config
  const wapi = m.workload_api
  const env = opts.env ?? process.env
  // SPIFFE Workload Endpoint §4: the endpoint's address comes from SPIFFE_ENDPOINT_SOCKET unless configured.
  if (wapi.enabled && wapi.socket === undefined && env.SPIFFE_ENDPOINT_SOCKET !== undefined && env.SPIFFE_ENDPOINT_SOCKET !== '') wapi.socket = env.SPIFFE_ENDPOINT_SOCKET
  const servingSvid = wapi.enabled && wapi.serving_svid
  const workloadApiBundles = wapi.enabled && wapi.trust_bundles
  // Serving from the SVID means serving TLS, whether or not server.tls was written out.
  if (servingSvid && m.server.tls === undefined) m.server.tls = {} as NonNullable<Config['server']['tls']>
  // client_auth left unset is filled in below, once it is known what certificates could be verified against.
  const clientAuthSet = m.server.tls?.client_auth !== undefined
  if (m.server.tls !== undefined) m.server.tls = { ...m.server.tls, client_auth: m.server.tls.client_auth ?? 'request' }

  // Present (even as an empty mapping): identity verification is on, with its defaults.
  if (Object.hasOwn(m, 'identity')) m.identity = structuredClone(prepareIdentity(m.identity, { workloadApiBundles })) as Config['identity']

  prepareBundleService(m as unknown as Record<string, unknown>)

  for (const layer of layered) checkReportingLayer(layer)
  defaultShippingService(m, layered.some((l) => isObject(l) && Object.hasOwn(l, 'decision_logs')))

  assertValid(validate, m)
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p))
  m.bundles.dir = abs(m.bundles.dir)
  m.audit.dir = abs(m.audit.dir)
  if (m.audit.checkpoint.key_file !== undefined) m.audit.checkpoint.key_file = abs(m.audit.checkpoint.key_file)
  if (m.audit.checkpoint.previous_public_key_files !== undefined) m.audit.checkpoint.previous_public_key_files = m.audit.checkpoint.previous_public_key_files.map(abs)
  if (wapi.enabled) {
    if (wapi.socket === undefined) throw invalid('config key workload_api.socket: not set, and SPIFFE_ENDPOINT_SOCKET is not set either', 'workload_api.socket')
    parseWorkloadEndpoint(wapi.socket)
    if (!wapi.trust_bundles && !wapi.serving_svid) throw invalid('config key workload_api: enabled, but neither trust_bundles nor serving_svid is on', 'workload_api')
    if (wapi.trust_bundles && m.identity === undefined) {
      throw invalid('config key workload_api.trust_bundles: the bundles are trust sources of identity verification, which needs an identity section (or set trust_bundles: false)', 'workload_api.trust_bundles')
    }
    if (wapi.backoff.initial_ms > wapi.backoff.max_ms) throw invalid(`config key workload_api.backoff.initial_ms: must be at most max_ms (${wapi.backoff.max_ms})`, 'workload_api.backoff.initial_ms')
  }
  if (m.server.tls !== undefined) {
    const t = m.server.tls
    for (const k of ['cert_file', 'key_file'] as const) {
      if (servingSvid && t[k] !== undefined) throw invalid(`config key server.tls.${k}: not used with workload_api.serving_svid (the serving certificate comes from the Workload API)`, `server.tls.${k}`)
      if (!servingSvid && t[k] === undefined) throw invalid(`config key server.tls.${k}: required (or serve the X.509-SVID: workload_api.serving_svid)`, `server.tls.${k}`)
    }
    if (t.cert_file !== undefined) t.cert_file = abs(t.cert_file)
    if (t.key_file !== undefined) t.key_file = abs(t.key_file)
    if (m.server.tls.client_ca_file !== undefined) m.server.tls.client_ca_file = abs(m.server.tls.client_ca_file)
  }
  for (const [id, k] of Object.entries(m.bundles.signing.keys)) {
    if (k.key === undefined && k.key_file === undefined) throw invalid(`config key bundles.signing.keys.${id}: needs key or key_file`, `bundles.signing.keys.${id}`)
    if (k.key_file !== undefined) k.key_file = abs(k.key_file)
  }
  checkBundleService(m)
  resolveBundleService(m, base)
  checkDecisionLogs(m)
  if (m.identity !== undefined) {
    checkIdentity(m.identity)
    resolveIdentity(m.identity, base)
  }
  if (m.envoy_ext_authz.cache.enabled && !m.cache.enabled) {
    throw invalid('config key envoy_ext_authz.cache.enabled: needs the decision cache (cache.enabled: true)', 'envoy_ext_authz.cache.enabled')
  }
  const tls = m.server.tls
  if (tls !== undefined && !canVerifyClientCertificates(tls.client_ca_file, m.identity, workloadApiBundles)) {
    if (!clientAuthSet) tls.client_auth = 'none'
    else if (tls.client_auth !== 'none') {
      throw invalid(`config key server.tls.client_auth: ${tls.client_auth} needs something to verify client certificates against: server.tls.client_ca_file, or identity.trust_domains with X.509 authorities (and identity.x509_svid enabled)`, 'server.tls.client_auth')
    }
  }
  return deepFreeze(m)
}
