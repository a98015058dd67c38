/**
 * Writes dist/config/config-validator.cjs: the configuration schema's validator as Ajv
 * standalone code, so a process loads it instead of compiling the schema at every start
 * (src/config/validate.ts precompiledValidator; it is used only when its digest matches the
 * schema, Ajv options and Ajv version of the build beside it). Run by `npm run build` after tsc.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dist = new URL('../dist/config/', import.meta.url)
const { ConfigSchema } = await import(new URL('schema.js', dist).href)
const { validatorModuleSource } = await import(new URL('precompile.js', dist).href)
writeFileSync(fileURLToPath(new URL('config-validator.cjs', dist)), validatorModuleSource(ConfigSchema))
