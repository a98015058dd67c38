/**
 * Build-time generation of the configuration validator (Ajv standalone code): the same checks
 * and errors as `compile()` in validate.ts, written as a CommonJS module that a process loads
 * instead of compiling the schema at start. Used by scripts/build-config-validator.mjs and its
 * test only; nothing at run time imports this file.
 */
import { Ajv } from 'ajv'
import standaloneCode from 'ajv/dist/standalone/index.js'
import type { TSchema } from '@sinclair/typebox'
import { AJV_OPTIONS, validatorDigest } from './validate.js'

/** The generated module's source: `validate` (an Ajv ValidateFunction) and the `digest` it was made from. */
export function validatorModuleSource (schema: TSchema): string {
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { ...AJV_OPTIONS.code, source: true, esm: false } })
  const code = standaloneCode.default(ajv, ajv.compile(schema))
  // standalone code exports the one function as module.exports; the module we write exports it beside its digest
  return `${code}\nmodule.exports = { validate: module.exports, digest: ${JSON.stringify(validatorDigest(schema))} };\n`
}
