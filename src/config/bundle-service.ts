/**
 * The bundle-server part of the configuration, in OPA's own keys (`services`, `keys`,
 * `persistence_directory`, `bundles.<name>: {service, resource, polling, signing, persist}`), so
 * an OPA configuration's bundle section works unchanged beside Portcullis's own `bundles`
 * settings (dir, watch, …).
 *
 * - `prepareBundleService` (before validation): the list form of `services` becomes a map, and
 *   every remote bundle gets OPA's defaults (a bundle without `service` uses the first configured
 *   service, in configuration order); a bundle named like one of our settings is refused.
 * - `checkBundleService` (after validation): what a schema cannot say (the named service and
 *   key exist, one credential method, token xor token_path, min ≤ max delay).
 * - `resolveBundleService`: file paths made absolute against the config file's directory.
 */
import { isAbsolute, resolve } from 'node:path'
import { BUNDLE_SERVICE_DEFAULTS } from './defaults.js'
import { BundlesSchema, type BundlesConfig, type Config, type RemoteBundleConfig } from './schema.js'
import { configInvalid as invalid } from './validate.js'
import { DECISIVE_PROBE_NAMES, excludeMatcher } from '../bundle-files.js'

/** Portcullis's own `bundles` settings; every other key of `bundles` names a remote bundle. */
export const BUNDLES_SETTINGS: readonly string[] = Object.keys(BundlesSchema.properties)

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** The remote bundles of a (validated) `bundles` section, by name. */
export function remoteBundles (bundles: BundlesConfig): Record<string, RemoteBundleConfig> {
  const out: Record<string, RemoteBundleConfig> = {}
  for (const [name, value] of Object.entries(bundles)) {
    if (!BUNDLES_SETTINGS.includes(name)) out[name] = value as unknown as RemoteBundleConfig
  }
  return out
}

/** Before validation: normalizes `services` and fills remote bundles' defaults. Mutates `m`. */
export function prepareBundleService (m: Record<string, unknown>): void {
  const services = m.services
  if (Array.isArray(services)) {
    // OPA accepts `services: [{name, url, …}]` as well as a map.
    const map: Record<string, unknown> = {}
    for (const [i, s] of services.entries()) {
      if (!isObject(s) || typeof s.name !== 'string' || s.name === '') throw invalid(`config key services[${i}]: a service in the list form needs a name`, `services[${i}].name`)
      if (Object.hasOwn(map, s.name)) throw invalid(`config key services[${i}]: service name ${JSON.stringify(s.name)} is used twice`, `services[${i}].name`)
      map[s.name] = s
    }
    m.services = map
  }
  if (isObject(m.services)) {
    for (const [name, s] of Object.entries(m.services)) {
      if (!isObject(s)) continue
      if (s.name !== undefined && s.name !== name) throw invalid(`config key services.${name}.name: ${JSON.stringify(s.name)} differs from the key it is configured under`, `services.${name}.name`)
      m.services[name] = { response_header_timeout_seconds: BUNDLE_SERVICE_DEFAULTS.response_header_timeout_seconds, ...s }
    }
  }
  const bundles = m.bundles
  if (!isObject(bundles)) return
  for (const [name, value] of Object.entries(bundles)) {
    if (!isObject(value)) continue
    const remote = Object.hasOwn(value, 'service') || Object.hasOwn(value, 'resource')
    if (BUNDLES_SETTINGS.includes(name)) {
      if (remote) {
        throw invalid(`config key bundles.${name}: a remote bundle cannot be named ${JSON.stringify(name)}, which is a Portcullis bundles setting (${BUNDLES_SETTINGS.join(', ')}); rename the bundle`, `bundles.${name}`)
      }
      continue
    }
    const polling = isObject(value.polling) ? value.polling : {}
    // OPA: a bundle that names no service uses the first configured one.
    const firstService = isObject(m.services) ? Object.keys(m.services)[0] : undefined
    bundles[name] = {
      ...(firstService !== undefined ? { service: firstService } : {}),
      resource: `bundles/${name}`,
      persist: BUNDLE_SERVICE_DEFAULTS.persist,
      ...value,
      polling: { ...BUNDLE_SERVICE_DEFAULTS.polling, ...polling },
    }
  }
}

/** After validation: the cross-field rules. Throws PORTCULLIS_CONFIG_INVALID naming the key. */
export function checkBundleService (m: Config): void {
  for (const [name, s] of Object.entries(m.services)) {
    const key = `services.${name}`
    try {
      const u = new URL(s.url)
      if (u.username !== '' || u.password !== '') throw invalid(`config key ${key}.url: credentials belong in ${key}.credentials, not in the URL`, `${key}.url`)
    } catch (err) {
      if ((err as { code?: string }).code === 'PORTCULLIS_CONFIG_INVALID') throw err
      throw invalid(`config key ${key}.url: ${JSON.stringify(s.url)} is not a valid URL`, `${key}.url`)
    }
    const c = s.credentials
    if (c?.bearer !== undefined && c.client_tls !== undefined) {
      throw invalid(`config key ${key}.credentials: at most one credential method (bearer or client_tls), as in OPA`, `${key}.credentials`)
    }
    const b = c?.bearer
    if (b !== undefined && (b.token === undefined) === (b.token_path === undefined)) {
      throw invalid(`config key ${key}.credentials.bearer: exactly one of token or token_path`, `${key}.credentials.bearer`)
    }
    if (c?.client_tls !== undefined && !s.url.toLowerCase().startsWith('https://')) {
      throw invalid(`config key ${key}.credentials.client_tls: needs an https:// url`, `${key}.credentials.client_tls`)
    }
  }
  for (const [id, k] of Object.entries(m.keys)) {
    if (k.key === undefined && k.key_file === undefined) throw invalid(`config key keys.${id}: needs key or key_file`, `keys.${id}`)
    if (Object.hasOwn(m.bundles.signing.keys, id)) throw invalid(`config key keys.${id}: key id ${JSON.stringify(id)} is also configured in bundles.signing.keys`, `keys.${id}`)
  }
  for (const [name, b] of Object.entries(remoteBundles(m.bundles))) {
    const key = `bundles.${name}`
    if (!Object.hasOwn(m.services, b.service)) {
      throw invalid(`config key ${key}.service: no service named ${JSON.stringify(b.service)} in services`, `${key}.service`)
    }
    if (b.polling.min_delay_seconds > b.polling.max_delay_seconds) {
      throw invalid(`config key ${key}.polling: min_delay_seconds (${b.polling.min_delay_seconds}) is larger than max_delay_seconds (${b.polling.max_delay_seconds})`, `${key}.polling.min_delay_seconds`)
    }
    for (const [i, pattern] of (b.signing?.exclude_files ?? []).entries()) {
      const hit = DECISIVE_PROBE_NAMES.find((n) => excludeMatcher([pattern])(n))
      if (hit !== undefined) {
        throw invalid(`config key ${key}.signing.exclude_files[${i}]: pattern ${JSON.stringify(pattern)} matches ${hit}; the manifest, wasm modules, data files and Rego files decide the outcome and must stay signed`, `${key}.signing.exclude_files`)
      }
    }
    const keyid = b.signing?.keyid
    if (keyid !== undefined && keyid !== '' && !Object.hasOwn(m.keys, keyid) && !Object.hasOwn(m.bundles.signing.keys, keyid)) {
      throw invalid(`config key ${key}.signing.keyid: no key ${JSON.stringify(keyid)} in keys or bundles.signing.keys`, `${key}.signing.keyid`)
    }
  }
}

/** Makes the section's file paths absolute against `base` (the config file's directory). Mutates `m`. */
export function resolveBundleService (m: Config, base: string): void {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p))
  m.persistence_directory = abs(m.persistence_directory)
  for (const s of Object.values(m.services)) {
    s.url = s.url.replace(/\/+$/, '')
    const bearer = s.credentials?.bearer
    if (bearer?.token_path !== undefined) bearer.token_path = abs(bearer.token_path)
    const tls = s.credentials?.client_tls
    if (tls !== undefined) {
      tls.cert = abs(tls.cert)
      tls.private_key = abs(tls.private_key)
    }
    if (s.tls?.ca_cert !== undefined) s.tls.ca_cert = abs(s.tls.ca_cert)
  }
  for (const k of Object.values(m.keys)) {
    if (k.key_file !== undefined) k.key_file = abs(k.key_file)
  }
}
