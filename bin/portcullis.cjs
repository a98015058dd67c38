#!/usr/bin/env node
// @ts-check
/**
 * The `portcullis` command and `npm start`'s entry: runs the bundled build (dist/portcullis.cjs,
 * scripts/build-bundle.mjs) with V8's code cache for it (dist/portcullis.cjs.cache), or, when
 * there is no bundle, or an older one than tsc's output (only tsc has run), the tsc output
 * dist/cli/main.js as before.
 *
 * Why (issue 12, time to serve): Node spends most of a server's start loading modules —
 * resolving and reading hundreds of files and compiling each. One bundled file is resolved and
 * read once, and with the code cache (the technique of the v8-compile-cache package: the source
 * compiled by `vm.Script` with `cachedData`) V8 does not compile what the start runs.
 *
 * The cache is an optimisation only, never a reason not to start: a missing or unreadable cache
 * file compiles from source, and V8 rejects a cache made by another Node/V8 version or with
 * other flags (`script.cachedDataRejected`) and compiles from source too. Cluster workers
 * (`serve --workers N`) are forked on process.argv[1], i.e. this file, so they load the same way.
 */
'use strict'
const { readFileSync, statSync, writeFileSync } = require('node:fs')
const Module = require('node:module')
const { join } = require('node:path')
const { pathToFileURL } = require('node:url')
const vm = require('node:vm')

const dist = join(__dirname, '..', 'dist')
const bundle = join(dist, 'portcullis.cjs')

const main = join(dist, 'cli', 'main.js')

/**
 * @returns {string | undefined} the bundle's source, or undefined when there is none or it is
 * older than dist/cli/main.js (tsc ran after the last full build: the bundle would run old code)
 */
function readBundle () {
  let source
  try {
    // The build writes ASCII only (scripts/build-bundle.mjs): latin1 is the same text, read without decoding UTF-8.
    source = readFileSync(bundle, 'latin1')
  } catch {
    return undefined
  }
  try {
    if (statSync(main).mtimeMs > statSync(bundle).mtimeMs) return undefined
  } catch { /* no dist/cli/main.js (a package of the bundle alone): the bundle it is */ }
  return source
}

/** @returns {Buffer | undefined} the code cache written by the build, if any */
function readCache () {
  try {
    return readFileSync(`${bundle}.cache`)
  } catch {
    return undefined
  }
}

/**
 * Compiles the bundle's source as a CommonJS module body (the wrapper Node's own loader uses),
 * with `cachedData` when given. V8 checks a cache against its version, flags and the source and
 * rejects one that does not fit (`script.cachedDataRejected`); the script is then compiled from
 * source, as without a cache.
 * @param {string} source
 * @param {Buffer | undefined} cachedData
 * @returns {vm.Script}
 */
function compileBundle (source, cachedData) {
  // A hashbang is valid only at the very start of a script; keep the line, so line numbers stay.
  const body = source.startsWith('#!') ? `//${source.slice(2)}` : source
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${body}\n});`
  /** @type {vm.ScriptOptions} */
  const options = { filename: bundle }
  // The bundle has no import() of its own (esbuild turns them into lazy initialisers); should a
  // dependency have one, Node's default loader serves it, as in a file Node loaded itself.
  const defaultLoader = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER
  if (defaultLoader !== undefined) options.importModuleDynamically = defaultLoader
  if (cachedData !== undefined) {
    try {
      return new vm.Script(wrapped, { ...options, cachedData })
    } catch { /* a cache V8 could not even take: compile from source */ }
  }
  return new vm.Script(wrapped, options)
}

/**
 * Runs the bundle as a module of its own and returns its exports. In build mode
 * (PORTCULLIS_WRITE_CODE_CACHE=<file>, scripts/build-bundle.mjs) it compiles without a cache
 * and writes V8's cache for everything compiled by the time the process exits.
 * @param {string} source
 * @returns {{ runCli: () => void }}
 */
function runBundle (source) {
  const writeTo = process.env.PORTCULLIS_WRITE_CODE_CACHE
  delete process.env.PORTCULLIS_WRITE_CODE_CACHE
  const script = compileBundle(source, writeTo === undefined ? readCache() : undefined)
  if (writeTo !== undefined) process.once('exit', () => { writeFileSync(writeTo, script.createCachedData()) })
  const mod = new Module(bundle, module)
  mod.filename = bundle
  // @ts-expect-error Module._nodeModulePaths is internal but long stable (v8-compile-cache uses it too)
  mod.paths = Module._nodeModulePaths(dist)
  const fn = script.runInThisContext({ displayErrors: true })
  fn.call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, dist)
  mod.loaded = true
  return mod.exports
}

function start () {
  const source = readBundle()
  if (source !== undefined) {
    runBundle(source).runCli()
    return
  }
  import(pathToFileURL(main).href).then((m) => { m.runCli() }, (err) => {
    process.stderr.write(`PORTCULLIS_INTERNAL: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = 2 // EXIT_ERROR (src/cli/args.ts)
  })
}

// Run as the command (also in each forked cluster worker); required, it only lends its
// compileBundle to test/cli/launcher.test.ts.
if (require.main === module) start()
module.exports = { bundle, compileBundle, readCache }
