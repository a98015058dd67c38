/**
 * Schema validation shared by the whole configuration and by the identity section on its own:
 * Ajv over the TypeBox schema, and its errors turned into PORTCULLIS_CONFIG_INVALID naming the
 * offending key (`identity.jwt_svid.algorithms[0]`).
 */
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Ajv, ErrorObject, Options, ValidateFunction } from 'ajv'
import type { TSchema } from '@sinclair/typebox'
import { PortcullisError } from '../errors.js'

// `code.optimize: false`: Ajv's optimisation pass only simplifies the generated code (same
// checks, same errors); for validators that run once per start it costs more than it saves
// (compiling the configuration schema took about twice as long with it).
export const AJV_OPTIONS: Options = { allErrors: true, strict: false, code: { optimize: false } }
const require = createRequire(import.meta.url)
let ajv: Ajv | undefined

/** Compiles a validator; Ajv itself is loaded on the first call (a process with the build's precompiled validator never needs it). */
export function compile (schema: TSchema): ValidateFunction {
  ajv ??= new (require('ajv') as { Ajv: new (o: Options) => Ajv }).Ajv(AJV_OPTIONS)
  return ajv.compile(schema)
}

/**
 * What a precompiled validator was generated from: the schema, the Ajv options and Ajv's
 * version. A validator whose digest differs from the running code's is stale and not used.
 */
export function validatorDigest (schema: TSchema): string {
  const version = (require('ajv/package.json') as { version: string }).version
  return createHash('sha256').update(JSON.stringify({ ajv: version, options: AJV_OPTIONS, schema })).digest('hex')
}

/**
 * A validator generated at build time (Ajv standalone code, scripts/build-config-validator.mjs
 * writes it next to the compiled config/ files), when `file` exists and was generated from this
 * very schema; otherwise undefined and the caller compiles. Compiling the configuration schema
 * is a noticeable part of every process start (the primary and each worker validate the
 * configuration), loading the generated code is not. Under tsx (tests) there is no such file.
 */
export function precompiledValidator (file: URL | { validate?: unknown, digest?: unknown }, schema: TSchema): ValidateFunction | undefined {
  let mod: { validate?: unknown, digest?: unknown }
  try {
    // a URL, or the module itself (compiled into the bundled build: src/config/load.ts)
    mod = file instanceof URL ? require(fileURLToPath(file)) as typeof mod : file
  } catch {
    return undefined
  }
  if (typeof mod.validate !== 'function' || mod.digest !== validatorDigest(schema)) return undefined
  return mod.validate as ValidateFunction
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
