/**
 * Identity configuration: the shape, its defaults (in one place: DEFAULTS below), and a plain
 * validating function. Unknown keys are rejected so a typo never silently disables a check.
 *
 * @example
 *   const config = validateIdentityConfig({
 *     trust_domains: { 'example.org': { x509_authorities: ['/etc/spire/bundle.pem'] } },
 *     x509_svid: { sources: ['mtls'] },
 *     jwt_svid: { audiences: ['portcullis'] },
 *   })
 */
import { isAbsolute, resolve } from 'node:path'
import { isIP } from 'node:net'
import { PortcullisError } from '../errors.js'
import { trustDomainProblem } from './spiffe-id.js'

/** JWS algorithms the SPIFFE JWT-SVID standard allows (JWT-SVID §3): RS, ES, PS at 256/384/512. */
export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const
export type JwtAlgorithm = typeof JWT_SVID_ALGORITHMS[number]

export type X509Source = 'mtls' | 'xfcc'

/** SPIFFE bundle endpoint, `https_web` profile (SPIFFE Trust Domain and Bundle §5.2.1). */
export interface BundleEndpointConfig {
  /** `https://` URL of the endpoint (plain http only for loopback hosts, for tests). */
  url: string
  /** PEM file of CA certificates to authenticate the endpoint's TLS server; default: Node's Web PKI roots. */
  ca?: string
  /** Request timeout. */
  timeout_ms: number
  /** Refresh interval when the bundle carries no `spiffe_refresh_hint`. */
  default_refresh_seconds: number
  /** Lower and upper clamps of the refresh hint, so a hostile hint cannot hammer or starve us. */
  min_refresh_seconds: number
  max_refresh_seconds: number
  /** First retry delay after a failed fetch; doubles per failure up to max_backoff_seconds. */
  initial_backoff_seconds: number
  max_backoff_seconds: number
}

export interface TrustDomainConfig {
  /** PEM files holding the trust domain's X.509 authorities (CA certificates). */
  x509_authorities: string[]
  /** SPIFFE bundle JSON files (JWK Set with `use` x509-svid / jwt-svid). */
  spiffe_bundles: string[]
  /** JWKS files holding JWT-SVID signing keys (`use` absent, `sig` or `jwt-svid`). */
  jwt_authorities: string[]
  /** Optional SPIFFE bundle endpoint polled at its refresh hint. */
  bundle_endpoint?: BundleEndpointConfig
}

export interface XfccConfig {
  /** Addresses or CIDRs of the proxies (Envoy) allowed to set x-forwarded-client-cert. */
  trusted_proxies: string[]
  /** Which XFCC element names the caller: Envoy appends the client it saw last (APPEND_FORWARD). */
  element: 'last' | 'first'
  /** Header name (lowercase). */
  header: string
}

export interface X509SvidConfig {
  enabled: boolean
  /** Sources checked, in this fixed precedence: mtls > xfcc. */
  sources: X509Source[]
  xfcc: XfccConfig
}

export interface JwtSvidConfig {
  enabled: boolean
  /** Audiences Portcullis accepts; a token's `aud` must contain at least one. */
  audiences: string[]
  /** Header carrying the token (lowercase). `authorization` means `Bearer <token>`; any other header carries the bare token. */
  header: string
  /** Clock skew tolerated for exp / nbf / iat. */
  leeway_seconds: number
  algorithms: JwtAlgorithm[]
}

export interface OidcIssuerConfig {
  /** Exact `iss` value, e.g. `https://kubernetes.default.svc.cluster.local`. */
  issuer: string
  audiences: string[]
  algorithms: JwtAlgorithm[]
  /** Where the keys come from: exactly one of discovery, jwks_uri, jwks_file. */
  discovery: boolean
  jwks_uri?: string
  jwks_file?: string
  header: string
  leeway_seconds: number
  timeout_ms: number
  cooldown_ms: number
  max_cache_age_ms: number
  /** PEM CA file for the discovery / JWKS https endpoints (default Web PKI roots). Not used with a custom fetch. */
  ca?: string
}

export interface CacheConfig {
  enabled: boolean
  max_entries: number
  /** Upper bound of an entry's life; each entry also ends at its credential's expiry. */
  max_ttl_seconds: number
}

export interface WatchConfig {
  /** Reload trust-bundle files when they change on disk (chokidar). */
  enabled: boolean
  debounce_ms: number
  use_polling: boolean
}

export interface IdentityConfig {
  /** What the pipeline does with a request that carries no credential: deny (default) or let the policy decide. */
  on_missing: 'deny' | 'allow'
  /** What the pipeline does with a rejected credential: deny (default) or let the policy see `input.identity_error`. */
  on_rejected: 'deny' | 'allow'
  trust_domains: Record<string, TrustDomainConfig>
  x509_svid: X509SvidConfig
  jwt_svid: JwtSvidConfig
  oidc: { issuers: OidcIssuerConfig[] }
  cache: CacheConfig
  watch: WatchConfig
}

/** Every default, in one place. */
export const DEFAULTS = {
  on_missing: 'deny',
  on_rejected: 'deny',
  bundle_endpoint: { timeout_ms: 5000, default_refresh_seconds: 300, min_refresh_seconds: 10, max_refresh_seconds: 86400, initial_backoff_seconds: 1, max_backoff_seconds: 300 },
  xfcc: { trusted_proxies: [] as string[], element: 'last', header: 'x-forwarded-client-cert' },
  x509_sources: ['mtls'] as X509Source[],
  jwt_svid: { header: 'authorization', leeway_seconds: 30, algorithms: [...JWT_SVID_ALGORITHMS] as JwtAlgorithm[] },
  oidc: { header: 'authorization', leeway_seconds: 30, timeout_ms: 5000, cooldown_ms: 30_000, max_cache_age_ms: 600_000, algorithms: ['RS256'] as JwtAlgorithm[] },
  cache: { enabled: true, max_entries: 10_000, max_ttl_seconds: 300 },
  watch: { enabled: true, debounce_ms: 200, use_polling: false },
  max_leeway_seconds: 300,
} as const

type Obj = Record<string, unknown>

function invalid (key: string, expected: string, got?: unknown): PortcullisError {
  const shown = got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 120) ?? String(got)
  return new PortcullisError('PORTCULLIS_CONFIG_INVALID', `identity config: ${key} must be ${expected}, got ${shown}`, { key, expected })
}

function obj (v: unknown, key: string, allowed: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(key, 'an object', v)
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw invalid(`${key}.${k}`, `absent (unknown key; expected one of ${allowed.join(', ')})`, (v as Obj)[k])
  }
  return v as Obj
}

function bool (v: unknown, key: string, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw invalid(key, 'a boolean', v)
  return v
}

function int (v: unknown, key: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw invalid(key, `an integer from ${min} to ${max}`, v)
  return v
}

function str (v: unknown, key: string): string {
  if (typeof v !== 'string' || v === '') throw invalid(key, 'a non-empty string', v)
  return v
}

function strList (v: unknown, key: string, dflt: string[] = []): string[] {
  if (v === undefined) return [...dflt]
  if (typeof v === 'string' && v !== '') return [v]
  if (!Array.isArray(v)) throw invalid(key, 'a list of strings', v)
  return v.map((x, i) => str(x, `${key}[${i}]`))
}

function oneOf<T extends string> (v: unknown, key: string, options: readonly T[], dflt: T): T {
  if (v === undefined) return dflt
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) throw invalid(key, `one of ${options.join(' | ')}`, v)
  return v as T
}

function path (v: string, baseDir: string | undefined): string {
  return baseDir !== undefined && !isAbsolute(v) ? resolve(baseDir, v) : v
}

function headerName (v: unknown, key: string, dflt: string): string {
  if (v === undefined) return dflt
  const s = str(v, key)
  if (!/^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$/.test(s)) throw invalid(key, 'an HTTP header name', v)
  return s.toLowerCase()
}

function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\./.test(h)
}

/** Accepts https URLs, and http only for loopback hosts (local tests, sidecars). */
function url (v: unknown, key: string): string {
  const s = str(v, key)
  let u: URL
  try { u = new URL(s) } catch { throw invalid(key, 'an absolute URL', v) }
  if (u.protocol === 'https:') return s
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return s
  throw invalid(key, 'an https:// URL (http:// only for loopback hosts)', v)
}

function algorithms (v: unknown, key: string, dflt: readonly JwtAlgorithm[]): JwtAlgorithm[] {
  const list = strList(v, key, [...dflt])
  if (list.length === 0) throw invalid(key, 'a non-empty list', v)
  for (const [i, a] of list.entries()) {
    if (!(JWT_SVID_ALGORITHMS as readonly string[]).includes(a)) throw invalid(`${key}[${i}]`, `one of ${JWT_SVID_ALGORITHMS.join(', ')}`, a)
  }
  return list as JwtAlgorithm[]
}

function cidr (v: string, key: string): string {
  const [addr, prefix, ...more] = v.split('/')
  const family = isIP(addr ?? '')
  if (family === 0 || more.length > 0) throw invalid(key, 'an IP address or CIDR', v)
  if (prefix !== undefined) {
    const n = Number(prefix)
    if (!/^\d+$/.test(prefix) || n > (family === 4 ? 32 : 128)) throw invalid(key, 'an IP address or CIDR', v)
  }
  return v
}

function bundleEndpoint (v: unknown, key: string, baseDir?: string): BundleEndpointConfig {
  const o = obj(v, key, ['url', 'ca', 'timeout_ms', 'default_refresh_seconds', 'min_refresh_seconds', 'max_refresh_seconds', 'initial_backoff_seconds', 'max_backoff_seconds'])
  const d = DEFAULTS.bundle_endpoint
  const out: BundleEndpointConfig = {
    url: url(o.url, `${key}.url`),
    timeout_ms: int(o.timeout_ms, `${key}.timeout_ms`, d.timeout_ms, 1, 600_000),
    default_refresh_seconds: int(o.default_refresh_seconds, `${key}.default_refresh_seconds`, d.default_refresh_seconds, 1, 7 * 86400),
    min_refresh_seconds: int(o.min_refresh_seconds, `${key}.min_refresh_seconds`, d.min_refresh_seconds, 1, 7 * 86400),
    max_refresh_seconds: int(o.max_refresh_seconds, `${key}.max_refresh_seconds`, d.max_refresh_seconds, 1, 7 * 86400),
    initial_backoff_seconds: int(o.initial_backoff_seconds, `${key}.initial_backoff_seconds`, d.initial_backoff_seconds, 1, 86400),
    max_backoff_seconds: int(o.max_backoff_seconds, `${key}.max_backoff_seconds`, d.max_backoff_seconds, 1, 86400),
  }
  if (out.min_refresh_seconds > out.max_refresh_seconds) throw invalid(`${key}.min_refresh_seconds`, `at most max_refresh_seconds (${out.max_refresh_seconds})`, out.min_refresh_seconds)
  if (o.ca !== undefined) out.ca = path(str(o.ca, `${key}.ca`), baseDir)
  return out
}

function oidcIssuer (v: unknown, key: string, baseDir?: string): OidcIssuerConfig {
  const o = obj(v, key, ['issuer', 'audiences', 'algorithms', 'discovery', 'jwks_uri', 'jwks_file', 'header', 'leeway_seconds', 'timeout_ms', 'cooldown_ms', 'max_cache_age_ms', 'ca'])
  const d = DEFAULTS.oidc
  const issuer = str(o.issuer, `${key}.issuer`)
  const out: OidcIssuerConfig = {
    issuer,
    audiences: strList(o.audiences, `${key}.audiences`),
    algorithms: algorithms(o.algorithms, `${key}.algorithms`, d.algorithms),
    discovery: bool(o.discovery, `${key}.discovery`, false),
    header: headerName(o.header, `${key}.header`, d.header),
    leeway_seconds: int(o.leeway_seconds, `${key}.leeway_seconds`, d.leeway_seconds, 0, DEFAULTS.max_leeway_seconds),
    timeout_ms: int(o.timeout_ms, `${key}.timeout_ms`, d.timeout_ms, 1, 600_000),
    cooldown_ms: int(o.cooldown_ms, `${key}.cooldown_ms`, d.cooldown_ms, 0, 86_400_000),
    max_cache_age_ms: int(o.max_cache_age_ms, `${key}.max_cache_age_ms`, d.max_cache_age_ms, 1, 7 * 86_400_000),
  }
  if (out.audiences.length === 0) throw invalid(`${key}.audiences`, 'a non-empty list (an OIDC token is only accepted for a named audience)', o.audiences)
  if (o.jwks_uri !== undefined) out.jwks_uri = url(o.jwks_uri, `${key}.jwks_uri`)
  if (o.jwks_file !== undefined) out.jwks_file = path(str(o.jwks_file, `${key}.jwks_file`), baseDir)
  if (o.ca !== undefined) out.ca = path(str(o.ca, `${key}.ca`), baseDir)
  const sources = [out.discovery, out.jwks_uri !== undefined, out.jwks_file !== undefined].filter(Boolean).length
  if (sources !== 1) throw invalid(key, 'given exactly one key source: discovery: true, jwks_uri or jwks_file', { discovery: o.discovery, jwks_uri: o.jwks_uri, jwks_file: o.jwks_file })
  if (out.discovery) url(issuer, `${key}.issuer`)
  return out
}

/**
 * Validates raw identity configuration (parsed JSON/YAML) and fills in defaults.
 * Throws PortcullisError PORTCULLIS_CONFIG_INVALID naming the key and what was expected.
 * Relative file paths are resolved against `opts.baseDir` when given.
 */
export function validateIdentityConfig (raw: unknown, opts: { baseDir?: string } = {}): IdentityConfig {
  const base = opts.baseDir
  const o = obj(raw ?? {}, 'identity', ['on_missing', 'on_rejected', 'trust_domains', 'x509_svid', 'jwt_svid', 'oidc', 'cache', 'watch'])

  const trust_domains: Record<string, TrustDomainConfig> = {}
  const tds = obj(o.trust_domains ?? {}, 'identity.trust_domains', Object.keys((o.trust_domains ?? {}) as Obj))
  for (const [name, value] of Object.entries(tds)) {
    const key = `identity.trust_domains.${name}`
    const problem = trustDomainProblem(name)
    if (problem !== undefined) throw invalid(key, `a trust domain name (${problem})`, name)
    const t = obj(value, key, ['x509_authorities', 'spiffe_bundles', 'jwt_authorities', 'bundle_endpoint'])
    const td: TrustDomainConfig = {
      x509_authorities: strList(t.x509_authorities, `${key}.x509_authorities`).map((p) => path(p, base)),
      spiffe_bundles: strList(t.spiffe_bundles, `${key}.spiffe_bundles`).map((p) => path(p, base)),
      jwt_authorities: strList(t.jwt_authorities, `${key}.jwt_authorities`).map((p) => path(p, base)),
    }
    if (t.bundle_endpoint !== undefined) td.bundle_endpoint = bundleEndpoint(t.bundle_endpoint, `${key}.bundle_endpoint`, base)
    if (td.x509_authorities.length + td.spiffe_bundles.length + td.jwt_authorities.length === 0 && td.bundle_endpoint === undefined) {
      throw invalid(key, 'given at least one of x509_authorities, spiffe_bundles, jwt_authorities, bundle_endpoint', value)
    }
    trust_domains[name] = td
  }

  const xo = obj(o.x509_svid ?? {}, 'identity.x509_svid', ['enabled', 'sources', 'xfcc'])
  const xf = obj(xo.xfcc ?? {}, 'identity.x509_svid.xfcc', ['trusted_proxies', 'element', 'header'])
  const trusted_proxies = strList(xf.trusted_proxies, 'identity.x509_svid.xfcc.trusted_proxies').map((p, i) => cidr(p, `identity.x509_svid.xfcc.trusted_proxies[${i}]`))
  // XFCC is only read when asked for: by default it is a source only once trusted proxies are named.
  const sources = strList(xo.sources, 'identity.x509_svid.sources', trusted_proxies.length > 0 ? [...DEFAULTS.x509_sources, 'xfcc'] : DEFAULTS.x509_sources)
  for (const [i, s] of sources.entries()) oneOf(s, `identity.x509_svid.sources[${i}]`, ['mtls', 'xfcc'] as const, 'mtls')
  if (sources.includes('xfcc') && trusted_proxies.length === 0) {
    throw invalid('identity.x509_svid.xfcc.trusted_proxies', 'a non-empty list when sources include xfcc (XFCC is only trusted from named proxies)', xf.trusted_proxies)
  }
  const x509_svid: X509SvidConfig = {
    enabled: bool(xo.enabled, 'identity.x509_svid.enabled', o.x509_svid !== undefined || Object.keys(trust_domains).length > 0),
    sources: [...new Set(sources)] as X509Source[],
    xfcc: {
      trusted_proxies,
      element: oneOf(xf.element, 'identity.x509_svid.xfcc.element', ['last', 'first'] as const, 'last'),
      header: headerName(xf.header, 'identity.x509_svid.xfcc.header', DEFAULTS.xfcc.header),
    },
  }

  const jo = obj(o.jwt_svid ?? {}, 'identity.jwt_svid', ['enabled', 'audiences', 'header', 'leeway_seconds', 'algorithms'])
  const jwt_svid: JwtSvidConfig = {
    enabled: bool(jo.enabled, 'identity.jwt_svid.enabled', o.jwt_svid !== undefined),
    audiences: strList(jo.audiences, 'identity.jwt_svid.audiences'),
    header: headerName(jo.header, 'identity.jwt_svid.header', DEFAULTS.jwt_svid.header),
    leeway_seconds: int(jo.leeway_seconds, 'identity.jwt_svid.leeway_seconds', DEFAULTS.jwt_svid.leeway_seconds, 0, DEFAULTS.max_leeway_seconds),
    algorithms: algorithms(jo.algorithms, 'identity.jwt_svid.algorithms', DEFAULTS.jwt_svid.algorithms),
  }
  if (jwt_svid.enabled && jwt_svid.audiences.length === 0) {
    throw invalid('identity.jwt_svid.audiences', 'a non-empty list (JWT-SVID §3: the audience must be validated)', jo.audiences)
  }

  const oo = obj(o.oidc ?? {}, 'identity.oidc', ['issuers'])
  if (oo.issuers !== undefined && !Array.isArray(oo.issuers)) throw invalid('identity.oidc.issuers', 'a list', oo.issuers)
  const issuers = ((oo.issuers ?? []) as unknown[]).map((v, i) => oidcIssuer(v, `identity.oidc.issuers[${i}]`, base))
  const seen = new Set<string>()
  for (const [i, iss] of issuers.entries()) {
    if (seen.has(iss.issuer)) throw invalid(`identity.oidc.issuers[${i}].issuer`, 'unique among issuers', iss.issuer)
    seen.add(iss.issuer)
  }

  const co = obj(o.cache ?? {}, 'identity.cache', ['enabled', 'max_entries', 'max_ttl_seconds'])
  const wo = obj(o.watch ?? {}, 'identity.watch', ['enabled', 'debounce_ms', 'use_polling'])

  return {
    on_missing: oneOf(o.on_missing, 'identity.on_missing', ['deny', 'allow'] as const, DEFAULTS.on_missing),
    on_rejected: oneOf(o.on_rejected, 'identity.on_rejected', ['deny', 'allow'] as const, DEFAULTS.on_rejected),
    trust_domains,
    x509_svid,
    jwt_svid,
    oidc: { issuers },
    cache: {
      enabled: bool(co.enabled, 'identity.cache.enabled', DEFAULTS.cache.enabled),
      max_entries: int(co.max_entries, 'identity.cache.max_entries', DEFAULTS.cache.max_entries, 1, 10_000_000),
      max_ttl_seconds: int(co.max_ttl_seconds, 'identity.cache.max_ttl_seconds', DEFAULTS.cache.max_ttl_seconds, 1, 86400),
    },
    watch: {
      enabled: bool(wo.enabled, 'identity.watch.enabled', DEFAULTS.watch.enabled),
      debounce_ms: int(wo.debounce_ms, 'identity.watch.debounce_ms', DEFAULTS.watch.debounce_ms, 0, 60_000),
      use_polling: bool(wo.use_polling, 'identity.watch.use_polling', DEFAULTS.watch.use_polling),
    },
  }
}
