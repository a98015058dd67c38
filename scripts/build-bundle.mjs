#!/usr/bin/env node
/**
 * Writes dist/portcullis.cjs: the CLI (dist/cli/main.js and everything it imports, the npm
 * dependencies included) as one CommonJS file, and dist/portcullis.cjs.cache: V8's code cache
 * for it, taken from a warmed-up server. Run by `npm run build` and `prepare` after tsc.
 *
 * Why (issue 12, time to serve): most of a server's start was Node loading modules — resolving
 * and reading some hundreds of files and compiling each. One file resolves once, and the code
 * cache lets the launcher (bin/portcullis.cjs) skip compiling what the start runs.
 *
 * What stays outside the bundle:
 * - the worker-thread entries (policy/data-image-worker.js, bundles/canonical-hash-worker.js):
 *   a worker runs the tsc-emitted file beside its caller, as without the bundle;
 * - what the code loads with its own `createRequire(import.meta.url)` (Ajv, opa-wasm, graphql,
 *   the generated config validator): esbuild does not follow such a require, Node resolves it
 *   at run time from the caller's place in dist/;
 * - the gRPC packages (EXTERNAL): they read their .proto files beside their own code
 *   (`__dirname`), which in a bundle would be dist/. They are loaded only with an Envoy gRPC
 *   listener or the Workload API, and then by Node from node_modules. The build fails if any
 *   other bundled code uses `__dirname`/`__filename`.
 * Every `import.meta.url` is replaced by the URL its module has in dist/, computed from the
 * bundle's own directory at run time (the package may be installed anywhere), so
 * `new URL('../package.json', import.meta.url)`, the proto and ui/dist folders, worker files
 * and createRequire resolve exactly the files they resolve unbundled. The dynamic `import()`s
 * (commands, listeners, audit, console) become esbuild's lazy `__esm` initialisers: in the
 * file, but evaluated only when the import runs, as before.
 */
import { build } from 'esbuild'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const outfile = join(dist, 'portcullis.cjs')
const cacheFile = `${outfile}.cache`
const entry = join(dist, 'cli', 'main.js')
if (!existsSync(entry)) throw new Error('build-bundle: dist/cli/main.js is missing; run tsc first')
rmSync(outfile, { force: true })
rmSync(cacheFile, { force: true })

/** Packages Node loads from node_modules at run time (see above). */
const EXTERNAL = ['@grpc/grpc-js', '@grpc/proto-loader', '@grpc/reflection', 'grpc-health-check']

/** The bundle's banner defines this: the file URL of dist/ (with a trailing slash). */
const DIST_URL = '__portcullisDistUrl'

/** Replaces `import.meta.url` in each dist/ module by its unbundled URL. */
const importMetaUrl = {
  name: 'import-meta-url',
  setup (b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(dist + sep)) return undefined
      const text = readFileSync(args.path, 'utf8')
      if (!text.includes('import.meta.url')) return undefined
      const rel = relative(dist, args.path).split(sep).join('/')
      return { contents: text.replaceAll('import.meta.url', `(${DIST_URL} + ${JSON.stringify(rel)})`), loader: 'js' }
    })
  },
}

/**
 * Bundles dist/cli/main.js into `outfile` and checks the result. The code the build generates is
 * compiled in, so that it is in the code cache too: the configuration validator
 * (dist/config/config-validator.cjs) as src/config/load.ts's __PORTCULLIS_CONFIG_VALIDATOR__, and
 * with `routeCode` the recorded route schema code (dist/server/route-code.cjs) as
 * src/server/route-code.ts's __PORTCULLIS_ROUTE_CODE__ (without, that is undefined). Both are
 * still used only when their digests match the running code.
 */
async function bundle (routeCode) {
  const inject = join(dist, 'bundle-inject.mjs')
  const lines = ["import * as configValidator from './config/config-validator.cjs'", 'export const __PORTCULLIS_CONFIG_VALIDATOR__ = configValidator']
  if (routeCode) lines.push("import routeCode from './server/route-code.cjs'", 'export { routeCode as __PORTCULLIS_ROUTE_CODE__ }')
  writeFileSync(inject, lines.join('\n') + '\n')
  let result
  try {
    result = await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      plugins: [importMetaUrl],
      external: EXTERNAL,
      banner: { js: `'use strict';\nconst ${DIST_URL} = require('node:url').pathToFileURL(__dirname + '/').href;` },
      // `import.meta.resolve` remains only in worker-thread.ts's branch for TypeScript sources (tsx), never taken from the build.
      logOverride: { 'empty-import-meta': 'silent' },
      legalComments: 'eof',
      metafile: true,
      logLevel: 'warning',
      inject: [inject],
      ...(routeCode ? {} : { define: { __PORTCULLIS_ROUTE_CODE__: 'undefined' } }),
    })
  } finally {
    rmSync(inject, { force: true })
  }
  // ASCII only, so the launcher can read it as latin1 (a one-byte string, no UTF-8 decoding of
  // megabytes at every start). esbuild escapes non-ASCII characters in code; what it leaves are
  // comments, escaped here the same way.
  const text = readFileSync(outfile, 'utf8')
  if (/[^\x00-\x7f]/.test(text)) writeFileSync(outfile, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
  const inputs = Object.keys(result.metafile.inputs)
  for (const worker of ['policy/data-image-worker.js', 'bundles/canonical-hash-worker.js']) {
    if (inputs.includes(`dist/${worker}`)) throw new Error(`build-bundle: the worker entry ${worker} was bundled; it must stay a file of its own`)
  }
  // Bundled code that finds files beside itself would look in dist/; pino's transports (thread-stream
  // workers) are the known case, unused here (Portcullis logs to stdout, no transport).
  const dirUsers = new Set()
  let from = ''
  for (const line of readFileSync(outfile, 'utf8').split('\n')) {
    if (line.startsWith('// ')) from = line.slice(3)
    else if (/\b__(dirname|filename)\b/.test(line) && !line.includes(DIST_URL) && !/node_modules\/(pino|thread-stream)\//.test(from)) dirUsers.add(from)
  }
  if (dirUsers.size > 0) throw new Error(`build-bundle: bundled code uses __dirname/__filename, which would point into dist/: ${[...dirUsers].join(', ')} — add the package to EXTERNAL`)
}

// The bundle, then two warm-up runs of it as a server against the repository's bundles/, each
// until it has answered /health and decisions:
// 1. fastify's route schemas recorded as standalone code (src/server/route-code.ts,
//    PORTCULLIS_WRITE_ROUTE_CODE) into dist/server/route-code.cjs, which is then bundled in;
// 2. V8's code cache for everything the start compiled, the route code included (the launcher,
//    PORTCULLIS_WRITE_CODE_CACHE).
// A failure leaves no route code or no cache, which only costs the start the time they save
// (both are optional at run time), so it warns, not fails.
const routeCode = join(dist, 'server', 'route-code.cjs')
rmSync(routeCode, { force: true })
await bundle(false)
try {
  await warm({ PORTCULLIS_WRITE_ROUTE_CODE: routeCode }, routeCode)
  await bundle(true)
  await warm({ PORTCULLIS_WRITE_CODE_CACHE: cacheFile }, cacheFile)
  console.log(`build-bundle: ${relative(root, outfile)} (${Math.round(readFileSync(outfile).length / 1024)} KiB), code cache ${Math.round(readFileSync(cacheFile).length / 1024)} KiB, route code ${Math.round(readFileSync(routeCode).length / 1024)} KiB`)
} catch (err) {
  rmSync(cacheFile, { force: true })
  console.warn(`build-bundle: ${err.message}; the launcher compiles the bundle (or the route schemas) at each start`)
}

async function freePort () {
  const s = createServer()
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise((resolve) => s.close(resolve))
  return port
}

/** Runs the bundle's server with `env` until it has answered requests, stops it and checks that it wrote `expect`. */
async function warm (env, expect) {
  const tmp = mkdtempSync(join(tmpdir(), 'portcullis-warm-'))
  try {
    const port = await freePort()
    const config = join(tmp, 'warm.yaml')
    writeFileSync(config, `server: { addr: "127.0.0.1:${port}", workers: 1 }\nlogging: { level: error }\nbundles: { dir: ${JSON.stringify(join(root, 'bundles'))} }\n`)
    const child = spawn(process.execPath, [join(root, 'bin', 'portcullis.cjs'), 'serve', '--config', config], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    try {
      const base = `http://127.0.0.1:${port}`
      const deadline = Date.now() + 60_000
      let ready = false
      while (!ready && Date.now() < deadline) {
        try {
          ready = (await fetch(`${base}/health`)).status === 200
        } catch { /* not listening yet */ }
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      if (!ready) throw new Error('the warm-up server did not become healthy within 60 s')
      // A few decisions and the usual reads, so their code is compiled (and cached) too.
      const input = { service: 'orders', method: 'GET', path: '/orders/1' }
      for (let i = 0; i < 20; i++) {
        await (await fetch(`${base}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) })).arrayBuffer()
        await (await fetch(`${base}/v1/data/authz/allow?input=${encodeURIComponent(JSON.stringify(input))}`)).arrayBuffer()
        await (await fetch(`${base}/health`)).arrayBuffer()
      }
      await (await fetch(`${base}/metrics`)).arrayBuffer()
    } finally {
      child.kill('SIGTERM')
    }
    const { code, signal } = await exited
    if (code !== 0) throw new Error(`the warm-up server exited with ${code ?? signal}`)
    if (!existsSync(expect)) throw new Error(`the warm-up server did not write ${relative(root, expect)}`)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}
