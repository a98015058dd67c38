/**
 * The build's precompiled configuration validator (src/config/precompile.ts, written by
 * scripts/build-config-validator.mjs): used only when generated from the running schema, and
 * then judging every configuration exactly as the validator compiled at start does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { loadConfig } from '../../src/config/load.js'
import { ConfigSchema, IdentitySchema } from '../../src/config/schema.js'
import { validatorModuleSource } from '../../src/config/precompile.js'
import { assertValid, compile, precompiledValidator } from '../../src/config/validate.js'
import { tempDir } from '../helpers/opa.js'

/**
 * A directory laid out as an installed package (its node_modules beside it), as dist/config/ is:
 * the generated code requires Ajv's runtime helpers by package name.
 */
function packageDir (t: Parameters<typeof tempDir>[0]): string {
  const root = tempDir(t)
  symlinkSync(join(process.cwd(), 'node_modules'), join(root, 'node_modules'))
  const dir = join(root, 'dist', 'config')
  mkdirSync(dir, { recursive: true })
  return dir
}

function written (dir: string, name: string, source: string): URL {
  const f = join(dir, name)
  writeFileSync(f, source)
  return pathToFileURL(f)
}

/** The code and key assertValid throws (undefined when valid). */
function verdict (validate: Parameters<typeof assertValid>[0], data: unknown): { code: string, key: string } | undefined {
  try {
    assertValid(validate, data)
    return undefined
  } catch (err) {
    const e = err as { code: string, details: { key: string } }
    return { code: e.code, key: e.details.key }
  }
}

test('a validator generated from this schema is used; one from another schema, or none, is not', (t) => {
  const dir = packageDir(t)
  const current = written(dir, 'current.cjs', validatorModuleSource(ConfigSchema))
  assert.equal(typeof precompiledValidator(current, ConfigSchema), 'function')
  // stale: generated from a different schema (as after an edit of schema.ts without a rebuild)
  const stale = written(dir, 'stale.cjs', validatorModuleSource(IdentitySchema))
  assert.equal(precompiledValidator(stale, ConfigSchema), undefined)
  assert.equal(precompiledValidator(pathToFileURL(join(dir, 'absent.cjs')), ConfigSchema), undefined)
  const broken = written(dir, 'broken.cjs', 'module.exports = {')
  assert.equal(precompiledValidator(broken, ConfigSchema), undefined)
  // the module itself, as the bundled build passes it (compiled in): the same digest check
  const load = createRequire(import.meta.url)
  assert.equal(typeof precompiledValidator(load(fileURLToPath(current)) as object, ConfigSchema), 'function')
  assert.equal(precompiledValidator(load(fileURLToPath(stale)) as object, ConfigSchema), undefined)
  assert.equal(precompiledValidator({}, ConfigSchema), undefined)
})

test('the generated validator judges configurations as the compiled one does, errors included', (t) => {
  const pre = precompiledValidator(written(packageDir(t), 'v.cjs', validatorModuleSource(ConfigSchema)), ConfigSchema)
  assert.ok(pre !== undefined)
  const compiled = compile(ConfigSchema)
  const base = structuredClone(loadConfig({ env: {} })) as unknown as Record<string, Record<string, unknown>>
  const variants: Array<[string, (c: Record<string, Record<string, unknown>>) => void]> = [
    ['the defaults', () => {}],
    ['an unknown key', (c) => { (c.server as Record<string, unknown>).adress = '127.0.0.1:1' }],
    ['a wrong type', (c) => { (c.server as Record<string, unknown>).workers = 'two' }],
    ['a number below its minimum', (c) => { (c.cache as Record<string, unknown>).max_entries = -1 }],
    ['a value outside its enumeration', (c) => { (c.audit as Record<string, unknown>).durability = 'sometimes' }],
    ['a missing required section', (c) => { delete (c as Record<string, unknown>).logging }],
    ['a bad trust domain name', (c) => { (c as Record<string, unknown>).identity = { trust_domains: { 'Bad Name!': {} } } }],
    ['several errors at once', (c) => { (c.server as Record<string, unknown>).addr = 5; (c.cache as Record<string, unknown>).enabled = 'yes' }],
  ]
  let invalid = 0
  for (const [name, change] of variants) {
    const c = structuredClone(base)
    change(c)
    const a = compiled(c)
    const b: boolean = pre(c) as boolean
    assert.equal(b, a, name)
    assert.deepEqual(pre.errors ?? null, compiled.errors ?? null, name)
    assert.deepEqual(verdict(pre, c), verdict(compiled, c), name)
    if (!a) invalid++
  }
  assert.equal(invalid, variants.length - 1)
})
