/**
 * The decision cache key: snapshot generation + bundle + revision + path + strict flag + SHA-256
 * of the canonical JSON of the whole input (identity included), hashed together into one SHA-256. Canonical: object keys sorted,
 * no whitespace — two inputs that differ only in key order share an entry; any other
 * difference does not.
 */
import { hash } from 'node:crypto'
import { canonicalJson, isJsonObject, keysSorted } from '../canonical-json.js'
import { deepFreeze } from '../deep-freeze.js'

export { canonicalJson, keysSorted }

// SHA-256 of the canonical JSON of interned inputs, by object: a transport that hands the same
// input object again (fast-data.ts keeps parsed request bodies) pays for canonicalization once.
// Interning freezes the whole value first, so it cannot change after its hash was taken.
const interned = new WeakMap<object, string | null>()

/** Deep-freezes `value` and lets hashInput() remember its hash. Returns `value`. */
export function internInput<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    deepFreeze(value)
    interned.set(value, null)
  }
  return value
}

export interface InputHash {
  /** SHA-256 (base64url) of the canonical JSON of the input. */
  hash: string
  /** JSON text of the input computed on the way (canonical or plain; the evaluation can reuse it). */
  json?: string
}

/**
 * SHA-256 of the canonical JSON of `input`. The canonical text is also the input's JSON text
 * for the evaluation (key order means nothing to a policy), so it is handed back; inputs whose
 * keys are already in order (JSON.stringify is then canonical) are serialized natively.
 */
export function hashInput (input: unknown): InputHash {
  if (input === undefined) return { hash: hash('sha256', '\0undefined', 'base64url') }
  const isObject = input !== null && typeof input === 'object'
  const memo = isObject ? interned.get(input) : undefined
  if (typeof memo === 'string') return { hash: memo }
  const json = keysSorted(input) ? JSON.stringify(input) : canonicalJson(input)
  const h = hash('sha256', json, 'base64url')
  if (memo === null) interned.set(input as object, h)
  return { hash: h, json }
}

/** Everything a cached decision depends on. */
export interface DecisionKeyParts {
  /** The PolicySnapshot's activation generation (monotonic): covers every bundle's code and data. */
  generation: number
  bundle: string
  revision: string
  path: string
  /** Strict builtin errors: its own field, never folded into the path. */
  strict: boolean
  /** hashInput(input).hash */
  inputSha: string
}

/**
 * The key for an input already hashed (hashInput): SHA-256 over a structured encoding of every
 * part — a JSON array, in which strings are quoted and escaped (control characters and lone
 * surrogates included), so no value of one part can impersonate another or spill into the
 * next (CONVENTIONS: keys are unambiguous; a NUL separator once let the path
 * `allow\u0000strict` read the strict answer of `allow`). One flat 43-character string per
 * entry: a 100,000-entry cache stays small for the garbage collector.
 */
export function decisionCacheKeyOf (p: DecisionKeyParts): string {
  return hash('sha256', JSON.stringify([p.generation, p.strict, p.bundle, p.revision, p.path, p.inputSha]), 'base64url')
}

/** The key of a decision whose input is not hashed yet. */
export function decisionCacheKey (p: Omit<DecisionKeyParts, 'inputSha'>, input: unknown): string {
  return decisionCacheKeyOf({ ...p, inputSha: hashInput(input).hash })
}

/**
 * A copy of `input` without the given paths (each a list of object keys), for cache keys that
 * must not depend on volatile fields. Only the objects on a removed path are copied; the input
 * itself is never changed (the policy still evaluates all of it).
 *
 * @example withoutPaths({a: {id: 1, m: 'GET'}}, [['a', 'id']]) // {a: {m: 'GET'}}
 */
export function withoutPaths (input: unknown, paths: ReadonlyArray<readonly string[]>): unknown {
  let out = input
  for (const path of paths) out = removePath(out, path, 0)
  return out
}

// isJsonObject: an exact number (an object with a `text` member) is a scalar a path never
// reaches into (`parsed_body.text` must not turn every big-number body into one key)
function removePath (node: unknown, path: readonly string[], i: number): unknown {
  if (!isJsonObject(node) || i >= path.length) return node
  const k = path[i] as string
  if (!Object.hasOwn(node, k)) return node
  const copy: Record<string, unknown> = { ...node }
  if (i === path.length - 1) delete copy[k]
  else copy[k] = removePath(copy[k], path, i + 1)
  return copy
}
