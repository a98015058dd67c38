/**
 * deploy/Dockerfile, without Docker (it cannot be installed on the project's machines): its
 * instructions keep the image's invariants (multi-stage, production dependencies only in the
 * final stage, numeric non-root USER, a HEALTHCHECK on /health/live with node, the CLI's serve
 * as ENTRYPOINT, every COPY source in the repository and in the build context), and the
 * runtime stage is simulated on the host: the files it COPYs laid out in a temporary /app,
 * the production install it runs (`npm ci --omit=dev --ignore-scripts`, from the local npm
 * cache where it can), dist/ compiled as the build stage compiles it, then
 * the ENTRYPOINT (the launcher, bin/portcullis.cjs; with tsc's output alone it runs
 * dist/cli/main.js — the bundle it prefers is tested by test/cli/launcher.test.ts) started from
 * there answering health checks, the HEALTHCHECK's
 * own command, and a decision — so no devDependency is needed at run time.
 *
 * Not simulated: the base images themselves (distroless's /nodejs/bin/node is this host's
 * node here) and the read-only root filesystem (the tests run as root, whom file modes do not
 * stop); docs/deployment.md says how to check both with Docker.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, parse as parsePath } from 'node:path'
import { parse, stringify } from 'yaml'
import { repoRoot } from '../../scripts/lib/opa.js'
import { DEMO_FILES, demoTrustDomainDir } from '../../src/cli/identity-issue.js'
import { loadConfig } from '../../src/config/load.js'
import { issueJwtSvid, loadJwtSigningKey } from '../../src/identity/issue.js'
import { tempDir } from '../helpers/opa.js'

interface Instruction { cmd: string, args: string, line: number }
interface Stage { from: string, name: string | undefined, instructions: Instruction[] }

/**
 * The Dockerfile's instructions by stage: comments and parser directives dropped, `\`
 * continuations joined, ARGs declared before the first FROM substituted into FROM lines.
 */
function readDockerfile (text: string): Stage[] {
  const lines = text.split('\n')
  const instructions: Instruction[] = []
  let current = ''
  let start = 0
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string
    if (current === '' && /^\s*(#|$)/.test(raw)) continue
    if (current === '') start = i + 1
    if (raw.endsWith('\\')) { current += raw.slice(0, -1) + ' '; continue }
    current += raw
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(current)
    assert.ok(m !== null, `Dockerfile line ${start}: not an instruction: ${current}`)
    instructions.push({ cmd: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start })
    current = ''
  }
  const globalArgs = new Map<string, string>()
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.cmd === 'FROM') {
      const [image, as, name] = ins.args.replace(/\$\{(\w+)\}/g, (_, n: string) => globalArgs.get(n) ?? '').split(/\s+/)
      stages.push({ from: image as string, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0) {
      assert.equal(ins.cmd, 'ARG', 'only ARG may precede the first FROM')
      const [k, v] = ins.args.split('=')
      globalArgs.set(k as string, v ?? '')
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(ins)
    }
  }
  return stages
}

const DOCKERFILE = join(repoRoot, 'deploy', 'Dockerfile')
const stages = readDockerfile(readFileSync(DOCKERFILE, 'utf8'))
const final = stages[stages.length - 1] as Stage
const all = (stage: Stage, cmd: string): Instruction[] => stage.instructions.filter((i) => i.cmd === cmd)
const only = (stage: Stage, cmd: string): Instruction => {
  const found = all(stage, cmd)
  assert.equal(found.length, 1, `one ${cmd} in stage ${stage.name ?? '?'}`)
  return found[0] as Instruction
}
const execForm = (ins: Instruction): string[] => {
  const v = JSON.parse(ins.args.replace(/^CMD\s+/, '')) as unknown
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `line ${ins.line}: exec (JSON array) form`)
  return v
}

interface Copy { from: string | undefined, sources: string[], dest: string, line: number }
function copies (stage: Stage): Copy[] {
  return all(stage, 'COPY').map((ins) => {
    const words = ins.args.split(/\s+/)
    const flags = words.filter((w) => w.startsWith('--'))
    const paths = words.filter((w) => !w.startsWith('--'))
    const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length)
    return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] as string, line: ins.line }
  })
}

/** .dockerignore as the project writes it: `*` then `!path` exceptions (files or folders). */
function inBuildContext (path: string): boolean {
  const rules = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  assert.equal(rules[0], '*', '.dockerignore starts by excluding everything')
  const allowed = rules.slice(1).map((r) => {
    assert.ok(r.startsWith('!') && !/[*?[]/.test(r), `.dockerignore rule ${r}: only plain !path exceptions are understood here`)
    return r.slice(1).replace(/\/$/, '')
  })
  const p = path.replace(/\/$/, '')
  return allowed.some((a) => p === a || p.startsWith(`${a}/`))
}

describe('deploy/Dockerfile keeps the image\'s invariants', () => {
  test('multi-stage: a Node 20 build stage, a production-dependency stage, a Node 20 runtime stage', () => {
    assert.ok(stages.length >= 2)
    assert.deepEqual(stages.map((s) => s.name), ['build', 'deps', 'runtime'])
    for (const s of stages.slice(0, -1)) assert.match(s.from, /^node:20(\.|-|$)/)
    assert.match(final.from, /^(gcr\.io\/distroless\/nodejs20-debian\d+(:nonroot)?|node:20[.\w-]*-slim)$/)
  })

  test('the final stage holds only production dependencies: node_modules from the `npm ci --omit=dev` stage, nothing from the build stage but its outputs (dist/, ui/dist/)', () => {
    const deps = stages.find((s) => s.name === 'deps') as Stage
    const install = all(deps, 'RUN').map((r) => r.args).join(' && ')
    assert.match(install, /npm ci (.* )?--omit=dev/)
    assert.match(install, /--ignore-scripts/)
    assert.doesNotMatch(install, /npm (i|install|ci)\b(?![^&]*--omit=dev)/, 'every install in the deps stage omits devDependencies')
    const fromStages = copies(final).filter((c) => c.from !== undefined)
    for (const c of fromStages) {
      if (c.from === 'deps') assert.deepEqual([c.sources, c.dest], [['/app/node_modules'], './node_modules'])
      else {
        assert.equal(c.from, 'build')
        assert.ok(c.sources.every((s) => !s.includes('node_modules')), `line ${c.line}: nothing of the build stage's node_modules (devDependencies)`)
      }
    }
    assert.ok(fromStages.some((c) => c.from === 'deps'))
    // distroless has no shell and no npm: the final stage runs nothing
    assert.deepEqual(all(final, 'RUN'), [])
  })

  test('a numeric non-root USER', () => {
    const m = /^(\d+)(?::(\d+))?$/.exec(only(final, 'USER').args)
    assert.ok(m !== null, 'USER uid[:gid], numeric (Kubernetes runAsNonRoot can check only a numeric user)')
    assert.ok(Number(m[1]) > 0 && (m[2] === undefined || Number(m[2]) > 0))
    // the Kubernetes manifests run the same uid
    for (const f of ['sidecar/deployment.yaml', 'central/deployment.yaml']) {
      const d = parse(readFileSync(join(repoRoot, 'deploy', 'kubernetes', f), 'utf8'))
      assert.equal(d.spec.template.spec.securityContext.runAsUser, Number(m[1]), f)
    }
  })

  test('HEALTHCHECK: /health/live with node (exec form), ENTRYPOINT: the CLI\'s serve, EXPOSE: the default ports', () => {
    const hc = only(final, 'HEALTHCHECK')
    const cmd = execForm({ ...hc, args: hc.args.replace(/^(--\S+\s+)*/, '') })
    assert.match(cmd[0] as string, /(^|\/)node$/)
    assert.equal(cmd[1], '-e')
    assert.match(cmd[2] as string, /\/health\/live/)
    const entry = execForm(only(final, 'ENTRYPOINT'))
    assert.match(entry[0] as string, /(^|\/)node$/)
    // the launcher (bin/portcullis.cjs): the bundled build with its code cache, as `npm start` and the `portcullis` command
    assert.deepEqual(entry.slice(1), ['bin/portcullis.cjs', 'serve'])
    assert.equal(only(final, 'WORKDIR').args, '/app')
    const exposed = only(final, 'EXPOSE').args.split(/\s+/).map(Number)
    const config = parse(readFileSync(join(repoRoot, 'deploy', 'docker', 'portcullis.yaml'), 'utf8'))
    assert.ok(exposed.includes(Number((config.server.addr as string).split(':').pop())))
    assert.ok(exposed.includes(9191) && exposed.includes(9192))
  })

  test('the build stage has, before each `npm run` of it, every file that script reads (tsconfig, scripts, the warm-up\'s launcher and bundles, the UI sources)', () => {
    const build = stages.find((s) => s.name === 'build') as Stage
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const runs = build.instructions.flatMap((ins, at) => ins.cmd === 'RUN' ? [...ins.args.matchAll(/\bnpm run ([\w:-]+)/g)].map((m) => ({ at, script: m[1] as string })) : [])
    assert.deepEqual(runs.map((r) => r.script), ['build', 'build:ui'])
    for (const { at, script } of runs) {
      const copied = build.instructions.slice(0, at).filter((i) => i.cmd === 'COPY').flatMap((i) => {
        const paths = i.args.split(/\s+/).filter((w) => !w.startsWith('--'))
        return paths.slice(0, -1)
      }).map((p) => p.replace(/\/$/, ''))
      const has = (file: string): boolean => copied.some((c) => file === c || file.startsWith(`${c}/`))
      const text = pkg.scripts[script]
      assert.ok(text !== undefined, `package.json has a ${script} script`)
      const needed: string[] = []
      for (const step of text.split('&&').map((x) => x.trim())) {
        const node = /^node (\S+)/.exec(step)
        if (node !== null) needed.push(node[1] as string)
        const tsc = /^tsc -p (\S+)/.exec(step)
        if (tsc !== null) needed.push(tsc[1] as string, 'tsconfig.json', 'src')
      }
      assert.ok(needed.length >= 1, `package.json's ${script} script: ${text}`)
      // build-bundle.mjs's warm-up server runs the launcher against the repository's bundles/
      if (needed.includes('scripts/build-bundle.mjs')) needed.push('bin/portcullis.cjs', 'bundles')
      // build-ui.mjs builds ui/src and ui/index.html
      if (needed.includes('scripts/build-ui.mjs')) needed.push('ui/src', 'ui/index.html')
      for (const file of needed) assert.ok(has(file), `the build stage copies ${file} before npm run ${script} (it has: ${copied.join(', ')})`)
    }
  })

  test('every COPY source from the build context exists in the repository and is not excluded by .dockerignore', () => {
    let n = 0
    for (const s of stages) {
      for (const c of copies(s).filter((x) => x.from === undefined)) {
        for (const src of c.sources) {
          n++
          assert.ok(existsSync(join(repoRoot, src)), `line ${c.line}: ${src} exists`)
          assert.ok(inBuildContext(src), `line ${c.line}: ${src} is in the build context (.dockerignore)`)
        }
      }
    }
    assert.ok(n >= 8)
    // and the context excludes what must not travel: dependencies, build output, tools, tests
    for (const p of ['node_modules', 'dist', '.tools', 'test', '.git', 'examples/demo-trust-domain/demo-only-ca.key']) assert.equal(inBuildContext(p), false, p)
  })

  test('the image\'s own configuration loads with Portcullis\'s loader', (t) => {
    const raw = parse(readFileSync(join(repoRoot, 'deploy', 'docker', 'portcullis.yaml'), 'utf8'))
    raw.bundles.dir = join(repoRoot, 'bundles')
    raw.identity.trust_domains['example.org'].spiffe_bundles = [join(demoTrustDomainDir(), DEMO_FILES.bundle)]
    const file = join(tempDir(t), 'portcullis.yaml')
    writeFileSync(file, stringify(raw))
    const config = loadConfig({ file, env: {} })
    assert.equal(config.identity?.on_missing, 'deny')
  })
})

/** Node resolves packages up the directory tree: none of the simulation's ancestors may hold a node_modules. */
function ancestorsWithNodeModules (dir: string): string[] {
  const out: string[] = []
  let d = dirname(dir)
  for (let i = 0; i < 64 && d !== parsePath(d).root; i++, d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) out.push(d)
  }
  if (existsSync(join(parsePath(d).root, 'node_modules'))) out.push(parsePath(d).root)
  return out
}

describe('the runtime stage, simulated on the host: production install, then serve', () => {
  let root: string
  let app: string
  let child: ChildProcess | undefined
  let url: string
  let output = ''

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'portcullis-image-'))
    app = join(root, 'app')
    mkdirSync(app)
    assert.deepEqual(ancestorsWithNodeModules(app), [], 'a node_modules above the simulated /app would hide a missing dependency')
    // deps stage: the production install from package.json and package-lock.json alone
    const deps = stages.find((s) => s.name === 'deps') as Stage
    for (const c of copies(deps)) for (const src of c.sources) cpSync(join(repoRoot, src), join(app, src))
    const npm = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8', timeout: 300_000 })
    assert.equal(npm.status, 0, `npm ci --omit=dev: ${npm.stderr}`)
    // build stage: dist/ compiled from src/ with the repository's TypeScript (a devDependency of the build stage only)
    const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(app, 'dist')], { encoding: 'utf8', timeout: 300_000 })
    assert.equal(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`)
    mkdirSync(join(app, 'local-bundles'))
    // the build stage's other outputs the final stage takes (ui/dist: `npm run build:ui`) as this
    // checkout's own build produced them (npm install's prepare); dist/ and local-bundles/ are laid out above
    for (const c of copies(final).filter((x) => x.from === 'build')) {
      for (const src of c.sources) {
        const rel = src.replace(/^\/src\//, '')
        if (rel === 'dist' || rel === 'local-bundles') continue
        assert.ok(existsSync(join(repoRoot, rel)), `${rel} was built (npm install builds it)`)
        cpSync(join(repoRoot, rel), join(app, c.dest), { recursive: true })
      }
    }
    // runtime stage: the files it COPYs from the build context, where it puts them
    for (const c of copies(final).filter((x) => x.from === undefined)) {
      for (const src of c.sources) {
        const dest = c.dest.endsWith('/') || c.sources.length > 1 ? join(app, c.dest, src.split('/').pop() as string) : join(app, c.dest)
        mkdirSync(dirname(dest), { recursive: true })
        cpSync(join(repoRoot, src), dest, { recursive: true })
      }
    }
    // the image's configuration, its /app paths pointed at the simulated /app, on an ephemeral loopback port
    const config = parse(readFileSync(join(app, 'config', 'portcullis.yaml'), 'utf8'))
    config.bundles.dir = config.bundles.dir.replace(/^\/app\//, `${app}/`)
    const td = config.identity.trust_domains['example.org']
    td.spiffe_bundles = td.spiffe_bundles.map((p: string) => p.replace(/^\/app\//, `${app}/`))
    writeFileSync(join(app, 'config', 'portcullis.yaml'), stringify(config))
    const entry = execForm(only(final, 'ENTRYPOINT')).slice(1)
    const cmd = execForm(only(final, 'CMD')).map((a) => a.replace(/^\/app\//, `${app}/`))
    child = spawn(process.execPath, [...entry, ...cmd, '--addr', '127.0.0.1:0'], { cwd: app, env: { PATH: process.env.PATH, NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (b: Buffer) => { output += b.toString() })
    child.stderr?.on('data', (b: Buffer) => { output += b.toString() })
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`serve did not start within 60 s:\n${output}`)) }, 60_000)
      const look = (): void => {
        const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)
        if (m !== null) { clearTimeout(timer); resolve(m[1] as string) }
      }
      child?.stdout?.on('data', look)
      child?.once('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited with ${String(code)}:\n${output}`)) })
    })
  })

  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(root, { recursive: true, force: true })
  })

  test('the production node_modules holds no devDependency', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
    const devOnly = Object.entries(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev === true).map(([p]) => p)
    assert.ok(devOnly.length > 10)
    for (const p of devOnly) assert.equal(existsSync(join(app, p)), false, `${p} (dev) was installed`)
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string>, devDependencies: Record<string, string> }
    for (const d of Object.keys(pkg.dependencies)) assert.ok(statSync(join(app, 'node_modules', d)).isDirectory(), d)
    assert.ok(readdirSync(join(app, 'node_modules')).length > 20)
  })

  test('serve answers /health/live and /health/ready, and the HEALTHCHECK command passes', async () => {
    assert.equal((await fetch(`${url}/health/live`)).status, 200)
    assert.equal((await fetch(`${url}/health/ready`)).status, 200)
    const hc = only(final, 'HEALTHCHECK')
    const script = execForm({ ...hc, args: hc.args.replace(/^(--\S+\s+)*/, '').replace(/^CMD\s+/, '') })[2] as string
    const run = (healthUrl: string): Promise<number | null> => new Promise((resolve) => {
      const p = spawn(process.execPath, ['-e', script], { env: { PORTCULLIS_HEALTH_URL: healthUrl }, stdio: 'ignore' })
      p.once('exit', resolve)
    })
    assert.equal(await run(`${url}/health/live`), 0)
    assert.equal(await run(`${url}/health/nowhere`), 1)
  })

  test('a decision: a demo JWT-SVID of an allowed caller is allowed, a caller without one refused', async () => {
    const key = await loadJwtSigningKey(readFileSync(join(demoTrustDomainDir(), DEMO_FILES.jwtKey), 'utf8'))
    const { token } = await issueJwtSvid(key, 'spiffe://example.org/ns/shop/sa/frontend', { audience: ['portcullis'], ttlSeconds: 300 })
    const body = JSON.stringify({ input: { service: 'orders', method: 'GET', path: '/orders/42' } })
    const ok = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body })
    assert.deepEqual(((await ok.json()) as { result: unknown }).result, true)
    const anon = await fetch(`${url}/v1/data/authz/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    assert.equal(((await anon.json()) as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_IDENTITY_REQUIRED')
  })

  test('the console UI is where the server serves it from (ui/dist beside dist/), with the assets its index.html names', () => {
    const index = readFileSync(join(app, 'ui', 'dist', 'index.html'), 'utf8')
    const assets = [...index.matchAll(/\/ui\/(assets\/[^"']+)/g)].map((m) => m[1] as string)
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')), index)
    for (const a of assets) assert.ok(statSync(join(app, 'ui', 'dist', a)).isFile(), a)
  })

  test('SIGTERM stops it cleanly (exit 0)', async () => {
    const exited = new Promise<number | null>((resolve) => child?.once('exit', resolve))
    child?.kill('SIGTERM')
    assert.equal(await exited, 0, output)
  })
})
