/**
 * OPA's `services` section: OPA accepts a mapping (name → service) or a list of services each
 * carrying its `name`. Both forms are read; the validated configuration holds the mapping.
 * Credential and CA file paths are resolved against the configuration file's directory.
 */
import { isAbsolute, resolve } from 'node:path'
import type { ServiceConfig } from './schema.js'
import { configInvalid as invalid } from './validate.js'

/** The list form into the mapping form, before validation. Anything else is left for the schema to judge. */
export function prepareServices (raw: unknown): unknown {
  if (!Array.isArray(raw)) return raw
  const out: Record<string, unknown> = {}
  raw.forEach((svc: unknown, i) => {
    const name = svc !== null && typeof svc === 'object' ? (svc as { name?: unknown }).name : undefined
    if (typeof name !== 'string' || name === '') throw invalid(`config key services[${i}].name is required in the list form of services`, `services[${i}].name`)
    if (Object.hasOwn(out, name)) throw invalid(`config key services[${i}].name: service ${JSON.stringify(name)} is named twice`, `services[${i}].name`)
    out[name] = svc
  })
  return out
}

/** File paths made absolute (after validation). */
export function resolveServices (services: Record<string, ServiceConfig>, base: string): void {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p))
  for (const svc of Object.values(services)) {
    const bearer = svc.credentials?.bearer
    if (bearer?.token_path !== undefined) bearer.token_path = abs(bearer.token_path)
    const ctls = svc.credentials?.client_tls
    if (ctls !== undefined) { ctls.cert = abs(ctls.cert); ctls.private_key = abs(ctls.private_key) }
    if (svc.tls?.ca_cert !== undefined) svc.tls.ca_cert = abs(svc.tls.ca_cert)
  }
}
