/**
 * The policy engine over opa-wasm: compile a bundle's wasm modules once, instantiate them with
 * the snapshot's data, evaluate many times. Loading rejects a module that calls a builtin no
 * one implements, naming the builtin, so no request ever meets it.
 */
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm'
import { evaluateOrdered, instantiatePolicy } from './wasm-host.js'
import { BundleError, PolicyError } from '../errors.js'
import type { PolicyBundle } from './bundle.js'
import type { DataImage } from './data-image.js'
import {
  builtinAvailability, hostBuiltinsFor, registeredBuiltins, runWithContext, StrictBuiltinHalt,
  type BuiltinOptions, type EvalContext,
} from './builtins/index.js'

export interface EngineOptions {
  builtins?: BuiltinOptions
  /** Wasm linear memory bounds in 64 KiB pages. */
  memory?: { initialPages?: number, maxPages?: number }
}

const DEFAULT_INITIAL_PAGES = 5
const DEFAULT_MAX_PAGES = 8192 // 512 MiB per instance

/** One compiled wasm module of a bundle and what it declares. */
export interface CompiledModule {
  path: string
  module: WebAssembly.Module
  /** Builtins the module imports from the host (by name). */
  builtins: string[]
  /** Entrypoint name -> id, as the module exports them. */
  entrypoints: Record<string, number>
  /** The module's heap pointer once instantiated: data images are placed above it. */
  heapPtr: number
}

/** A bundle whose modules compiled and whose builtins are all available. Immutable. */
export interface CompiledBundle {
  bundle: PolicyBundle
  modules: CompiledModule[]
  /** Entrypoint -> module path (from the manifest). */
  entrypointModule: Map<string, string>
  builtins: string[]
  /** False when the policy calls a non-deterministic builtin: its decisions must not be cached. */
  cacheable: boolean
  options: EngineOptions
}

export function memoryDescriptor (opts: EngineOptions): WebAssembly.MemoryDescriptor {
  return {
    initial: opts.memory?.initialPages ?? DEFAULT_INITIAL_PAGES,
    maximum: opts.memory?.maxPages ?? DEFAULT_MAX_PAGES,
  }
}

function hostBuiltins (opts: EngineOptions): Record<string, (...args: unknown[]) => unknown> {
  return hostBuiltinsFor(registeredBuiltins().filter((n) => builtinAvailability(n, opts.builtins).available))
}

/** What a wasm module declares: the builtins it imports from the host and its entrypoints. */
export function inspectModule (bytes: Uint8Array<ArrayBuffer>, source: string, path: string, opts: EngineOptions = {}): CompiledModule {
  try {
    const module = new WebAssembly.Module(bytes)
    const { policy, builtins } = instantiatePolicy(module, memoryDescriptor(opts), hostBuiltins(opts))
    const heapPtr = (policy as unknown as { wasmInstance: { exports: { opa_heap_ptr_get: () => number } } }).wasmInstance.exports.opa_heap_ptr_get()
    return { path, module, builtins, entrypoints: policy.entrypoints as Record<string, number>, heapPtr }
  } catch (err) {
    throw new BundleError('PORTCULLIS_BUNDLE_WASM_INVALID', `${source}: ${path} is not a loadable OPA wasm module (${errorText(err)})`, { source, file: path }, { cause: err })
  }
}

/** Compiles and checks a loaded bundle. Throws a BundleError naming the module, builtin or entrypoint. */
export function compileBundle (bundle: PolicyBundle, opts: EngineOptions = {}): CompiledBundle {
  const modules: CompiledModule[] = []
  const builtins = new Set<string>()
  let cacheable = true

  for (const [path, bytes] of bundle.wasmModules) {
    const mod = inspectModule(new Uint8Array(bytes), bundle.source, path, opts)
    for (const name of mod.builtins) {
      const a = builtinAvailability(name, opts.builtins)
      if (!a.available) {
        const why = a.reason === 'disabled'
          ? `it is disabled in this deployment (enable the "${a.switch ?? ''}" builtin switch to allow it)`
          : 'Portcullis does not provide it (see docs/builtins.md)'
        throw new BundleError('PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED',
          `${bundle.source}: ${path} calls builtin ${name}: ${why}`, { source: bundle.source, file: path, builtin: name, reason: a.reason })
      }
      if (a.nondeterministic) cacheable = false
      builtins.add(name)
    }
    modules.push(mod)
  }

  const entrypointModule = new Map<string, string>()
  for (const w of bundle.manifest.wasm) {
    const mod = modules.find((m) => m.path === w.module)
    if (mod === undefined || !Object.hasOwn(mod.entrypoints, w.entrypoint)) {
      throw new BundleError('PORTCULLIS_BUNDLE_WASM_INVALID',
        `${bundle.source}: .manifest maps entrypoint ${JSON.stringify(w.entrypoint)} to ${w.module}, which does not export it`,
        { source: bundle.source, file: w.module, entrypoint: w.entrypoint })
    }
    entrypointModule.set(w.entrypoint, w.module)
  }

  return { bundle, modules, entrypointModule, builtins: [...builtins].sort(), cacheable, options: opts }
}

/**
 * A running instance of one compiled module with data loaded. Each evaluation is synchronous;
 * a wasm trap leaves the instance suspect, so it is replaced by a fresh one from the same
 * compiled module before the next evaluation.
 */
export class ModuleInstance {
  #policy: LoadedPolicy
  readonly #compiled: CompiledModule
  readonly #opts: EngineOptions
  readonly #data: DataImage

  constructor (compiled: CompiledModule, data: DataImage, opts: EngineOptions) {
    this.#compiled = compiled
    this.#opts = opts
    this.#data = data
    this.#policy = this.#instantiate()
  }

  /** A fresh instance with the data image copied in (never re-parsed: see data-loader.ts). */
  #instantiate (): LoadedPolicy {
    const memory = this.#data.memoryFor(memoryDescriptor(this.#opts))
    const { policy } = instantiatePolicy(this.#compiled.module, memory, hostBuiltins(this.#opts))
    this.#data.attach(policy)
    return policy
  }

  /**
   * Evaluates an entrypoint. `inputJson` is the input document as JSON text (undefined: no input).
   * Returns `{ defined: false }` for an undefined result; a defined value holds ExactNumbers
   * for numbers a double cannot hold, and says so with `exact`. With `keepSets`, sets in the
   * value are RegoSets (a caller that descends into them), otherwise sorted arrays.
   */
  evaluate (entrypoint: string, inputJson: string | undefined, ctx: EvalContext, keepSets = false): { defined: true, value: unknown, exact: boolean } | { defined: false } {
    const id = this.#compiled.entrypoints[entrypoint]
    if (id === undefined) throw new PolicyError('PORTCULLIS_POLICY_PATH_NOT_FOUND', `entrypoint ${entrypoint} is not exported by ${this.#compiled.path}`, { entrypoint })
    let rs: unknown
    let exact = false
    const onExact = (): void => { exact = true }
    try {
      rs = runWithContext(ctx, () => evaluateOrdered(this.#policy, id, inputJson, onExact, keepSets))
    } catch (err) {
      throw this.#classify(err, entrypoint)
    }
    if (!Array.isArray(rs) || rs.length === 0) return { defined: false }
    const first = rs[0] as { result?: unknown } | undefined
    if (first === undefined || !Object.hasOwn(first, 'result')) return { defined: false }
    // `exact`: the value holds ExactNumbers (numbers a double cannot hold)
    return { defined: true, value: first.result, exact }
  }

  #classify (err: unknown, entrypoint: string): PolicyError {
    if (err instanceof StrictBuiltinHalt) {
      return new PolicyError('PORTCULLIS_POLICY_BUILTIN_ERROR', `${entrypoint}: builtin error: ${err.reason}`, { entrypoint, builtin: err.builtin, opa_code: 'eval_builtin_error' }, { cause: err })
    }
    const text = errorText(err)
    if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
      // Trap or memory exhaustion: start the next evaluation from a clean instance.
      this.#policy = this.#instantiate()
      return new PolicyError('PORTCULLIS_POLICY_EVAL_FAILED', `${entrypoint}: wasm evaluation aborted (${text})`, { entrypoint }, { cause: err })
    }
    if (/conflict/.test(text)) {
      return new PolicyError('PORTCULLIS_POLICY_CONFLICT', `${entrypoint}: ${text}`, { entrypoint, opa_code: 'eval_conflict_error' }, { cause: err })
    }
    return new PolicyError('PORTCULLIS_POLICY_EVAL_FAILED', `${entrypoint}: evaluation failed (${text})`, { entrypoint }, { cause: err })
  }
}

function errorText (err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'string') return err
  if (err !== null && typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message
  return String(err)
}
