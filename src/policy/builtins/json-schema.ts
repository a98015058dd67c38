/**
 * json.verify_schema and json.match_schema (OPA v1/topdown/jsonschema.go over gojsonschema),
 * validated with ajv; errors are reported in gojsonschema's shape {error, type, field, desc}
 * for the keywords policies meet (type, required, enum, const, bounds, pattern, additionalProperties).
 */
import { createRequire } from 'node:module'
import type { ValidateFunction, ErrorObject } from 'ajv'
import type { BuiltinSpec } from './types.js'
import { BuiltinError, withLibrary } from './types.js'
import { ExactNumber } from './exact-json.js'
import { isObj } from './args.js'
import { goJson } from './json.js'

const require = createRequire(import.meta.url)
// ajv ships CommonJS; its default export is the constructor.
type SchemaCompiler = { compile: (s: unknown) => ValidateFunction }
let ajvInstance: SchemaCompiler | undefined
/** The schema compiler, made on the first json.verify_schema / json.match_schema call (not at every process start). */
function ajv (): SchemaCompiler {
  if (ajvInstance === undefined) {
    const AjvCtor = (require('ajv') as { default: new (opts: object) => SchemaCompiler }).default
    ajvInstance = new AjvCtor({ allErrors: true, strict: false, validateFormats: false, validateSchema: true })
  }
  return ajvInstance
}
const cache = new Map<string, ValidateFunction | string>()

const TYPES = new Set(['array', 'boolean', 'integer', 'number', 'null', 'object', 'string'])

function plain (v: unknown): unknown {
  if (v instanceof ExactNumber) return Number(v.text)
  if (Array.isArray(v)) return v.map(plain)
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  return v
}

/** The schema document from a JSON string or an object. */
function schemaDoc (b: string, x: unknown, pos: number): unknown {
  if (typeof x === 'string') {
    try {
      return JSON.parse(x)
    } catch {
      return new SchemaProblem('jsonschema: invalid JSON')
    }
  }
  if (isObj(x)) return plain(x)
  return new SchemaProblem('jsonschema: wrong type, expected string or object')
}

class SchemaProblem { constructor (readonly message: string) {} }

function firstBadType (s: unknown): string | undefined {
  if (Array.isArray(s)) { for (const e of s) { const r = firstBadType(e); if (r !== undefined) return r } return undefined }
  if (!isObj(s)) return undefined
  const t = s.type
  for (const x of Array.isArray(t) ? t : t === undefined ? [] : [t]) if (typeof x !== 'string' || !TYPES.has(x)) return String(x)
  for (const v of Object.values(s)) { const r = firstBadType(v); if (r !== undefined) return r }
  return undefined
}

function compile (schema: unknown): ValidateFunction | string {
  if (schema instanceof SchemaProblem) return schema.message
  const key = JSON.stringify(schema)
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  let out: ValidateFunction | string
  const bad = firstBadType(schema)
  if (bad !== undefined) {
    out = `jsonschema: has a primitive type that is NOT VALID -- given: /${bad}/ Expected valid values are:[array boolean integer number null object string]`
  } else {
    try {
      out = ajv().compile(isObj(schema) ? { ...schema, $schema: undefined, $id: undefined } : schema)
    } catch (err) {
      out = `jsonschema: ${(err as Error).message}`
    }
  }
  if (cache.size > 256) cache.clear()
  cache.set(key, out)
  return out
}

function jsonType (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function fieldOf (path: string): string {
  if (path === '') return '(Root)'
  return path.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~')).join('.')
}

function valueAt (doc: unknown, path: string): unknown {
  let cur = doc
  if (path === '') return cur
  for (const seg of path.slice(1).split('/')) cur = (cur as Record<string, unknown>)?.[seg.replaceAll('~1', '/').replaceAll('~0', '~')]
  return cur
}

const fmtNum = (n: unknown): string => String(n)

/** One ajv error as gojsonschema reports it. */
function goError (e: ErrorObject, doc: unknown): { error: string, type: string, field: string, desc: string } {
  let field = fieldOf(e.instancePath)
  let type = e.keyword
  let desc = e.message ?? ''
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'type': {
      type = 'invalid_type'
      const expected = Array.isArray(p.type) ? (p.type as string[]).join('/') : String(p.type)
      desc = `Invalid type. Expected: ${expected}, given: ${jsonType(valueAt(doc, e.instancePath))}`
      break
    }
    case 'required':
      type = 'required'
      desc = `${String(p.missingProperty)} is required`
      break
    case 'enum':
      type = 'enum'
      desc = `${field} must be one of the following: ${(e.schema as unknown[]).map((x) => goJson(x)).join(', ')}`
      break
    case 'const':
      type = 'const'
      desc = `${field} does not match: ${goJson(e.schema)}`
      break
    case 'minLength': type = 'string_gte'; desc = `String length must be greater than or equal to ${fmtNum(p.limit)}`; break
    case 'maxLength': type = 'string_lte'; desc = `String length must be less than or equal to ${fmtNum(p.limit)}`; break
    case 'minimum': type = 'number_gte'; desc = `Must be greater than or equal to ${fmtNum(p.limit)}`; break
    case 'maximum': type = 'number_lte'; desc = `Must be less than or equal to ${fmtNum(p.limit)}`; break
    case 'exclusiveMinimum': type = 'number_gt'; desc = `Must be greater than ${fmtNum(p.limit)}`; break
    case 'exclusiveMaximum': type = 'number_lt'; desc = `Must be less than ${fmtNum(p.limit)}`; break
    case 'pattern': type = 'pattern'; desc = `Does not match pattern '${String(p.pattern)}'`; break
    case 'minItems': type = 'array_min_items'; desc = `Array must have at least ${fmtNum(p.limit)} items`; break
    case 'maxItems': type = 'array_max_items'; desc = `Array must have at most ${fmtNum(p.limit)} items`; break
    case 'additionalProperties':
      type = 'additional_property_not_allowed'
      desc = `Additional property ${String(p.additionalProperty)} is not allowed`
      break
  }
  if (field === '') field = '(Root)'
  return { error: `${field}: ${desc}`, type, field, desc }
}

function documentOf (b: string, x: unknown): unknown {
  if (typeof x === 'string') {
    try {
      return JSON.parse(x)
    } catch {
      throw new BuiltinError(b, 'operand 1: invalid JSON')
    }
  }
  if (!isObj(x) && !Array.isArray(x)) throw new BuiltinError(b, 'operand 1 must be one of {string, object, array}')
  return plain(x)
}

const specs: BuiltinSpec[] = [
  {
    name: 'json.verify_schema',
    impl: (_ctx, [s]) => {
      const v = compile(schemaDoc('json.verify_schema', s, 1))
      return typeof v === 'string' ? [false, v] : [true, null]
    },
  },
  {
    name: 'json.match_schema',
    impl: (_ctx, [d, s]) => {
      const b = 'json.match_schema'
      const v = compile(schemaDoc(b, s, 2))
      if (typeof v === 'string') throw new BuiltinError(b, v)
      const doc = documentOf(b, d)
      if (v(doc)) return [true, []]
      return [false, (v.errors ?? []).map((e) => goError(e, doc))]
    },
  },
]

export const jsonSchemaBuiltins: BuiltinSpec[] = withLibrary(specs, 'ajv', ajv)
