/**
 * Case tables of the differential tests (test/policy/builtins/*.test.ts) and of
 * `npm run conformance`: each builtin gets a table of argument lists, evaluated by `opa eval`
 * (the oracle) and by Portcullis on a wasm bundle the real `opa build -t wasm` compiled.
 */
export interface Case {
  /** Arguments of the call; bigint values are written into the input as exact JSON integers. */
  args: unknown[]
  note?: string
}

export interface Table {
  builtin: string
  /**
   * Rego expression evaluated per case; `$0`, `$1`, ... are the case's arguments. Defaults to
   * `<builtin>($0, $1, ...)`. Non-deterministic builtins compare a property instead of the value.
   */
  call?: string
  cases: Case[]
}

export interface Group {
  /** Source file under src/policy/builtins/ the tables cover. */
  name: string
  tables: Table[]
  /** Builtin switches the Portcullis side needs (e.g. rand_intn). */
  switches?: string[]
  /** Rego v0 syntax and `--v0-compatible` (for builtins deprecated in v1, like cast_*). */
  v0?: boolean
}

/** Shorthand: one case per argument list. */
export function table (builtin: string, argLists: unknown[][], call?: string): Table {
  return { builtin, call, cases: argLists.map((args) => ({ args })) }
}
