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
  created++
  return originalParse(marked, (_k, v: unknown) => typeof v === 'string' && v.startsWith(MARK) ? new ExactNumber(v.slice(MARK.length)) : v)
}

let depth = 0
let created = 0

function patchedParse (text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown): unknown {
  if (reviver === undefined && typeof text === 'string' && SUSPECT.test(text)) {
    return parseExact(text)
  }
  return originalParse(text, reviver)
}

/**
 * Runs `fn` with exact JSON parsing. Returns fn's result and whether any ExactNumber may have
 * been produced (so the caller can convert them back where plain numbers are expected).
 */
export function withExactJsonParse<T> (fn: () => T): { value: T, exact: boolean } {
  const before = created
  if (depth++ === 0) (JSON as { parse: unknown }).parse = patchedParse
  try {
    const value = fn()
    return { value, exact: created !== before }
  } finally {
    if (--depth === 0) JSON.parse = originalParse
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
