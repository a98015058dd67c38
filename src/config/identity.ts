/**
 * The `identity` section: what the TypeBox schema (schema.ts) cannot say by itself.
 *
 * - before validation, `prepareIdentity` fills the defaults (defaults.ts), including those that
 *   depend on other keys, reads an empty YAML mapping (null) as an empty section, and wraps a
 *   lone string where the schema marks a list `x-single-is-list`;
 * - after validation, `checkIdentity` runs the cross-field checks, each raising
 *   PORTCULLIS_CONFIG_INVALID with the offending key;
 * - `resolveIdentity` makes file paths absolute and header names lowercase.
 *
 * @example
 *   const config = validateIdentityConfig({
 *     trust_domains: { 'example.org': { x509_authorities: ['/etc/spire/bundle.pem'] } },
 *     jwt_svid: { audiences: ['portcullis'] },
 *   })
 */
import { isAbsolute, resolve } from 'node:path'
import { isIP } from 'node:net'
import { Kind, type TSchema } from '@sinclair/typebox'
import { IDENTITY_DEFAULTS as D } from './defaults.js'
import { IdentitySchema, type IdentityConfig } from './schema.js'
import type { ValidateFunction } from 'ajv'
import { assertValid, compile, configInvalid } from './validate.js'

type Obj = Record<string, unknown>

function isObject (v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** An object's own keys over its defaults (a key set to undefined is absent); anything else is left for the schema to reject. */
function over (defaults: object, v: unknown): unknown {
  if (!isObject(v)) return v
  const out: Obj = { ...defaults }
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = x
  return out
}

/** Wraps a lone string where the schema marks a list `x-single-is-list`, at any depth. */
function singleIsList (schema: TSchema, v: unknown): unknown {
  if (schema['x-single-is-list'] === true && typeof v === 'string') return [v]
  if (schema[Kind] === 'Array' && Array.isArray(v)) return v.map((x) => singleIsList(schema.items as TSchema, x))
  if (!isObject(v)) return v
  const out: Obj = { ...v }
  const props = (schema.properties ?? {}) as Record<string, TSchema>
  const pattern = Object.values((schema.patternProperties ?? {}) as Record<string, TSchema>)[0]
  for (const [k, x] of Object.entries(out)) {
    const s = props[k] ?? pattern
    if (s !== undefined) out[k] = singleIsList(s, x)
  }
  return out
}

/** The raw section with every default in place, ready for schema validation. */
export function prepareIdentity (raw: unknown, opts: { workloadApiBundles?: boolean } = {}): unknown {
  // An empty YAML mapping (`identity:`, `x509_svid:`) is the section with its defaults.
  const given = raw ?? {}
  if (!isObject(given)) return given
  const o: Obj = { ...given }
  for (const k of ['trust_domains', 'x509_svid', 'jwt_svid', 'oidc', 'cache', 'watch']) if (o[k] === null) o[k] = {}
  const s = singleIsList(IdentitySchema, o) as Obj

  const tds = s.trust_domains
  if (isObject(tds)) {
    s.trust_domains = Object.fromEntries(Object.entries(tds).map(([name, td]) => {
      const t = over(D.trust_domain, td)
      if (isObject(t) && t.bundle_endpoint !== undefined) t.bundle_endpoint = over(D.bundle_endpoint, t.bundle_endpoint)
      return [name, t]
    }))
  }

  const x = over({}, s.x509_svid ?? {})
  if (isObject(x)) {
    x.xfcc = over(D.xfcc, x.xfcc ?? {})
    x.ext_authz = over(D.ext_authz, x.ext_authz ?? {})
    const proxies = isObject(x.xfcc) ? x.xfcc.trusted_proxies : undefined
    // XFCC is read only when asked for: by default a source once trusted proxies are named.
    const sources = Array.isArray(proxies) && proxies.length > 0 ? [...D.x509_svid.sources, 'xfcc'] : [...D.x509_svid.sources]
    x.sources ??= sources
    // Trust domains delivered by the Workload API count as configured ones.
    x.enabled ??= s.x509_svid !== undefined || (isObject(tds) && Object.keys(tds).length > 0) || opts.workloadApiBundles === true
  }
  s.x509_svid = x

  const j = over(D.jwt_svid, s.jwt_svid ?? {})
  if (isObject(j)) j.enabled ??= s.jwt_svid !== undefined
  s.jwt_svid = j

  const oidc = over(D.section.oidc, s.oidc ?? {})
  if (isObject(oidc)) {
    if (oidc.issuers === null) oidc.issuers = []
    if (Array.isArray(oidc.issuers)) oidc.issuers = oidc.issuers.map((i) => over(D.oidc_issuer, i))
  }
  s.oidc = oidc
  s.cache = over(D.cache, s.cache ?? {})
  s.watch = over(D.watch, s.watch ?? {})
  return over(D.section, s)
}

function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\./.test(h)
}

/** https URLs; http only for loopback hosts (local tests, sidecars). */
function checkUrl (v: string, key: string): void {
  let u: URL
  try { u = new URL(v) } catch { throw configInvalid(`config key ${key}: expected an absolute URL, got ${JSON.stringify(v)}`, key) }
  if (u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))) return
  throw configInvalid(`config key ${key}: expected an https:// URL (http:// only for loopback hosts), got ${JSON.stringify(v)}`, key)
}

function checkCidr (v: string, key: string): void {
  const [addr, prefix, ...more] = v.split('/')
  const family = isIP(addr ?? '')
  const ok = family !== 0 && more.length === 0 && (prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)))
  if (!ok) throw configInvalid(`config key ${key}: expected an IP address or CIDR, got ${JSON.stringify(v)}`, key)
}

/** The checks a schema cannot express. Throws PORTCULLIS_CONFIG_INVALID naming the key. */
export function checkIdentity (c: IdentityConfig, prefix = 'identity'): void {
  for (const [name, td] of Object.entries(c.trust_domains)) {
    const key = `${prefix}.trust_domains.${name}`
    if (td.x509_authorities.length + td.spiffe_bundles.length + td.jwt_authorities.length === 0 && td.bundle_endpoint === undefined) {
      throw configInvalid(`config key ${key}: needs at least one of x509_authorities, spiffe_bundles, jwt_authorities, bundle_endpoint`, key)
    }
    const be = td.bundle_endpoint
    if (be !== undefined) {
      checkUrl(be.url, `${key}.bundle_endpoint.url`)
      if (be.min_refresh_seconds > be.max_refresh_seconds) {
        throw configInvalid(`config key ${key}.bundle_endpoint.min_refresh_seconds: must be at most max_refresh_seconds (${be.max_refresh_seconds})`, `${key}.bundle_endpoint.min_refresh_seconds`)
      }
    }
  }
  const xfcc = c.x509_svid.xfcc
  for (const [i, p] of xfcc.trusted_proxies.entries()) checkCidr(p, `${prefix}.x509_svid.xfcc.trusted_proxies[${i}]`)
  for (const [i, p] of c.x509_svid.ext_authz.trusted_callers.entries()) checkCidr(p, `${prefix}.x509_svid.ext_authz.trusted_callers[${i}]`)
  if (c.x509_svid.sources.includes('xfcc') && xfcc.trusted_proxies.length === 0) {
    throw configInvalid(`config key ${prefix}.x509_svid.xfcc.trusted_proxies: needs at least one proxy when sources include xfcc (XFCC is only trusted from named proxies)`, `${prefix}.x509_svid.xfcc.trusted_proxies`)
  }
  if (c.jwt_svid.enabled && c.jwt_svid.audiences.length === 0) {
    // JWT-SVID §3: the audience must be validated.
    throw configInvalid(`config key ${prefix}.jwt_svid.audiences: needs at least one audience`, `${prefix}.jwt_svid.audiences`)
  }
  const seen = new Set<string>()
  for (const [i, iss] of c.oidc.issuers.entries()) {
    const key = `${prefix}.oidc.issuers[${i}]`
    const sources = [iss.discovery, iss.jwks_uri !== undefined, iss.jwks_file !== undefined].filter(Boolean).length
    if (sources !== 1) throw configInvalid(`config key ${key}: needs exactly one key source: discovery: true, jwks_uri or jwks_file`, key)
    if (iss.jwks_uri !== undefined) checkUrl(iss.jwks_uri, `${key}.jwks_uri`)
    if (iss.discovery) checkUrl(iss.issuer, `${key}.issuer`)
    if (seen.has(iss.issuer)) throw configInvalid(`config key ${key}.issuer: ${JSON.stringify(iss.issuer)} is configured twice`, `${key}.issuer`)
    seen.add(iss.issuer)
  }
}

/** File paths made absolute against `baseDir` (the config file's directory); header names lowercase. */
export function resolveIdentity (c: IdentityConfig, baseDir: string | undefined): IdentityConfig {
  const path = (p: string): string => (baseDir !== undefined && !isAbsolute(p) ? resolve(baseDir, p) : p)
  for (const td of Object.values(c.trust_domains)) {
    td.x509_authorities = td.x509_authorities.map(path)
    td.spiffe_bundles = td.spiffe_bundles.map(path)
    td.jwt_authorities = td.jwt_authorities.map(path)
    if (td.bundle_endpoint?.ca !== undefined) td.bundle_endpoint.ca = path(td.bundle_endpoint.ca)
  }
  c.x509_svid.sources = [...new Set(c.x509_svid.sources)]
  c.x509_svid.xfcc.header = c.x509_svid.xfcc.header.toLowerCase()
  c.jwt_svid.header = c.jwt_svid.header.toLowerCase()
  for (const iss of c.oidc.issuers) {
    iss.header = iss.header.toLowerCase()
    if (iss.jwks_file !== undefined) iss.jwks_file = path(iss.jwks_file)
    if (iss.ca !== undefined) iss.ca = path(iss.ca)
  }
  return c
}

let validateSection: ValidateFunction | undefined

/**
 * Validates a raw identity section (parsed JSON/YAML) on its own, as loadConfig does inside the
 * whole configuration, and fills in defaults. Throws PORTCULLIS_CONFIG_INVALID naming the key.
 * Relative file paths are resolved against `opts.baseDir` when given.
 */
export function validateIdentityConfig (raw: unknown, opts: { baseDir?: string } = {}): IdentityConfig {
  const prepared = structuredClone(prepareIdentity(raw))
  // Compiled on first use: `serve` validates the section inside the whole configuration (config/load.ts).
  validateSection ??= compile(IdentitySchema)
  assertValid(validateSection, prepared, 'identity')
  const c = prepared as IdentityConfig
  checkIdentity(c)
  return resolveIdentity(c, opts.baseDir)
}
