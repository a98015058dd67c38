/**
 * Exact numbers across the opa-wasm JSON boundary. opa-wasm hands builtin arguments to the
 * host as JSON text parsed with the global JSON.parse, which rounds integers beyond 2^53 —
 * and OPA's nanosecond timestamps live exactly there. While a wasm evaluation runs (it is
 * synchronous), `withExactJsonParse` makes JSON.parse keep such numbers as ExactNumber, so
 * builtins see the digits the policy computed.
 */

/** A JSON number whose text a double cannot hold exactly. */
export class ExactNumber {
  constructor (readonly text: string) {}
  toJSON (): number { return Number(this.text) }
}

const originalParse = JSON.parse
const NUMBER_OR_STRING = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g
const SUSPECT = /\d{16}|[eE][+-]?\d{3}/
const MARK = '\uE000#n:'

function needsExact (tok: string): boolean {
  const n = Number(tok)
  if (!Number.isFinite(n)) return true
  if (/^-?\d+$/.test(tok)) return !Number.isSafeInteger(n)
  // Non-integers: exact when more than 15 significant digits would be lost.
  const digits = tok.replace(/[eE].*$/, '').replace(/[-.]/g, '').replace(/^0+/, '')
  return digits.length > 15
}

/** JSON.parse that keeps numbers a double cannot hold as ExactNumber. */
export function parseExact (text: string): unknown {
  let found = false
  const marked = text.replace(NUMBER_OR_STRING, (tok) => {
    if (tok.startsWith('"') || !needsExact(tok)) return tok
    found = true
    return `"${MARK}${tok}"`
  })
  if (!found) return originalParse(text)
  return originalParse(marked, (_k, v: unknown) => typeof v === 'string' && v.startsWith(MARK) ? new ExactNumber(v.slice(MARK.length)) : v)
}

let depth = 0
/** The texts of the latest JSON.parse calls during an evaluation (builtin arguments, then the result). */
let recent: string[] = []

function patchedParse (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown): unknown {
  const v = originalParse(text, reviver)
  if (reviver === undefined && typeof text === 'string') {
    recent.push(text)
    if (recent.length > 8) recent.shift()
  }
  return v
}

/**
 * Re-reads, digit for digit, the arguments opa-wasm just parsed for a host builtin call: the
 * last `args.length` JSON texts are the arguments, in order. Only texts that may hold a
 * number a double cannot represent are parsed again.
 */
export function exactArgs (args: unknown[]): unknown[] {
  if (depth === 0 || recent.length < args.length) return args
  const texts = recent.slice(recent.length - args.length)
  recent = []
  let out = args
  for (let k = 0; k < texts.length; k++) {
    const t = texts[k] as string
    if (SUSPECT.test(t)) {
      if (out === args) out = [...args]
      out[k] = parseExact(t)
    }
  }
  return out
}

/**
 * Runs `fn` (one wasm evaluation) with JSON.parse observed, so builtins can recover exact
 * arguments (exactArgs). `exact` re-reads the evaluation's result (the last text parsed)
 * keeping big numbers as ExactNumber.
 */
export function withExactJsonParse<T> (fn: () => T, exact = false): T {
  if (depth++ === 0) { (JSON as { parse: unknown }).parse = patchedParse; recent = [] }
  try {
    const value = fn()
    const last = recent[recent.length - 1]
    if (exact && last !== undefined && SUSPECT.test(last)) return parseExact(last) as T
    return value
  } finally {
    if (--depth === 0) { JSON.parse = originalParse; recent = [] }
  }
}

/** Replaces every ExactNumber in a JSON value by a plain (rounded) number, in place. */
export function plainNumbers (v: unknown): unknown {
  if (v instanceof ExactNumber) return Number(v.text)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = plainNumbers(v[i])
    return v
  }
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) o[k] = plainNumbers(o[k])
  }
  return v
}

/** JSON text of a value that may hold ExactNumber and bigint, with their exact digits. */
export function stringifyExact (v: unknown): string {
  if (v instanceof ExactNumber) return v.text
  if (typeof v === 'bigint') return v.toString()
  if (Array.isArray(v)) return '[' + v.map((x) => x === undefined ? 'null' : stringifyExact(x)).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    const parts: string[] = []
    for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(JSON.stringify(k) + ':' + stringifyExact(x))
    return '{' + parts.join(',') + '}'
  }
  return JSON.stringify(v)
}
