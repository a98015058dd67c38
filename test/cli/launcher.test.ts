/**
 * The built launcher (bin/portcullis.cjs, `npm start` and the `portcullis` command) as users run
 * it: a package copy built here the way `npm run build` builds it (tsc into dist/, the config
 * validator, then scripts/build-bundle.mjs: the one-file bundle and its V8 code cache, taken from
 * a warm-up server), then served as real processes over the wire. Built in a copy rather than in
 * the repository's dist/ so that no other test's `npm run build` can change it underneath.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Script } from 'node:vm'
import { repoRoot } from '../../scripts/lib/opa.js'

const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'

interface Launcher {
  bundle: string
  compileBundle: (source: string, cachedData: Buffer | undefined) => Script
  readCache: () => Buffer | undefined
}

describe('bin/portcullis.cjs: the bundled build with its code cache', () => {
  let app: string
  let launcher: string
  let bundle: string
  let main: string

  before(() => {
    app = join(mkdtempSync(join(tmpdir(), 'portcullis-launcher-')), 'app')
    mkdirSync(join(app, 'scripts'), { recursive: true })
    for (const p of ['package.json', 'bin', 'bundles', 'proto', 'examples/demo-trust-domain', 'scripts/build-config-validator.mjs', 'scripts/build-bundle.mjs']) {
      cpSync(join(repoRoot, p), join(app, p), { recursive: true })
    }
    symlinkSync(realpathSync(join(repoRoot, 'node_modules')), join(app, 'node_modules'))
    // `npm run build`, step by step, in the copy
    const steps: string[][] = [
      [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(app, 'dist')],
      [join(app, 'scripts', 'build-config-validator.mjs')],
      [join(app, 'scripts', 'build-bundle.mjs')],
    ]
    for (const step of steps) {
      const r = spawnSync(process.execPath, step, { cwd: app, encoding: 'utf8', timeout: 300_000 })
      assert.equal(r.status, 0, `${step.join(' ')}: ${r.stdout}${r.stderr}`)
    }
    launcher = join(app, 'bin', 'portcullis.cjs')
    bundle = join(app, 'dist', 'portcullis.cjs')
    main = join(app, 'dist', 'cli', 'main.js')
  })
  after(() => { rmSync(join(app, '..'), { recursive: true, force: true }) })

  /** Runs the launcher to completion. */
  const run = (args: string[]): { status: number | null, stdout: string, stderr: string } =>
    spawnSync(process.execPath, [launcher, ...args], { cwd: app, encoding: 'utf8', timeout: 60_000 })

  test('the build writes the bundle, the route code and a code cache that this Node accepts (a foreign one it rejects)', () => {
    const l = createRequire(import.meta.url)(launcher) as Launcher
    assert.equal(l.bundle, bundle)
    const source = readFileSync(bundle, 'utf8')
    assert.doesNotMatch(source, /[^\x00-\x7f]/, 'ASCII only: the launcher reads it as latin1')
    const cache = l.readCache()
    assert.ok(cache !== undefined && cache.length > 0, 'dist/portcullis.cjs.cache')
    assert.equal(l.compileBundle(source, cache).cachedDataRejected, false)
    assert.equal(l.compileBundle(source, Buffer.from('not a V8 code cache')).cachedDataRejected, true)
    // the route schemas as build-time code (src/server/route-code.ts), recorded by the warm-up server
    const routeCode = readFileSync(join(app, 'dist', 'server', 'route-code.cjs'), 'utf8')
    assert.match(routeCode, /"validator:[0-9a-f]{64}"/)
    assert.match(routeCode, /"serializer:[0-9a-f]{64}"/)
    // the worker-thread entries stay files of their own, beside their callers
    for (const w of ['policy/data-image-worker.js', 'bundles/canonical-hash-worker.js']) assert.ok(existsSync(join(app, 'dist', w)), w)
  })

  test('from the bundle alone: a worker group (each forked worker runs the launcher) serves /health and decisions, then stops on SIGTERM', async (t) => {
    // Without dist/cli/main.js only the bundle can serve: nothing falls back to the tsc output.
    renameSync(main, `${main}.aside`)
    t.after(() => { renameSync(`${main}.aside`, main) })
    // a JWT-SVID of the demo trust domain, issued by the launcher too (its --demo keys are found
    // from the bundle through the replaced import.meta.url, as from dist/cli/identity-issue.js)
    const issued = run(['identity', 'issue', '--jwt', '--demo', '--spiffe-id', FRONTEND])
    assert.equal(issued.status, 0, issued.stderr)
    const token = issued.stdout.trim()
    const config = join(app, 'serve.yaml')
    writeFileSync(config, [
      'server: { addr: "127.0.0.1:0", workers: 2 }',
      'logging: { level: info }',
      `bundles: { dir: ${JSON.stringify(join(app, 'bundles'))}, watch: false }`,
      'identity:',
      '  on_missing: deny',
      `  trust_domains: { example.org: { spiffe_bundles: [${JSON.stringify(join(app, 'examples', 'demo-trust-domain', 'demo-only-bundle.json'))}] } }`,
      '  jwt_svid: { audiences: [portcullis] }',
      '',
    ].join('\n'))
    const child = spawn(process.execPath, [launcher, 'serve', '--config', config], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let output = ''
    child.stderr.on('data', (b: Buffer) => { output += b.toString() })
    const listening: Array<{ pid: number, url: string }> = []
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`the worker group did not start within 60 s:\n${output}`)) }, 60_000)
      let buf = ''
      child.stdout.on('data', (b: Buffer) => {
        output += b.toString()
        buf += b.toString()
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          let rec: { msg?: unknown, pid?: unknown, url?: unknown }
          try { rec = JSON.parse(line) as typeof rec } catch { continue }
          if (rec.msg === 'portcullis listening' && typeof rec.url === 'string') listening.push({ pid: Number(rec.pid), url: rec.url })
          if (listening.length === 2) { clearTimeout(timer); resolve() }
        }
      })
      void exited.then((code) => { clearTimeout(timer); reject(new Error(`serve exited early with ${String(code)}:\n${output}`)) })
    })
    assert.notEqual(listening[0]?.pid, listening[1]?.pid, 'two worker processes')
    assert.notEqual(listening[0]?.pid, child.pid, 'forked workers, not the primary, serve')
    const url = listening[0]?.url as string
    assert.equal((await fetch(`${url}/health`)).status, 200)
    const decide = async (method: string, headers: Record<string, string>): Promise<{ result?: unknown, portcullis_code?: string }> => {
      const r = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ input: { service: 'orders', method, path: '/orders/42' } }) })
      return await r.json() as { result?: unknown, portcullis_code?: string }
    }
    const bearer = { authorization: `Bearer ${token}` }
    for (let i = 0; i < 4; i++) { // over new connections, so both workers are likely asked
      assert.equal((await decide('GET', { ...bearer, connection: 'close' })).result, true)
      assert.equal((await decide('DELETE', { ...bearer, connection: 'close' })).result, false)
    }
    assert.equal((await decide('GET', {})).portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
    child.kill('SIGTERM')
    assert.equal(await exited, 0, output)
  })

  test('a corrupt code cache, no bundle or a bundle older than dist/cli/main.js: the CLI still runs (compiled from source, or the tsc output)', (t) => {
    const inspect = (): void => {
      const r = run(['bundle', 'inspect', join(app, 'bundles', 'authz.tar.gz')])
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, /authz\/allow/)
    }
    const cache = `${bundle}.cache`
    const saved = { bundle: readFileSync(bundle), cache: readFileSync(cache) }
    t.after(() => {
      writeFileSync(bundle, saved.bundle)
      writeFileSync(cache, saved.cache)
    })
    writeFileSync(cache, 'not a V8 code cache')
    inspect()
    rmSync(cache)
    inspect()
    // a stand-in bundle that says when it runs: used while it is newer than main.js, not once tsc has run after it
    writeFileSync(bundle, 'module.exports = { runCli () { process.stdout.write("STAND-IN BUNDLE RAN\\n") } }\n')
    const now = Date.now() / 1000
    utimesSync(main, now - 60, now - 60)
    utimesSync(bundle, now, now)
    assert.equal(run(['--help']).stdout, 'STAND-IN BUNDLE RAN\n')
    utimesSync(bundle, now - 120, now - 120)
    inspect()
    rmSync(bundle)
    inspect()
  })
})
