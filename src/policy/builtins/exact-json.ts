/**
 * Exact numbers across the wasm JSON boundary. Builtin arguments arrive as JSON text, and
 * JSON.parse rounds integers beyond 2^53 — where OPA's nanosecond timestamps live. The host
 * glue (policy/wasm-host.ts) parses arguments with `parseExact`, which keeps such numbers as
 * ExactNumber so builtins see the digits the policy computed.
 */

import { ExactNumber, parseKeepingNumbers } from '../../canonical-json.js'

/** A JSON number whose text a double cannot hold exactly (one class, shared with the canonical-JSON encoder). */
export { ExactNumber }

/**
 * An integral number written with a fraction or an exponent (`100.0`, `1e2`, `-1e9`): a double
 * holds its value but not its form, and OPA decides by the form in places — sprintf formats
 * `100.0` as a float64, providers.aws.sign_req refuses `-1e9` as a timestamp, text/template and
 * yaml.marshal print it as written. Only builtins that declare `numberText` see these; every
 * other builtin gets the plain number (equal to `100`, as in Rego).
 */
export class NumberText extends ExactNumber {}

/** Whether parseExact produced a NumberText since numberTextArguments last looked. */
let numberTextsSeen = false

const originalParse = JSON.parse
/**
 * Texts that may hold a number a double loses: 16 or more digits (a decimal point among them:
 * `1234567.1234567891` has no run of 16 but 17 significant digits), exponents, fractions ending
 * in 0. A superset of what needsExact keeps, so the text without it parses plainly.
 */
const SUSPECT = /(?:\d\.?){16}|\d[eE]|\.\d*0(?!\d)/

/**
 * Whether a JSON number token must stay ExactNumber: a double cannot hold its value, or its
 * text says "floating point" (a fraction or an exponent) while its value is integral (`100.0`,
 * `1e2`, `0.0`, `-1e9`). OPA decides by the text there — sprintf formats `100.0` as a float,
 * providers.aws.sign_req refuses `-1e9` as a timestamp — and a double would forget it.
 */
export function needsExact (tok: string): boolean {
  const n = Number(tok)
  if (!Number.isFinite(n)) return true
  if (/^-?\d+$/.test(tok)) return !Number.isSafeInteger(n)
  if (Number.isInteger(n)) return true
  return digitsLost(tok)
}

/** A token needsExact keeps only for its form: an integral value a double holds exactly, written with a fraction or exponent. */
function isNumberText (tok: string): boolean {
  const n = Number(tok)
  return Number.isSafeInteger(n) && !/^-?\d+$/.test(tok) && !digitsLost(tok)
}

function digitsLost (tok: string): boolean {
  // Exact when more than 15 significant digits would be lost.
  const digits = tok.replace(/[eE].*$/, '').replace(/[-.]/g, '').replace(/^0+/, '')
  return digits.length > 15
}

/**
 * JSON.parse that keeps numbers a double cannot hold as ExactNumber (canonical-json.ts
 * parseKeepingNumbers: a marker no string of the text can hold). Throws RangeError for a text
 * that uses every marker (the builtin then fails, the bundle data is refused).
 */
export function parseExact (text: string): unknown {
  // Most texts hold no long digit run or large exponent: parse them directly.
  if (!SUSPECT.test(text)) return originalParse(text)
  const exact = parseKeepingNumbers(text, needsExact, argumentNumber)
  return exact !== undefined ? exact.value : originalParse(text)
}

/**
 * One number token of a builtin argument as parseExact reads it: a plain number, an ExactNumber,
 * or a NumberText (noted for numberTextArguments). For parsers of argument text other than
 * parseExact (the Rego value form of arguments holding sets or `.5`).
 */
export function argumentNumber (tok: string): number | ExactNumber {
  if (!needsExact(tok)) return Number(tok)
  if (!isNumberText(tok)) return new ExactNumber(tok)
  numberTextsSeen = true
  return new NumberText(tok)
}

/**
 * A builtin's arguments as it may see them: NumberText kept for a builtin that reads numbers
 * by their text (`keep`), replaced by plain numbers (in place) for every other. Costs nothing
 * unless the arguments just parsed held such a number.
 */
export function numberTextArguments (args: unknown[], keep: boolean): unknown[] {
  if (!numberTextsSeen) return args
  numberTextsSeen = false
  if (keep) return args
  for (let i = 0; i < args.length; i++) args[i] = plainNumberTexts(args[i])
  return args
}

function plainNumberTexts (v: unknown): unknown {
  if (v instanceof NumberText) return Number(v.text)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = plainNumberTexts(v[i])
    return v
  }
  if (v !== null && typeof v === 'object' && !(v instanceof ExactNumber)) {
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) o[k] = plainNumberTexts(o[k])
  }
  return v
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
