/**
 * A PolicySnapshot is the immutable set of active bundles, instantiated together with the
 * merged data of all of them (roots never overlap, so the merge is conflict-free). Activation
 * builds a new snapshot off to the side and swaps one reference; a decision takes the snapshot
 * once at its start, so it finishes on the revision it began with.
 */
import { PolicyError } from '../errors.js'
import { cleanPath, dataMember, isAncestorOf, pathIndex, rootContains, setDataMember } from './bundle.js'
import type { CompiledBundle } from './engine.js'
import { memoryDescriptor, ModuleInstance } from './engine.js'
import { buildDataImage, buildDataImageOffThread, imageBase, type BuildOptions, type DataDocument } from './data-loader.js'
import type { DataImage } from './data-image.js'
import { createEvalContext, ExactNumber, type EvalContext } from './builtins/index.js'
import { RegoSet } from './builtins/types.js'
import { plainNumbers, stringifyExact } from './builtins/exact-json.js'
import { containsExact } from '../canonical-json.js'

export interface ActiveBundle {
  compiled: CompiledBundle
  activatedAt: Date
  /** Module path -> instance. */
  instances: Map<string, ModuleInstance>
}

export type Resolution =
  | { kind: 'entrypoint', bundle: ActiveBundle, entrypoint: string, rest: string[] }
  /** Data beneath no rule; `value` undefined: a path below a data array or scalar, undefined for certain. */
  | { kind: 'data', bundle: ActiveBundle, value: unknown }
  /** No active bundle's roots own the path: the document is undefined, as in OPA. */
  | { kind: 'none' }

export interface Evaluation {
  /** False when the document is undefined. */
  defined: boolean
  result?: unknown
  /**
   * The result as JSON text with its numbers exactly as the policy computed them, present only
   * when the result holds a number a double cannot represent (integers beyond 2^53, e.g.
   * nanosecond timestamps at the int64 extremes): `result` then holds the nearest doubles, and
   * whoever writes the answer writes this text instead.
   */
  resultJson?: string
  /** Name of the bundle that answered, and its revision. */
  bundle: string
  revision: string
  /** Entrypoint evaluated (absent for a data-only answer). */
  entrypoint?: string
  /** False when the answering policy calls non-deterministic builtins. */
  cacheable: boolean
  /** Builtin errors raised (and, unless strict, turned into undefined expressions). */
  builtinErrors: EvalContext['builtinErrors']
  /** Lines the policy wrote with trace(). */
  trace: string[]
}

export interface EvaluateOptions {
  /** The input document as JSON text, when the caller already serialized it. */
  inputJson?: string
  /** Per-decision builtin context (clock, strictness); a fresh one is made when absent. */
  context?: EvalContext
  strictBuiltinErrors?: boolean
}

const RESOLUTION_CACHE_MAX = 4096

/** Bundles whose large data was released (PolicySnapshot.releaseLargeData) and lives only in images. */
const inImage = new WeakSet<object>()

/**
 * The JSON text of an input as evaluation passes it to the module: numbers kept as written
 * (ExactNumber) where the input has them. Falsy inputs (false, 0, "", null) are text too.
 */
export function inputJsonOf (input: unknown): string {
  return containsExact(input) ? stringifyExact(input) : JSON.stringify(input)
}

export class PolicySnapshot {
  readonly generation: number
  readonly bundles: ReadonlyMap<string, ActiveBundle>
  readonly #resolutions = new Map<string, Resolution>()
  /** The merged data of every active bundle, once, in wasm layout; each instance gets a copy. */
  readonly #data: DataImage

  /**
   * Builds every instance with the merged data (`image`: built already, see `build`).
   * Throws BundleError when large data is invalid.
   */
  constructor (generation: number, compiled: Array<{ compiled: CompiledBundle, activatedAt: Date }>, image?: DataImage) {
    this.generation = generation
    if (image === undefined) {
      const { docs, opts } = dataDocuments(compiled)
      image = buildDataImage(docs, opts)
    }
    this.#data = image
    const bundles = new Map<string, ActiveBundle>()
    for (const { compiled: c, activatedAt } of compiled) {
      const instances = new Map<string, ModuleInstance>()
      for (const m of c.modules) instances.set(m.path, new ModuleInstance(m, this.#data, c.options))
      bundles.set(c.bundle.name, { compiled: c, activatedAt, instances })
    }
    this.bundles = bundles
  }

  /**
   * As the constructor, but large data is parsed on a worker thread (data-loader.ts
   * buildDataImageOffThread), so that an activation under load does not stall decisions on
   * the event loop for the length of the parse. Used by bundle activation.
   */
  static async build (generation: number, compiled: Array<{ compiled: CompiledBundle, activatedAt: Date }>, previous?: PolicySnapshot): Promise<PolicySnapshot> {
    const { docs, opts } = dataDocuments(compiled, previous)
    return new PolicySnapshot(generation, compiled, await buildDataImageOffThread(docs, opts))
  }

  /**
   * Drops the raw bytes of this snapshot's large data documents (about their size again in
   * memory): from now on their data lives only in the image, and a later snapshot that keeps
   * these bundles takes it from this one (`build(..., previous)`). Call once this snapshot
   * serves.
   */
  releaseLargeData (): void {
    for (const b of this.bundles.values()) {
      const bundle = b.compiled.bundle
      if (bundle.largeData === undefined) continue
      inImage.add(bundle)
      bundle.largeData = undefined
    }
  }

  /** The JSON text of the data at `path` (see DataImage.jsonAt). */
  dataJson (path: string[]): Uint8Array | undefined {
    return this.#data.jsonAt(path)
  }

  static empty (): PolicySnapshot {
    return new PolicySnapshot(0, [])
  }

  #revisions: Record<string, { revision: string }> | undefined

  /** Revisions of the active bundles, `{name: {revision}}` as OPA's decision logs carry them (frozen; computed once). */
  revisions (): Record<string, { revision: string }> {
    if (this.#revisions === undefined) {
      const out: Record<string, { revision: string }> = {}
      for (const [name, b] of this.bundles) out[name] = Object.freeze({ revision: b.compiled.bundle.manifest.revision })
      this.#revisions = Object.freeze(out)
    }
    return this.#revisions
  }

  /**
   * Finds the bundle and entrypoint (or data document) that answers a Data API path like
   * `authz/allow`. A path no bundle owns is `none` (undefined, as OPA answers); a path inside a
   * bundle's roots that no entrypoint or data answers throws PORTCULLIS_POLICY_PATH_NOT_FOUND,
   * because its value cannot be computed from what was compiled.
   */
  resolve (rawPath: string): Resolution {
    const path = cleanPath(rawPath)
    const cached = this.#resolutions.get(path)
    if (cached !== undefined) return cached
    const resolution = this.#resolve(path)
    // Data answers are read from the image each time rather than kept: a read of a large
    // subtree (GET /v1/data/users) would otherwise pin a copy of it as JavaScript objects.
    if (resolution.kind !== 'data' && this.#resolutions.size < RESOLUTION_CACHE_MAX) this.#resolutions.set(path, resolution)
    return resolution
  }

  #resolve (path: string): Resolution {
    let owner: ActiveBundle | undefined
    for (const b of this.bundles.values()) {
      if (b.compiled.bundle.manifest.roots.some((r) => rootContains(r, path))) {
        owner = b
        break
      }
    }
    if (owner === undefined) return { kind: 'none' }
    const entrypoints = [...owner.compiled.entrypointModule.keys()]
    if (entrypoints.includes(path)) return { kind: 'entrypoint', bundle: owner, entrypoint: path, rest: [] }
    // The longest entrypoint above the path answers it: evaluate it and descend.
    let best: string | undefined
    for (const e of entrypoints) {
      if (rootContains(e, path) && (best === undefined || e.length > best.length)) best = e
    }
    if (best !== undefined) {
      const rest = best === '' ? path.split('/') : path.slice(best.length + 1).split('/')
      return { kind: 'entrypoint', bundle: owner, entrypoint: best, rest }
    }
    // A pure data document, when no compiled rule lies beneath it. (OPA rejects bundles whose
    // rules and data share a path, so data found here is the whole document.)
    if (!entrypoints.some((e) => isAncestorOf(path, e))) {
      const segments = path === '' ? [] : path.split('/')
      const value = this.#data.read(segments)
      if (value !== undefined) return { kind: 'data', bundle: owner, value }
      // past the end of a data array, or below a data scalar: undefined, as OPA answers
      if (this.#data.absentBelowLeaf(segments)) return { kind: 'data', bundle: owner, value: undefined }
    }
    throw new PolicyError('PORTCULLIS_POLICY_PATH_NOT_FOUND',
      `path /${path} is in bundle ${owner.compiled.bundle.name} but is not a compiled entrypoint (entrypoints: ${entrypoints.join(', ') || 'none'}); add it with "opa build -e ${path}"`,
      { path, bundle: owner.compiled.bundle.name, entrypoints })
  }

  /** Evaluates a Data API path against this snapshot. Throws PolicyError; never returns a guess. */
  evaluate (path: string, input: unknown, opts: EvaluateOptions = {}): Evaluation {
    const res = this.resolve(path)
    if (res.kind === 'none') return { bundle: '', revision: '', cacheable: false, defined: false, builtinErrors: [], trace: [] }
    const b = res.bundle.compiled
    // (result objects are written out in full: object spread here cost more than the lookup)
    if (res.kind === 'data') {
      if (res.value === undefined) return { bundle: b.bundle.name, revision: b.bundle.manifest.revision, cacheable: b.cacheable, defined: false, builtinErrors: [], trace: [] }
      const data: Evaluation = { bundle: b.bundle.name, revision: b.bundle.manifest.revision, cacheable: b.cacheable, defined: true, result: res.value, builtinErrors: [], trace: [] }
      // numbers kept as written (big integers, 100.0, 1e3): the exact text answers, doubles for everyone else
      if (containsExact(res.value)) {
        data.resultJson = stringifyExact(res.value)
        if (opts.context?.exactNumbers !== true) data.result = plainNumbers(res.value)
      }
      return data
    }

    const ctx = opts.context ?? createEvalContext({ strictBuiltinErrors: opts.strictBuiltinErrors ?? false })
    const instance = res.bundle.instances.get(b.entrypointModule.get(res.entrypoint) as string) as ModuleInstance
    // JSON text of the input (undefined: no input). Falsy inputs (false, 0, "", null) are text
    // too, so they are never mistaken for "no input".
    const inputJson = opts.inputJson ?? (input === undefined ? undefined : inputJsonOf(input))
    const out = instance.evaluate(res.entrypoint, inputJson, ctx, res.rest.length > 0)
    const evaluation: Evaluation = {
      defined: false,
      bundle: b.bundle.name,
      revision: b.bundle.manifest.revision,
      entrypoint: res.entrypoint,
      cacheable: b.cacheable,
      builtinErrors: ctx.builtinErrors,
      trace: ctx.trace,
    }
    if (!out.defined) return evaluation
    let value = out.value
    if (res.rest.length > 0) {
      for (const key of res.rest) {
        const next = step(value, key)
        if (next === NOT_FOUND) return evaluation
        value = next
      }
      value = withoutSets(value)
    }
    evaluation.defined = true
    if (out.exact && containsExact(value)) {
      evaluation.resultJson = stringifyExact(value)
      // tools that compare digit for digit keep the ExactNumbers; everyone else reads doubles
      evaluation.result = ctx.exactNumbers === true ? value : plainNumbers(value)
    } else {
      evaluation.result = value
    }
    return evaluation
  }
}


const NOT_FOUND = Symbol('not found')

/**
 * One segment of a Data API path below an entrypoint's value, as OPA evaluates the ref it makes
 * of the path (policy/bundle.ts pathIndex): a number term selects an array element or an equal
 * set member, a string term an object key or an equal set member. A number term never names
 * an object's (string) key: OPA's evaluation of a rule's value finds none either.
 */
function step (value: unknown, key: string): unknown {
  const index = pathIndex(key)
  if (value instanceof RegoSet) {
    const want: unknown = index ?? key
    return value.some((m) => m === want) ? want : NOT_FOUND
  }
  if (Array.isArray(value)) return index !== undefined && index >= 0 && index < value.length ? value[index] : NOT_FOUND
  if (value === null || typeof value !== 'object' || value instanceof ExactNumber || index !== undefined || !Object.hasOwn(value, key)) return NOT_FOUND
  return (value as Record<string, unknown>)[key]
}

/** A value read with its sets kept (RegoSets), with every set an array again, as results are. */
function withoutSets (v: unknown): unknown {
  if (Array.isArray(v)) return Array.from(v, withoutSets)
  if (v === null || typeof v !== 'object' || v instanceof ExactNumber) return v
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withoutSets(x)]))
}

/**
 * The data documents of the active bundles and where their image goes. Small documents were
 * parsed and checked by the bundle loader: merged here into one root document (bundles' roots
 * never overlap). Large ones are parsed from their exact bytes, straight into wasm memory, and
 * checked against their bundle's roots there.
 */
function dataDocuments (compiled: Array<{ compiled: CompiledBundle }>, previous?: PolicySnapshot): { docs: DataDocument[], opts: BuildOptions } {
  const small: Record<string, unknown> = {}
  const fromPrevious: DataDocument[] = []
  for (const { compiled: c } of compiled) {
    if (!inImage.has(c.bundle)) { mergeInto(small, c.bundle.data); continue }
    // Its raw bytes were released: all of its data (small documents included) is under its
    // roots in the previous snapshot's image, which still serves it.
    const served = previous !== undefined && [...previous.bundles.values()].some((b) => b.compiled.bundle === c.bundle)
    if (!served) throw new PolicyError('PORTCULLIS_POLICY_EVAL_FAILED', `bundle ${c.bundle.name}: its large data was released and no previous snapshot holds it`, { bundle: c.bundle.name })
    for (const root of c.bundle.manifest.roots) {
      const path = root === '' ? [] : root.split('/')
      const json = previous.dataJson(path)
      if (json !== undefined) fromPrevious.push({ path, json, file: `data under /${root} (active revision)`, source: c.bundle.source, roots: c.bundle.manifest.roots })
    }
  }
  // stringifyExact: small data keeps the numbers its files wrote (bundles/load.ts parses them exactly)
  const docs: DataDocument[] = [{ path: [], json: new TextEncoder().encode(stringifyExact(small)), file: 'data.json', source: 'active bundles' }, ...fromPrevious]
  for (const { compiled: c } of compiled) {
    for (const d of c.bundle.largeData ?? []) docs.push({ ...d, source: c.bundle.source, roots: c.bundle.manifest.roots })
  }
  const modules = compiled.flatMap(({ compiled: c }) => c.modules)
  const engine = compiled[0]?.compiled.options ?? {}
  return { docs, opts: { base: imageBase(modules.map((m) => m.heapPtr)), maxPages: memoryDescriptor(engine).maximum ?? 65536 } }
}

/** Merges `src` into `target` without modifying `src` (bundles' data is shared and frozen). */
/** A JSON object of data (not an array, not a number kept as ExactNumber). */
function isDataObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof ExactNumber)
}

function mergeInto (target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    const existing = dataMember(target, k)
    if (isDataObject(existing) && isDataObject(v)) {
      // Copy on the way down: `existing` may be another bundle's own object.
      const into: Record<string, unknown> = { ...(existing as Record<string, unknown>) }
      setDataMember(target, k, into)
      mergeInto(into, v as Record<string, unknown>)
    } else {
      setDataMember(target, k, v)
    }
  }
}
