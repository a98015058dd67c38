/**
 * Schema validation shared by the whole configuration and by the identity section on its own:
 * Ajv over the TypeBox schema, and its errors turned into PORTCULLIS_CONFIG_INVALID naming the
 * offending key (`identity.jwt_svid.algorithms[0]`).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { TSchema } from '@sinclair/typebox'
import { PortcullisError } from '../errors.js'

// `code.optimize: false`: Ajv's optimisation pass only simplifies the generated code (same
// checks, same errors); for validators that run once per start it costs more than it saves
// (compiling the configuration schema took about twice as long with it).
const ajv = new Ajv({ allErrors: true, strict: false, code: { optimize: false } })

export function compile (schema: TSchema): ValidateFunction {
  return ajv.compile(schema)
}

export function configInvalid (message: string, key: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_CONFIG_INVALID', message, { key })
}

/**
 * The dotted key an Ajv error points at, with array indices as `[i]`. `data` is walked along
 * the JSON pointer so a record key that looks like a number stays a key.
 */
function keyOf (e: ErrorObject, data: unknown, prefix: string): string {
  let key = prefix
  let node = data
  const append = (seg: string): void => {
    if (Array.isArray(node)) key += `[${seg}]`
    else key += key === '' ? seg : `.${seg}`
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined
  }
  for (const raw of e.instancePath.split('/').slice(1)) append(raw.replaceAll('~1', '/').replaceAll('~0', '~'))
  const p = e.params as { additionalProperty?: string, missingProperty?: string, propertyName?: string }
  const extra = p.additionalProperty ?? p.missingProperty ?? p.propertyName
  if (extra !== undefined) append(extra)
  return key
}

function describe (e: ErrorObject, key: string): string {
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'additionalProperties': return `config key ${key} is not a known setting`
    case 'required': return `config key ${key} is required`
    case 'type': return `config key ${key}: expected ${String(p.type)}`
    case 'minimum': return `config key ${key}: expected a number >= ${String(p.limit)}`
    case 'maximum': return `config key ${key}: expected a number <= ${String(p.limit)}`
    case 'const':
    case 'anyOf': return `config key ${key}: expected one of the documented values`
    case 'propertyNames': return `config key ${key}: not a valid name here (a trust domain name is [a-z0-9.-_], at most 255 bytes)`
    case 'pattern': return `config key ${key}: does not match ${String(p.pattern)}`
    default: return `config key ${key}: ${e.message ?? 'invalid'}`
  }
}

/** Runs a compiled validator; throws PORTCULLIS_CONFIG_INVALID naming the first offending key. */
export function assertValid (validate: ValidateFunction, data: unknown, prefix = ''): void {
  if (validate(data)) return
  const errors = validate.errors ?? []
  // A bad property name (propertyNames) is reported by Ajv twice: the nested rule without the
  // name, then propertyNames with it. Keep the one that names the key.
  const named = new Set(errors.filter((e) => e.keyword === 'propertyNames').map((e) => e.instancePath))
  const keyed = errors
    .filter((e) => e.keyword === 'propertyNames' || !named.has(e.instancePath) || e.schemaPath.indexOf('/propertyNames/') === -1)
    .map((e) => ({ e, key: keyOf(e, data, prefix) }))
  throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', keyed.map(({ e, key }) => describe(e, key)).join('; '), { key: keyed[0]?.key ?? prefix })
}
