/**
 * Types shared by every host builtin. A builtin group is one file under
 * src/policy/builtins/ exporting a `BuiltinSpec[]`; index.ts collects them into the registry.
 */

/** Per-decision state every builtin may read: one clock value, strictness, collected errors. */
export interface EvalContext {
  /** Nanoseconds since the epoch, read once per decision (OPA: time.now_ns is constant within a query). */
  readonly nowNs: () => bigint
  /** OPA `strict-builtin-errors`: a builtin error fails the decision instead of making the expression undefined. */
  readonly strictBuiltinErrors: boolean
  /** Builtin errors raised during this evaluation (kept even when non-strict, for status and debugging). */
  readonly builtinErrors: Array<{ builtin: string, message: string }>
  /** Lines written by `trace` / `print` during this evaluation. */
  readonly trace: string[]
  /**
   * Keep numbers a double cannot hold as ExactNumber in the evaluation's result too (tests and
   * tools that compare results digit for digit); by default they become plain numbers.
   */
  readonly exactNumbers?: boolean
  /** Per-query cache of non-deterministic builtins keyed by call (OPA: uuid.rfc4122, rand.intn, http.send). */
  readonly ndCache?: Map<string, unknown>
}

/** Thrown by a builtin to raise an OPA builtin error (`eval_builtin_error`). */
export class BuiltinError extends Error {
  constructor (readonly builtin: string, message: string) {
    super(`${builtin}: ${message}`)
    this.name = 'BuiltinError'
  }
}

/**
 * A JSON document already serialized to text. opa-wasm loads an ArrayBuffer result as raw
 * JSON, which lets a builtin return integers beyond 2^53 (nanosecond timestamps) exactly.
 */
export class RawJson {
  constructor (readonly text: string) {}
}

/**
 * A Rego set in a builtin's result. It is an array (sorted, without duplicates, as OPA orders
 * sets), so JSON serialization and code that reads it as a list keep working; the host glue
 * loads any value containing one into the policy as a real Rego set (opa_value_parse), so
 * `net.cidr_merge(x) == {"10.0.0.0/8"}` holds as it does in OPA.
 */
export class RegoSet<T = unknown> extends Array<T> {
  static override get [Symbol.species] (): ArrayConstructor { return Array }
}

export interface BuiltinSpec {
  /** OPA's builtin name, e.g. `time.now_ns`. */
  name: string
  /** Synchronous implementation. Args arrive JSON-decoded; return a JSON value, a RawJson, or undefined (= undefined in Rego). */
  impl: (ctx: EvalContext, args: unknown[]) => unknown
  /** Same inputs can give a different answer (clock, randomness, network): decisions of a policy that calls it are not cached. */
  nondeterministic?: boolean
  /**
   * Builtins that reach outside the process (network, randomness) are off unless the named
   * configuration switch turns them on. A bundle calling a disabled builtin is rejected at load.
   */
  requiresSwitch?: string
  /**
   * Reads numbers by their text, as OPA does for this builtin: an integral number written with a
   * fraction or exponent (`100.0`, `1e2`) arrives as a NumberText instead of a plain number.
   */
  numberText?: boolean
}

/**
 * A builtin that cannot run at all here (its library failed to load: a broken install). Not a
 * builtin error, which OPA turns into an undefined expression: the evaluation is aborted in any
 * mode, so the decision fails (deny) rather than letting `not valid` or undefined decide.
 */
export class BuiltinUnavailable extends Error {
  constructor (readonly builtin: string, readonly reason: string) {
    super(`${builtin}: ${reason}`)
    this.name = 'BuiltinUnavailable'
  }
}

/**
 * `specs`, each loading its library (`load`, throwing when it cannot) before it runs, outside
 * the builtin's own catches that turn a bad argument into `false` or an error string: a library
 * that cannot be loaded (a broken install) fails the evaluation (BuiltinUnavailable), never
 * answers "not valid".
 */
export function withLibrary (specs: BuiltinSpec[], library: string, load: () => unknown): BuiltinSpec[] {
  const ensure = (builtin: string): void => {
    try {
      load()
    } catch (err) {
      throw new BuiltinUnavailable(builtin, `${library} cannot be loaded (${err instanceof Error ? err.message : String(err)})`)
    }
  }
  return specs.map((spec) => ({ ...spec, impl: (ctx, args) => { ensure(spec.name); return spec.impl(ctx, args) } }))
}
