/**
 * The one registry of builtins the host supplies to OPA wasm modules.
 *
 * `opa build -t wasm` compiles most builtins into the module; those OPA's builtin_metadata.json
 * marks `"wasm": false` are imported from the host by name. opa-wasm implements a few itself
 * (NATIVE_JS below); every other one must be registered here, one file per builtin group.
 */
import type { BuiltinSpec, EvalContext } from './types.js'
import { BuiltinError, BuiltinUnavailable, RawJson } from './types.js'
import { timeBuiltins } from './time.js'
import { sprintfBuiltins } from './sprintf.js'
import { encodingBuiltins } from './encoding.js'
import { unitsBuiltins } from './units.js'
import { uuidBuiltins } from './uuid.js'
import { semverBuiltins } from './semver.js'
import { urlqueryBuiltins } from './urlquery.js'
import { globBuiltins } from './glob.js'
import { numbersBuiltins } from './numbers.js'
import { objectsBuiltins } from './objects.js'
import { jsonBuiltins } from './json.js'
import { stringsBuiltins } from './strings.js'
import { castsBuiltins } from './casts.js'
import { netBuiltins } from './net.js'
import { regexBuiltins } from './regex.js'
import { cryptoBuiltins } from './crypto.js'
import { runtimeBuiltins } from './runtime.js'
import { traceBuiltins } from './trace.js'
import { randBuiltins } from './rand.js'
import { jwtBuiltins } from './jwt.js'
import { x509Builtins } from './x509.js'
import { jsonSchemaBuiltins } from './json-schema.js'
import { graphBuiltins } from './graph.js'
import { httpBuiltins } from './http.js'
import { uriBuiltins } from './uri.js'
import { providersBuiltins } from './providers.js'
import { graphqlBuiltins } from './graphql.js'
import { yamlBuiltins } from './yaml.js'
import { numberTextArguments } from './exact-json.js'

export type { BuiltinSpec, EvalContext } from './types.js'
export { BuiltinError, RawJson } from './types.js'
export { ExactNumber } from './exact-json.js'
export { configureBuiltins, builtinConfig, type BuiltinConfig } from './config.js'

/** Builtins that @open-policy-agent/opa-wasm implements in JavaScript itself (src/builtins/*.js). */
export const NATIVE_JS_BUILTINS: ReadonlySet<string> = new Set([
  'json.is_valid', 'regex.split', 'sprintf', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal',
])

const groups: BuiltinSpec[][] = [
  sprintfBuiltins,
  timeBuiltins,
  encodingBuiltins,
  unitsBuiltins,
  uuidBuiltins,
  semverBuiltins,
  urlqueryBuiltins,
  globBuiltins,
  numbersBuiltins,
  objectsBuiltins,
  jsonBuiltins,
  stringsBuiltins,
  castsBuiltins,
  netBuiltins,
  regexBuiltins,
  cryptoBuiltins,
  runtimeBuiltins,
  traceBuiltins,
  randBuiltins,
  jwtBuiltins,
  x509Builtins,
  jsonSchemaBuiltins,
  graphBuiltins,
  httpBuiltins,
  uriBuiltins,
  providersBuiltins,
  graphqlBuiltins,
  yamlBuiltins,
]

const registry = new Map<string, BuiltinSpec>()
for (const group of groups) {
  for (const spec of group) {
    if (registry.has(spec.name)) throw new Error(`builtin ${spec.name} registered twice`)
    registry.set(spec.name, spec)
  }
}

export function getBuiltin (name: string): BuiltinSpec | undefined {
  return registry.get(name)
}

export function registeredBuiltins (): string[] {
  return [...registry.keys()].sort()
}

/** Options that decide which builtins a deployment allows. */
export interface BuiltinOptions {
  /** Names of configuration switches that are on (e.g. `http_send`); builtins needing other switches are unavailable. */
  switches?: ReadonlySet<string>
}

export type Availability =
  | { available: true, native: boolean, nondeterministic: boolean }
  | { available: false, reason: 'unknown' | 'disabled', switch?: string }

export function builtinAvailability (name: string, opts: BuiltinOptions = {}): Availability {
  const spec = registry.get(name)
  // A registry entry replaces opa-wasm's own JavaScript version (see policy/engine.ts).
  if (spec === undefined && NATIVE_JS_BUILTINS.has(name)) return { available: true, native: true, nondeterministic: false }
  if (spec === undefined) return { available: false, reason: 'unknown' }
  if (spec.requiresSwitch !== undefined && !(opts.switches?.has(spec.requiresSwitch) ?? false)) {
    return { available: false, reason: 'disabled', switch: spec.requiresSwitch }
  }
  return { available: true, native: false, nondeterministic: spec.nondeterministic === true }
}

/**
 * The evaluation context of the decision currently running. Wasm evaluation is synchronous,
 * so exactly one evaluation is in progress per thread at any moment; the engine sets this
 * around each `evaluate` call.
 */
let current: EvalContext | undefined

/** The context of the evaluation in progress on this thread, if any. */
export function currentContext (): EvalContext | undefined {
  return current
}

export function runWithContext<T> (ctx: EvalContext, fn: () => T): T {
  const previous = current
  current = ctx
  try {
    // The host glue (policy/wasm-host.ts) reads arguments and results with exact numbers itself.
    return fn()
  } finally {
    current = previous
  }
}

/** Creates a fresh per-decision context. `clock` returns epoch nanoseconds (injectable for tests). */
export function createEvalContext (opts: { strictBuiltinErrors?: boolean, clock?: () => bigint, exactNumbers?: boolean } = {}): EvalContext {
  const clock = opts.clock ?? systemClockNs
  let now: bigint | undefined
  return {
    nowNs: () => (now ??= clock()),
    strictBuiltinErrors: opts.strictBuiltinErrors ?? false,
    builtinErrors: [],
    trace: [],
    exactNumbers: opts.exactNumbers ?? false,
    ndCache: new Map(),
  }
}

const hrtimeOrigin = process.hrtime.bigint()
const epochOriginNs = BigInt(Date.now()) * 1_000_000n

/** Wall-clock epoch nanoseconds with sub-millisecond resolution. */
export function systemClockNs (): bigint {
  return epochOriginNs + (process.hrtime.bigint() - hrtimeOrigin)
}

/** Thrown out of the wasm module to abort a strict evaluation on a builtin error. */
export class StrictBuiltinHalt extends Error {
  constructor (readonly builtin: string, readonly reason: string) {
    super(`${builtin}: ${reason}`)
    this.name = 'StrictBuiltinHalt'
  }
}

/**
 * Adapts registered builtins to opa-wasm's `customBuiltins` shape for the names a module uses.
 * A builtin error makes the calling expression undefined (OPA's default) or, in strict mode,
 * aborts the evaluation.
 */
export function hostBuiltinsFor (names: Iterable<string>): Record<string, (...args: unknown[]) => unknown> {
  const out: Record<string, (...args: unknown[]) => unknown> = {}
  for (const name of names) {
    const spec = registry.get(name)
    if (spec === undefined) continue
    out[name] = (...args: unknown[]) => {
      const ctx = current
      if (ctx === undefined) throw new StrictBuiltinHalt(name, 'called outside an evaluation')
      let value: unknown
      try {
        value = spec.impl(ctx, numberTextArguments(args, spec.numberText === true))
      } catch (err) {
        if (err instanceof BuiltinUnavailable) throw new StrictBuiltinHalt(name, err.reason)
        const message = err instanceof BuiltinError ? err.message : err instanceof Error ? `${name}: ${err.message}` : `${name}: ${String(err)}`
        ctx.builtinErrors.push({ builtin: name, message })
        if (ctx.strictBuiltinErrors) throw new StrictBuiltinHalt(name, message)
        return undefined
      }
      if (value instanceof RawJson) {
        const bytes = new TextEncoder().encode(value.text)
        return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
      }
      return value
    }
  }
  return out
}
