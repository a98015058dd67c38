/**
 * JSON text from callers (Data API bodies, Envoy request bodies) into the values a policy sees,
 * refusing what JavaScript's JSON.parse would silently turn into something else:
 *
 * - nesting deeper than a limit (it would exhaust the stack of the parser or of a later walk);
 * - a number outside the range of a double (`1e400`): JSON.parse makes it Infinity, which
 *   JSON.stringify writes as `null`, and `null < 1000` holds in Rego — a huge amount would pass
 *   a limit check. OPA keeps the number; Portcullis refuses the request (fail closed).
 *
 * A lone surrogate escape (`"\ud800"`) becomes U+FFFD, as Go's encoding/json decodes it, so the
 * policy sees what OPA's would (the wasm module's JSON parser rejects lone surrogates outright).
 *
 * A number a double cannot hold exactly (an integer beyond 2^53, a decimal with more than 15
 * significant digits) is kept as ExactNumber with its digits, as OPA keeps input numbers: a
 * 64-bit account id in the input compares with the same id in data digit for digit, and two
 * ids that differ only beyond a double's precision are never equal. The canonical JSON of the
 * input (cache key and evaluation text, canonical-json.ts) writes those digits.
 */
import { ExactNumber, parseKeepingNumbers } from './canonical-json.js'

export type JsonInputProblem = 'too-deep' | 'syntax' | 'number-out-of-range'

export class JsonInputError extends Error {
  readonly problem: JsonInputProblem
  constructor (problem: JsonInputProblem, message: string) {
    super(message)
    this.problem = problem
  }
}

/** Nesting depth of JSON text (arrays and objects), ignoring brackets inside strings. Stops early past `limit`. */
export function jsonDepthExceeds (text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

// Only text that could hold such numbers or escapes is walked after parsing. A number's magnitude
// reaches 1.8e308 only with an exponent (`1e400`, or `1000…0e99` with a long mantissa) or with 309
// integer digits, so: a digit followed by an exponent mark, or a run of 309 digits.
const MAY_OVERFLOW = /\d[eE]|\d{309}/
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

// String.prototype.toWellFormed (ES2024; in Node since 20): lone surrogates become U+FFFD.
const wellFormed = (s: string): string => (s as unknown as { toWellFormed: () => string }).toWellFormed()

// A number whose digits a double may lose: 16 or more digits (a decimal point among them) somewhere
// in the text; or one that may underflow to zero: an exponent of -100 or below.
const MAY_LOSE_DIGITS = /(?:\d\.?){16}|[eE]-0*[1-9]\d{2}/

/**
 * Whether a JSON number token loses digits as a double (and is finite: overflow is refused
 * separately): the double's shortest text holds other significant digits than the caller's. For
 * an integer too, even one a double holds exactly: 2^60 is written back as 1152921504606847000,
 * which a policy (and the cache key) would then compare as another number.
 */
function losesDigits (tok: string): boolean {
  const n = Number(tok)
  if (!Number.isFinite(n)) return false
  // (a non-zero number below a double's smallest, 1e-400, reads as 0: its digits are kept too)
  return significant(tok) !== significant(String(n))
}

/**
 * The significant digits of a number's text: no sign, point, exponent, leading or trailing
 * zeros. Index loops, linear in the token: `/0+$/` retried at every zero of a long inner run
 * (`1.000…0001`), a quadratic cost a 1 MiB body turned into minutes of a blocked event loop.
 */
function significant (t: string): string {
  let end = t.length
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i)
    if (c === 0x65 || c === 0x45) { end = i; break } // e, E
  }
  const digits = t.slice(0, end).replace(/[-.]/g, '')
  let a = 0
  let b = digits.length
  while (a < b && digits.charCodeAt(a) === 0x30) a++
  while (b > a && digits.charCodeAt(b - 1) === 0x30) b--
  return digits.slice(a, b)
}

/** Whether `text` may hold a number that a double would change (then parseJsonInput keeps its digits). */
export function mayLoseDigits (text: string): boolean {
  return MAY_LOSE_DIGITS.test(text)
}


/** JSON.parse with the checks above; throws JsonInputError. */
export function parseJsonInput (text: string, maxDepth: number): unknown {
  if (jsonDepthExceeds(text, maxDepth)) throw new JsonInputError('too-deep', `nests deeper than ${maxDepth} levels`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new JsonInputError('syntax', `is not valid JSON: ${(err as Error).message}`)
  }
  const overflow = MAY_OVERFLOW.test(text)
  const surrogates = SURROGATE_ESCAPE.test(text)
  if (MAY_LOSE_DIGITS.test(text)) {
    let exact: { value: unknown } | undefined
    try {
      exact = parseKeepingNumbers(text, losesDigits)
    } catch {
      // no marker is free: refused, never answered with the digits rounded away
      throw new JsonInputError('syntax', 'uses every private-use character U+E000–U+F8FF; its numbers cannot be read exactly')
    }
    if (exact !== undefined) value = exact.value
  }
  return overflow || surrogates ? checked(value, overflow, surrogates) : value
}

function checked (v: unknown, overflow: boolean, surrogates: boolean): unknown {
  if (v instanceof ExactNumber) return v
  if (typeof v === 'number') {
    if (overflow && !Number.isFinite(v)) throw new JsonInputError('number-out-of-range', 'holds a number outside the range of a 64-bit float')
    return v
  }
  if (typeof v === 'string') return surrogates ? wellFormed(v) : v
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = checked(v[i], overflow, surrogates)
    return v
  }
  const o = v as Record<string, unknown>
  if (!surrogates) {
    for (const k of Object.keys(o)) o[k] = checked(o[k], overflow, surrogates)
    return o
  }
  // keys too: rebuilt in order, each well formed (two keys may then coincide: the last wins, as in Go)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(o)) {
    const key = wellFormed(k)
    const val = checked(o[k], overflow, surrogates)
    if (key === '__proto__') Object.defineProperty(out, key, { value: val, enumerable: true, writable: true, configurable: true })
    else out[key] = val
  }
  return out
}
