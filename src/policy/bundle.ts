/**
 * What the policy engine needs of a bundle, and the rules for Data API paths against a
 * bundle's roots. Dependencies point down: `bundles/` reads, verifies and validates a bundle and
 * hands the engine a value of this shape (its `Bundle` is one); `policy/` never imports
 * `bundles/` back (test/architecture.test.ts checks it).
 */

/** A manifest `wasm` entry (OPA v1/bundle/bundle.go WasmResolver). */
export interface WasmResolver {
  /** Data API path of the rule, e.g. `authz/allow`. */
  entrypoint: string
  /** Bundle-relative module file, e.g. `policy.wasm`. */
  module: string
}

/** The parts of a bundle's `.manifest` the engine reads (bundles/manifest.ts parses the whole). */
export interface PolicyManifest {
  revision: string
  /** Path prefixes of `data` this bundle owns; `""` owns everything. Cleaned (see cleanPath). */
  roots: string[]
  wasm: WasmResolver[]
}

/** A validated bundle as the engine consumes it: immutable once handed over. */
export interface PolicyBundle {
  /** Bundle name: the file name without `.tar.gz`, or the directory name. */
  name: string
  /** Where it was read from (named in errors). */
  source: string
  manifest: PolicyManifest
  /** The bundle's data documents merged by their directory paths (the small ones; see largeData). */
  data: Record<string, unknown>
  /**
   * JSON data files too large to parse into JavaScript objects, as the exact bytes read from the
   * bundle, with their place under `data`. They are parsed once, straight into wasm memory, when
   * a snapshot is built (src/policy/data-loader.ts), which also checks them against the roots
   * and the other documents. Once a snapshot with the bundle serves, the bytes are released
   * (set to undefined: PolicySnapshot.releaseLargeData) and later snapshots take the bundle's
   * data from the serving one.
   */
  largeData?: Array<{ path: string[], file: string, json: Uint8Array }>
  /** Wasm module bytes by bundle-relative path. */
  wasmModules: Map<string, Buffer>
}

/** Trims the slashes OPA tolerates around a root, an entrypoint or a Data API path. */
export function cleanPath (p: string): string {
  // index loops: `/\/+$/` retried at every slash of an inner run (`a/////…/b`), quadratic in a
  // request's path
  let a = 0
  let b = p.length
  while (a < b && p.charCodeAt(a) === 0x2f) a++
  while (b > a && p.charCodeAt(b - 1) === 0x2f) b--
  return p.slice(a, b)
}

/**
 * A Data API path segment as a number term, as OPA reads a path (v1/server/server.go
 * stringPathToRef: a segment Go's strconv.Atoi accepts — an optional sign and decimal digits,
 * within int64 — is an integer term, every other segment a string term). Undefined: a string.
 * A number term selects an array element or a set member; in base data (OPA's storage reads
 * paths as strings) it also names an object key.
 */
export function pathIndex (segment: string): number | undefined {
  if (!/^[+-]?\d+$/.test(segment)) return undefined
  const n = Number(segment)
  // beyond int64 Atoi fails (a string term); between 2^53 and 2^63 no array or set here holds it
  return Math.abs(n) < 2 ** 63 ? n : undefined
}

/** True when `root` owns `path` (both slash-separated, no leading slash). */
export function rootContains (root: string, path: string): boolean {
  return root === '' || path === root || path.startsWith(root + '/')
}

/** True when `path` lies strictly above `root` (e.g. `a` above `a/b`). */
export function isAncestorOf (path: string, root: string): boolean {
  return root !== '' && (path === '' || root.startsWith(path + '/'))
}

/** A root's segments (`''`, the whole tree, has none). */
export function rootSegments (root: string): string[] {
  return root === '' ? [] : root.split('/')
}

/**
 * True when the root (as segments) owns the data path `path` (segments: directories, then keys).
 * Compared segment by segment: a data key may hold `/` (`{"a": {"b/c": 1}}` under root `a/b`),
 * and joined with slashes it would read as the path `a/b/c`, inside the root.
 */
export function rootOwnsSegments (root: readonly string[], path: readonly string[]): boolean {
  if (path.length < root.length) return false
  for (let i = 0; i < root.length; i++) if (root[i] !== path[i]) return false
  return true
}

/** True when the data path `path` (segments) lies strictly above the root (segments). */
export function isAncestorOfSegments (path: readonly string[], root: readonly string[]): boolean {
  return path.length < root.length && rootOwnsSegments(path, root)
}

/** OPA: two roots overlap when either owns the other; bundles' roots must not. */
export function rootsOverlap (a: string, b: string): boolean {
  return rootContains(a, b) || rootContains(b, a)
}

/**
 * A member of a data object, own properties only: data keys are the bundle author's, and
 * `__proto__` or `constructor` must read as data, never as Object.prototype (merging into that
 * would set properties on every object in the process).
 */
export function dataMember (o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined
}

/** Sets a data member as an own property (an assignment to `__proto__` would set the prototype instead). */
export function setDataMember (o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })
}
