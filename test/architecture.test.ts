/**
 * Dependencies point down (CONVENTIONS.md "Dependencies point down"; docs/architecture.md):
 * transports (server/, cli/) call decision/; decision/ calls the concerns below it; bundles/
 * hands bundles to policy/ and policy/ never imports bundles/ back. This reads every import
 * specifier under src/ (static, type-only, re-exports and dynamic import()) and fails on any
 * edge the table forbids.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src')

/** Transports: only they may know about HTTP or the command line. */
const TRANSPORTS = ['server', 'cli', 'envoy']

/**
 * `from` must not import any of `to`. A folder under src/ is a concern; a file directly in
 * src/ (errors.ts, deep-freeze.ts) is the concern named after it. `to` may name folders that
 * do not exist yet, so a new transport is covered the day it lands.
 */
const FORBIDDEN: Array<{ from: string, to: string[], why: string }> = [
  { from: 'policy', to: ['bundles', 'decision', 'identity', 'cache', 'config', 'metrics', ...TRANSPORTS], why: 'the engine knows only the bundle shape it declares (policy/bundle.ts); activation depends on it, never the reverse' },
  { from: 'bundles', to: ['decision', 'identity', 'cache', 'config', ...TRANSPORTS], why: 'bundles/ reads, verifies and activates; it is handed its options' },
  { from: 'identity', to: ['decision', 'bundles', 'policy', 'cache', ...TRANSPORTS], why: 'identity verification stands beside policy, below the pipeline' },
  { from: 'cache', to: ['decision', 'bundles', 'policy', 'identity', 'config', ...TRANSPORTS], why: 'the cache stores what the pipeline hands it' },
  { from: 'metrics', to: ['decision', 'bundles', 'policy', 'identity', 'cache', 'config', ...TRANSPORTS], why: 'metrics is a leaf everyone records into' },
  { from: 'config', to: ['decision', 'bundles', 'policy', 'identity', 'cache', 'metrics', ...TRANSPORTS], why: 'config/ is read by everything and reads nothing back' },
  { from: 'decision', to: [...TRANSPORTS, 'audit'], why: 'nothing below decision/ knows about HTTP or the command line; the audit trail installs itself as the pipeline\'s hook, the pipeline never imports it' },
  { from: 'audit', to: ['bundles', 'identity', 'cache', ...TRANSPORTS], why: 'audit/ sits beside the pipeline\'s consumers: it reads decision/ types, evaluates mask/drop policies through policy/, and is wired in by the runtime (server/) and cli/' },
  { from: 'server', to: ['cli', 'envoy'], why: 'transports do not call each other' },
  { from: 'envoy', to: ['server', 'cli', 'bundles', 'policy', 'cache', 'audit'], why: 'envoy/ is a transport like server/: it translates ext_authz and calls decision/ (config/, errors, metrics, log below it; identity/ only for the trusted-caller address matcher); the runtime is handed its listeners' },
  { from: 'replay', to: ['server', 'cli', 'decision', 'bundles', 'identity', 'cache', 'config'], why: 'replay/ re-evaluates stored inputs on a snapshot it is handed (cli/ loads the candidate); it reads audit/ records and reads answers with the transports\' own rules (envoy/response.ts verdictOf)' },
  { from: 'console', to: ['server', 'cli', 'decision', 'bundles', 'identity', 'cache', 'config', 'envoy'], why: 'console/ queries the audit directory and evaluates the grants entrypoint on a snapshot it is handed; the route (server/) wires it and loads candidates' },
  { from: 'errors', to: ['*'], why: 'the error registry is the bottom of the graph' },
  { from: 'deep-freeze', to: ['*'], why: 'a leaf helper' },
]

/** Relative import specifiers of a TypeScript source, by TypeScript's own scanner. */
export function importSpecifiers (source: string): string[] {
  const info = ts.preProcessFile(source, true, true)
  return info.importedFiles.map((f) => f.fileName)
}

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(full)
    return e.isFile() && e.name.endsWith('.ts') ? [full] : []
  })
}

/** The concern a file under src/ belongs to: its top folder, or its own name for a top-level file. */
function concernOf (file: string): string {
  const [first, ...rest] = relative(SRC, file).split(sep)
  return rest.length === 0 ? (first as string).replace(/\.[jt]s$/, '') : first as string
}

interface Edge { file: string, specifier: string, from: string, to: string }

function edges (): Edge[] {
  const out: Edge[] = []
  for (const file of sourceFiles(SRC)) {
    for (const specifier of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue
      const target = resolve(dirname(file), specifier)
      const from = concernOf(file)
      const to = concernOf(target)
      if (from !== to) out.push({ file: relative(SRC, file), specifier, from, to })
    }
  }
  return out
}

test('the scanner sees every kind of import', () => {
  const src = [
    "import { a } from '../bundles/a.js'",
    "import type { B } from '../bundles/b.js'",
    'import {\n  c,\n  d,\n} from "../bundles/c.js"',
    "export { e } from '../bundles/e.js'",
    "export * from '../bundles/f.js'",
    "const g = await import('../bundles/g.js')",
    "import '../bundles/h.js'",
  ].join('\n')
  assert.deepEqual(importSpecifiers(src).sort(), ['a', 'b', 'c', 'e', 'f', 'g', 'h'].map((x) => `../bundles/${x}.js`))
})

test('every concern the table constrains exists under src/', () => {
  const concerns = new Set(sourceFiles(SRC).map(concernOf))
  for (const { from } of FORBIDDEN) assert.ok(concerns.has(from), `src/${from} is in the layering table but does not exist`)
})

test('no import crosses the layering the wrong way', () => {
  const all = edges()
  assert.ok(all.length > 50, `found only ${all.length} cross-concern imports; is the scanner reading src/?`)
  const violations: string[] = []
  for (const e of all) {
    for (const rule of FORBIDDEN) {
      if (rule.from === e.from && (rule.to.includes('*') || rule.to.includes(e.to))) {
        violations.push(`src/${e.file} imports ${e.specifier} (${e.from} → ${e.to}): ${rule.why}`)
      }
    }
  }
  assert.deepEqual(violations, [])
})

test('no cycle between concern folders', () => {
  const graph = new Map<string, Set<string>>()
  for (const e of edges()) {
    const next = graph.get(e.from) ?? new Set<string>()
    next.add(e.to)
    graph.set(e.from, next)
  }
  // Depth-first search; the graph has a dozen nodes, so the walk is bounded by its size.
  const state = new Map<string, 'open' | 'done'>()
  const cycles: string[] = []
  const visit = (node: string, path: string[]): void => {
    if (state.get(node) === 'done') return
    if (state.get(node) === 'open') {
      cycles.push([...path.slice(path.indexOf(node)), node].join(' → '))
      return
    }
    state.set(node, 'open')
    for (const next of graph.get(node) ?? []) visit(next, [...path, node])
    state.set(node, 'done')
  }
  for (const node of graph.keys()) visit(node, [])
  assert.deepEqual(cycles, [])
})
