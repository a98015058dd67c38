/**
 * OPA's own conformance cases as a test of Portcullis's host builtins.
 *
 * The cases are read from the `github.com/open-policy-agent/opa` module in the Go module cache,
 * at the version scripts/install-opa.sh installs (downloaded with `go mod download` when the
 * cache lacks it) — never copied into this repository. A case is selected when its modules or
 * query call a builtin Portcullis provides on the host (the registry in src/policy/builtins/:
 * the builtins `opa build -t wasm` imports from the host). OPA's wasm exception list
 * (internal/wasm/sdk/test/e2e/exceptions.yaml) is honoured as OPA's own wasm e2e test does.
 *
 * Each case becomes its own package `conf_<n>` (its packages are moved below it and every
 * `data` reference in its modules and query is rewritten to `data.conf_<n>`, its data placed
 * there), and its query becomes the rule `conf_<n>.conformance_query`, the set of the query's
 * bindings. Many cases share one `opa build -t wasm` invocation (one entrypoint per case);
 * each bundle is loaded by a real BundleManager and every case is decided through
 * DecisionService — in default mode, and in strict mode for `strict_error` cases — and its
 * bindings compared with the case's `want_result` exactly (numbers by exact decimal value).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMap, isScalar, isSeq, parseAllDocuments, parse as parseYaml, type Node as YamlNode } from 'yaml'
import { BundleManager } from '../../src/bundles/activate.js'
import { DecisionService } from '../../src/decision/decide.js'
import { PortcullisError } from '../../src/errors.js'
import { NATIVE_JS_BUILTINS, registeredBuiltins } from '../../src/policy/builtins/index.js'
import { ExactNumber, parseExact, stringifyExact } from '../../src/policy/builtins/exact-json.js'
import { parseRegoValue } from '../../src/policy/wasm-host.js'
import { findOpa, repoRoot } from '../../scripts/lib/opa.js'

export interface OpaCase {
  /** Topic directory, e.g. `netcidrmerge`. */
  dir: string
  file: string
  note: string
  query: string
  modules: string[]
  data?: unknown
  input?: unknown
  inputTerm?: string
  wantResult?: Array<Record<string, unknown>>
  wantErrorCode?: string
  wantError?: string
  strictError: boolean
  sortBindings: boolean
  /** Host builtins the case calls. */
  builtins: string[]
}

export type Outcome =
  | { status: 'pass' }
  | { status: 'fail', reason: string }
  /** Skipped as OPA's own wasm e2e test skips it. */
  | { status: 'opa-exception', reason: string }

export interface CaseResult { case: OpaCase, outcome: Outcome }

/** The OPA version scripts/install-opa.sh installs (its `OPA_VERSION` default). */
export function opaVersion (): string {
  const script = readFileSync(join(repoRoot, 'scripts', 'install-opa.sh'), 'utf8')
  const m = /OPA_VERSION="\$\{OPA_VERSION:-(v[0-9][^}"]*)\}"/.exec(script)
  if (m === null) throw new Error('scripts/install-opa.sh does not name an OPA_VERSION default')
  return m[1] as string
}

/**
 * The opa module's directory in the Go module cache, downloading it when missing.
 * Throws (with the reason) when Go is missing or the download fails.
 */
export function opaModuleDir (version = opaVersion()): string {
  const mod = `github.com/open-policy-agent/opa@${version}`
  let cache: string
  try {
    cache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim()
  } catch (err) {
    throw new Error(`Go is required to read OPA's conformance cases (go env GOMODCACHE failed: ${(err as Error).message})`)
  }
  const dir = join(cache, 'github.com', 'open-policy-agent', `opa@${version}`)
  if (existsSync(join(dir, 'v1', 'test', 'cases', 'testdata', 'v1'))) return dir
  // Outside any Go module, `go mod download` fetches exactly this version into the cache.
  const r = spawnSync('go', ['mod', 'download', '-json', mod], { encoding: 'utf8', cwd: tmpdir(), maxBuffer: 1 << 24 })
  if (r.status !== 0) throw new Error(`go mod download ${mod} failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`)
  const info = JSON.parse(r.stdout) as { Dir?: string, Error?: string }
  if (info.Error !== undefined || info.Dir === undefined) throw new Error(`go mod download ${mod}: ${info.Error ?? 'no directory'}`)
  return info.Dir
}

/** A YAML node as a JSON value, numbers kept as their exact decimal text. */
function yamlValue (node: unknown): unknown {
  if (node === null || node === undefined) return null
  if (isMap(node)) {
    const out: Record<string, unknown> = {}
    for (const p of node.items) out[String(isScalar(p.key) ? p.key.value : p.key)] = yamlValue(p.value)
    return out
  }
  if (isSeq(node)) return node.items.map(yamlValue)
  if (isScalar(node)) {
    const v = node.value
    if (typeof v === 'number' || typeof v === 'bigint') {
      const src = (node as { source?: string }).source ?? String(v)
      // YAML allows `.5` and `+1`; JSON's (and OPA's) number is the same value.
      const t = src.replace(/^\+/, '').replace(/^(-?)\./, '$10.')
      return /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) ? new ExactNumber(t) : Number(v)
    }
    return v
  }
  return (node as YamlNode).toJSON()
}

const KNOWN_FIELDS = new Set(['note', 'query', 'modules', 'data', 'input', 'input_term', 'want_result', 'want_error_code', 'want_error', 'strict_error', 'sort_bindings'])

/** Rego source with comments and string literals blanked (for finding calls). */
function codeOnly (src: string): string {
  return src.replace(/"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*/g, (m) => ' '.repeat(m.length))
}

/** Every case of the topic directories under `<module>/v1/test/cases/testdata/v1` that calls a host builtin. */
export function loadCases (moduleDir: string, hostBuiltins: readonly string[] = hostBuiltinNames()): OpaCase[] {
  const root = join(moduleDir, 'v1', 'test', 'cases', 'testdata', 'v1')
  const calls = hostBuiltins.map((n) => [n, new RegExp(`(?<![\\w.])${n.replace(/\./g, '\\.')}\\s*\\(`)] as const)
  const out: OpaCase[] = []
  for (const dir of readdirSync(root).sort()) {
    for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith('.yaml')).sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(root, dir, file), 'utf8'))) {
        const top = doc.contents
        if (!isMap(top)) continue
        const casesNode = top.get('cases', true)
        if (!isSeq(casesNode)) continue
        for (const c of casesNode.items) {
          if (!isMap(c)) continue
          const raw = yamlValue(c) as Record<string, unknown>
          const modules = (raw.modules ?? []) as string[]
          const code = codeOnly([...modules, raw.query as string].join('\n'))
          const builtins = calls.filter(([, re]) => re.test(code)).map(([n]) => n)
          if (builtins.length === 0) continue
          // A field this runner does not implement must not be silently ignored.
          for (const k of Object.keys(raw)) if (!KNOWN_FIELDS.has(k)) throw new Error(`${dir}/${file}: case field ${k} is not understood by the runner`)
          out.push({
            dir,
            file,
            note: raw.note as string,
            query: raw.query as string,
            modules,
            ...(raw.data !== undefined ? { data: raw.data } : {}),
            ...(raw.input !== undefined ? { input: raw.input } : {}),
            ...(raw.input_term !== undefined ? { inputTerm: raw.input_term as string } : {}),
            ...(raw.want_result !== undefined ? { wantResult: raw.want_result as Array<Record<string, unknown>> } : {}),
            ...(raw.want_error_code !== undefined ? { wantErrorCode: raw.want_error_code as string } : {}),
            ...(raw.want_error !== undefined ? { wantError: raw.want_error as string } : {}),
            strictError: raw.strict_error === true,
            sortBindings: raw.sort_bindings === true,
            builtins,
          })
        }
      }
    }
  }
  return out
}

/** The builtins Portcullis provides on the host: the registry, and those opa-wasm's JavaScript glue answers. */
export function hostBuiltinNames (): string[] {
  return [...new Set([...registeredBuiltins(), ...NATIVE_JS_BUILTINS])].sort()
}

/** OPA's wasm exception list: exact notes and glob patterns (`*` within one `/` segment). */
export function loadOpaExceptions (moduleDir: string): (note: string) => string | undefined {
  const file = join(moduleDir, 'internal', 'wasm', 'sdk', 'test', 'e2e', 'exceptions.yaml')
  const map = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, string>
  const globs = Object.entries(map).filter(([k]) => k.includes('*')).map(([k, r]) => [new RegExp('^' + k.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$'), r] as const)
  return (note) => map[note] ?? globs.find(([re]) => re.test(note))?.[1]
}

/** Cases Portcullis cannot pass by design, with the reason for each (test/conformance/by-design.yaml). */
export function loadByDesign (): Map<string, string> {
  const file = join(repoRoot, 'test', 'conformance', 'by-design.yaml')
  const parsed = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, string>
  return new Map(Object.entries(parsed))
}

// --- rewriting a case into its own package -------------------------------------------------

const KEYWORDS = new Set(['data', 'input', 'true', 'false', 'null', 'some', 'in', 'not', 'with', 'as', 'every', 'if', 'contains', 'else', 'default', 'import', 'package'])

/** Applies `fn` to the code between string literals and comments of Rego source. */
function mapCode (src: string, fn: (code: string) => string): string {
  let out = ''
  let last = 0
  for (const m of src.matchAll(/"(?:[^"\\\n]|\\.)*"|`[^`]*`|#[^\n]*/g)) {
    out += fn(src.slice(last, m.index)) + m[0]
    last = (m.index ?? 0) + m[0].length
  }
  return out + fn(src.slice(last))
}

/** Moves a module below `prefix`: its package, and every reference to `data`. */
export function rewriteModule (src: string, prefix: string): string {
  return mapCode(src, (code) => code
    .replace(/(?<![\w.])data(?!\w)/g, `data.${prefix}`)
    .replace(/(^|\n)(\s*)package(\s+)/g, `$1$2package$3${prefix}.`))
}

/** The variables a query binds (the names OPA reports in each result). */
export function queryVars (query: string): string[] {
  const code = codeOnly(query)
  const vars = new Set<string>()
  for (const m of code.matchAll(/(?<![\w.$])([A-Za-z_][A-Za-z0-9_]*)(?![\w(.])/g)) {
    const v = m[1] as string
    if (KEYWORDS.has(v) || v.startsWith('_')) continue
    // a reference head followed by `[` is a variable too (`x[i]`), except data/input
    vars.add(v)
  }
  return [...vars]
}

function queryModule (c: OpaCase, prefix: string): string {
  const vars = queryVars(c.query)
  const head = `{${vars.map((v) => `${JSON.stringify(v)}: ${v}`).join(', ')}}`
  const body = rewriteModule(c.query, prefix)
  return `package ${prefix}\n\nconformance_query contains ${head} if {\n${body}\n}\n`
}

// --- comparing ---------------------------------------------------------------------------------

function canonNumber (text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)
  if (m === null) return text
  let digits = (m[2] + (m[3] ?? '')).replace(/^0+/, '')
  let exp = Number(m[4] ?? '0') - (m[3]?.length ?? 0)
  if (digits === '') return '0'
  while (digits.endsWith('0')) { digits = digits.slice(0, -1); exp++ }
  return `${m[1]}${digits}e${exp}`
}

/** Canonical text of a value: numbers by exact decimal value, object keys sorted; `sortArrays` sorts (set-like) arrays. */
export function canonical (v: unknown, sortArrays = false): string {
  if (v instanceof ExactNumber) return canonNumber(v.text)
  if (typeof v === 'number') return canonNumber(String(v))
  if (Array.isArray(v)) {
    const items = v.map((x) => canonical(x))
    if (sortArrays) items.sort()
    return '[' + items.join(',') + ']'
  }
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical((v as Record<string, unknown>)[k])).join(',') + '}'
  }
  return JSON.stringify(v)
}

/** A result set as OPA's wasm e2e test compares it: a set of binding objects (binding arrays sorted with sort_bindings). */
function resultSet (rs: unknown[], sortBindings: boolean): string {
  return [...new Set(rs.map((b) => {
    const o = b as Record<string, unknown>
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + canonical(o[k], sortBindings)).join(',') + '}'
  }))].sort().join('\n')
}

// --- building and deciding ---------------------------------------------------------------------

export interface RunOptions {
  /** Cases per `opa build` invocation. */
  batchSize?: number
  opa?: string
  /** Keep the build directories (for debugging). */
  keep?: boolean
}

const SWITCHES = new Set(['http_send', 'net_lookup_ip_addr', 'rand_intn'])

/** Builds one bundle for `cases`; cases whose modules do not compile are returned with opa's error. */
interface Built { bundles: Array<{ dir: string, built: Array<{ c: OpaCase, prefix: string }> }>, failed: Array<{ c: OpaCase, error: string }> }

function build (opa: string, dir: string, cases: Array<{ c: OpaCase, prefix: string }>): Built {
  const failed: Array<{ c: OpaCase, error: string }> = []
  let todo = cases
  for (;;) {
    if (todo.length === 0) return { bundles: [], failed }
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const data: Record<string, unknown> = {}
    for (const { c, prefix } of todo) {
      mkdirSync(join(dir, prefix))
      c.modules.forEach((m, i) => writeFileSync(join(dir, prefix, `module-${i}.rego`), rewriteModule(m, prefix)))
      writeFileSync(join(dir, prefix, 'query.rego'), queryModule(c, prefix))
      data[prefix] = c.data ?? {}
    }
    writeFileSync(join(dir, 'data.json'), stringifyExact(data))
    const entry = todo.flatMap(({ prefix }) => ['-e', `${prefix}/conformance_query`])
    const r = spawnSync(opa, ['build', '-t', 'wasm', ...entry, '-o', 'bundle.tar.gz', '.'], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 26 })
    if (r.status === 0) return { bundles: [{ dir, built: todo }], failed }
    const text = `${r.stdout}${r.stderr}`
    const named = new Set([...text.matchAll(/conf_\d+(?=\/)/g)].map((m) => m[0]))
    const bad = todo.filter(({ prefix }) => named.has(prefix))
    if (bad.length === 0) {
      if (todo.length === 1) { failed.push({ c: (todo[0] as { c: OpaCase }).c, error: text.trim() }); return { bundles: [], failed } }
      // An error naming no case: build the halves separately.
      const half = Math.ceil(todo.length / 2)
      const a = build(opa, dir + 'a', todo.slice(0, half))
      const b = build(opa, dir + 'b', todo.slice(half))
      return { bundles: [...a.bundles, ...b.bundles], failed: [...failed, ...a.failed, ...b.failed] }
    }
    for (const { c, prefix } of bad) {
      const lines = text.split('\n').filter((l) => l.includes(`${prefix}/`)).join('\n')
      failed.push({ c, error: lines })
    }
    todo = todo.filter(({ prefix }) => !named.has(prefix))
  }
}

function opaErrorCode (err: unknown): string | undefined {
  if (!(err instanceof PortcullisError)) return undefined
  const d = err.details as { opa_code?: string } | undefined
  if (d?.opa_code !== undefined) return d.opa_code
  if (err.code === 'PORTCULLIS_POLICY_BUILTIN_ERROR') return 'eval_builtin_error'
  if (err.code === 'PORTCULLIS_POLICY_CONFLICT') return 'eval_conflict_error'
  return err.code
}

function asError (e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e))
}

async function decideCase (service: DecisionService, c: OpaCase, prefix: string): Promise<Outcome> {
  const path = `${prefix}/conformance_query`
  if (c.inputTerm !== undefined) {
    // input_term is Rego term syntax; OPA's wasm SDK sends it as JSON (sets as sorted arrays),
    // as the Data API takes input.
    let input: unknown
    try {
      input = parseRegoValue(c.inputTerm.replace(/,(\s*[}\]])/g, '$1'), { exactNumbers: true })
    } catch (err) {
      return { status: 'fail', reason: `input_term ${c.inputTerm}: ${(err as Error).message}` }
    }
    c = { ...c, input }
  }
  const req = { path, ...(c.input !== undefined ? { input: c.input } : {}), transport: 'cli' as const }
  const expectsError = c.wantErrorCode !== undefined || c.wantError !== undefined
  if (expectsError && c.strictError) {
    // OPA: the expression is undefined by default, the query fails in strict mode.
    const d = await service.decide(req).catch(asError)
    if (d instanceof Error) return { status: 'fail', reason: `default mode: unexpected error ${opaErrorCode(d) ?? ''}: ${d.message}` }
    if (!d.defined || !Array.isArray(d.result)) return { status: 'fail', reason: 'default mode: query rule undefined' }
    if (d.result.length !== 0) return { status: 'fail', reason: `default mode: want no result, got ${canonical(d.result)}` }
    const s = await service.decide({ ...req, strictBuiltinErrors: true }).catch(asError)
    if (!(s instanceof Error)) return { status: 'fail', reason: `strict mode: want error ${c.wantErrorCode ?? ''} ${c.wantError ?? ''}, got ${canonical(s.defined ? s.result : undefined)}` }
    const code = opaErrorCode(s)
    if (code !== 'eval_builtin_error' && code !== c.wantErrorCode) return { status: 'fail', reason: `strict mode: want ${c.wantErrorCode ?? 'an error'}, got ${code ?? ''}: ${s.message}` }
    return { status: 'pass' }
  }
  const d = await service.decide(req).catch(asError)
  if (expectsError) {
    if (!(d instanceof Error)) return { status: 'fail', reason: `want error ${c.wantErrorCode ?? ''} ${c.wantError ?? ''}, got ${d.defined ? canonical(d.result) : 'undefined'}` }
    const code = opaErrorCode(d)
    if (c.wantErrorCode !== undefined && code !== c.wantErrorCode) return { status: 'fail', reason: `want ${c.wantErrorCode}, got ${code ?? ''}: ${d.message}` }
    return { status: 'pass' }
  }
  if (d instanceof Error) return { status: 'fail', reason: `error ${opaErrorCode(d) ?? ''}: ${d.message}` }
  if (!d.defined || !Array.isArray(d.result)) return { status: 'fail', reason: 'query rule undefined' }
  const want = resultSet(c.wantResult ?? [], c.sortBindings)
  // the answer as a caller reads it: the exact text when the result has one
  const got = resultSet((d.resultJson !== undefined ? parseExact(d.resultJson) : d.result) as unknown[], c.sortBindings)
  if (want !== got) return { status: 'fail', reason: `want ${want || '(no result)'}\n      got  ${got || '(no result)'}` }
  return { status: 'pass' }
}

/** Runs the cases and returns one outcome per case, in order. */
export async function runCases (cases: OpaCase[], exception: (note: string) => string | undefined, opts: RunOptions = {}): Promise<CaseResult[]> {
  const opa = opts.opa ?? findOpa()
  if (opa === undefined) throw new Error('the opa CLI is required: npm run install:opa')
  const batchSize = opts.batchSize ?? 200
  const outcomes = new Map<OpaCase, Outcome>()
  const run: Array<{ c: OpaCase, prefix: string }> = []
  cases.forEach((c, i) => {
    const reason = exception(c.note)
    if (reason !== undefined) outcomes.set(c, { status: 'opa-exception', reason })
    else run.push({ c, prefix: `conf_${i}` })
  })
  const work = mkdtempSync(join(tmpdir(), 'portcullis-opa-cases-'))
  try {
    for (let b = 0; b * batchSize < run.length; b++) {
      const dir = join(work, `batch-${b}`)
      const { bundles, failed } = build(opa, dir, run.slice(b * batchSize, (b + 1) * batchSize))
      for (const { c, error } of failed) {
        const code = /rego_[a-z_]+_error/.exec(error)?.[0]
        const ok = c.wantErrorCode !== undefined && code === c.wantErrorCode && !c.strictError
        outcomes.set(c, ok ? { status: 'pass' } : { status: 'fail', reason: `opa build: ${error}` })
      }
      for (const { dir, built } of bundles) await decideBundle(dir, built, outcomes)
    }
  } finally {
    if (opts.keep !== true) rmSync(work, { recursive: true, force: true })
  }
  return cases.map((c) => ({ case: c, outcome: outcomes.get(c) ?? { status: 'fail', reason: 'not run' } }))
}

async function decideBundle (dir: string, built: Array<{ c: OpaCase, prefix: string }>, outcomes: Map<OpaCase, Outcome>): Promise<void> {
      const manager = new BundleManager({ load: { skipVerification: true }, engine: { builtins: { switches: SWITCHES } } })
      if (!(await manager.load(join(dir, 'bundle.tar.gz')))) {
        const e = manager.status()[0]?.last_error
        for (const { c } of built) outcomes.set(c, { status: 'fail', reason: `bundle load: ${e?.code ?? ''} ${e?.message ?? ''}` })
        return
      }
      const service = new DecisionService({ manager, logger: silentLogger })
      for (const { c, prefix } of built) outcomes.set(c, await decideCase(service, c, prefix))
}

const noop = (): void => {}
const silentLogger = { info: noop, warn: noop, error: noop, debug: noop, trace: noop, fatal: noop, child: () => silentLogger } as never

// --- reporting ---------------------------------------------------------------------------------

export interface Row { dir: string, cases: number, exceptions: number, byDesign: number, passing: number, failing: number }

/** Per-directory counts; `byDesign` counts failing cases on that list. */
export function tabulate (results: CaseResult[], byDesign: ReadonlyMap<string, string>): Row[] {
  const rows = new Map<string, Row>()
  for (const { case: c, outcome } of results) {
    const r = rows.get(c.dir) ?? { dir: c.dir, cases: 0, exceptions: 0, byDesign: 0, passing: 0, failing: 0 }
    r.cases++
    if (outcome.status === 'pass') r.passing++
    else if (outcome.status === 'opa-exception') r.exceptions++
    else if (byDesign.has(c.note)) r.byDesign++
    else r.failing++
    rows.set(c.dir, r)
  }
  return [...rows.values()].sort((a, b) => a.dir.localeCompare(b.dir))
}

export function formatTable (rows: Row[]): string {
  const w = Math.max('directory'.length, ...rows.map((r) => r.dir.length))
  const cols = ['cases', 'pass', 'by-design', 'FAIL', 'opa-wasm-skip'] as const
  const line = (name: string, v: number[]): string => `${name.padEnd(w)}  ${v.map((x, i) => String(x).padStart((cols[i] as string).length)).join('  ')}`
  const out = [`${'directory'.padEnd(w)}  ${cols.join('  ')}`, '-'.repeat(w + 2 + cols.join('  ').length)]
  const tot = [0, 0, 0, 0, 0]
  for (const r of rows) {
    const v = [r.cases, r.passing, r.byDesign, r.failing, r.exceptions]
    v.forEach((x, i) => { tot[i] = (tot[i] as number) + x })
    out.push(line(r.dir, v))
  }
  out.push('-'.repeat(w + 2 + cols.join('  ').length))
  out.push(line(`${rows.length} directories`, tot))
  const run = (tot[0] as number) - (tot[4] as number)
  out.push(`passing: ${tot[1] as number}/${run} (${(100 * (tot[1] as number) / Math.max(1, run)).toFixed(1)}%) of the cases run`)
  return out.join('\n')
}
