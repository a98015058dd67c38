/** units.parse and units.parse_bytes (OPA v1/topdown/parse_units.go, parse_bytes.go). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { str } from './args.js'

const MAX_EXPONENT_DIGITS = 6

/** OPA's extractNumAndUnit: number characters (digits, '.', exponents, signs) then the unit. */
function extractNumAndUnit (b: string, s: string): [string, string] {
  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9'
  let first = -1
  for (let i = 0; i < s.length; i++) {
    const r = s[i] as string
    if (!isDigit(r) && r !== '.' && r !== 'e' && r !== 'E' && r !== '+' && r !== '-') { first = i; break }
    if (r === 'e' || r === 'E') {
      if (i === s.length - 1 || (!isDigit(s[i + 1]) && s[i + 1] !== '+' && s[i + 1] !== '-')) { first = i; break }
      if (s[i + 1] === '+' || s[i + 1] === '-') i++
      let e = i + 1
      while (e < s.length && isDigit(s[e])) e++
      if (e - (i + 1) > MAX_EXPONENT_DIGITS) throw new BuiltinError(b, 'exponent too large')
    }
  }
  if (first === -1) return [s, '']
  if (first === 0) return ['', s]
  return [s.slice(0, first), s.slice(first)]
}

/** A decimal string as an exact rational (Go big.Rat / big.Float SetString syntax), or undefined. */
function parseDecimal (s: string): { n: bigint, d: bigint } | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s)
  if (m === null) return undefined
  const int = m[2] ?? ''; const frac = m[3] ?? ''
  if (int === '' && frac === '') return undefined
  let n = BigInt((int + frac) || '0')
  let d = 10n ** BigInt(frac.length)
  const e = Number(m[4] ?? '0')
  if (e > 0) n *= 10n ** BigInt(e)
  else if (e < 0) d *= 10n ** BigInt(-e)
  if (m[1] === '-') n = -n
  return { n, d }
}

/** Rounds p/q (q > 0) to a binary float with `prec` mantissa bits, nearest-even, as a rational. */
function roundToPrec (p: bigint, q: bigint, prec: number): { n: bigint, d: bigint } {
  if (p === 0n) return { n: 0n, d: 1n }
  const neg = p < 0n
  if (neg) p = -p
  // Find e with 2^(prec-1) <= p/q * 2^-e < 2^prec.
  let e = p.toString(2).length - q.toString(2).length - prec
  const scaled = (ex: number): [bigint, bigint] => ex >= 0 ? [p, q << BigInt(ex)] : [p << BigInt(-ex), q]
  for (;;) {
    const [a, b] = scaled(e)
    const m = a / b
    if (m >= 1n << BigInt(prec)) { e++; continue }
    if (m < 1n << BigInt(prec - 1)) { e--; continue }
    const r = a - m * b
    let mant = m
    if (r * 2n > b || (r * 2n === b && (m & 1n) === 1n)) mant++
    const n = neg ? -mant : mant
    return e >= 0 ? { n: n << BigInt(e), d: 1n } : { n, d: 1n << BigInt(-e) }
  }
}

const KI = 1024n
const BYTE_UNITS: Record<string, bigint> = {
  '': 1n, kb: 1000n, k: 1000n, kib: KI, ki: KI, mb: 10n ** 6n, m: 10n ** 6n, mib: KI ** 2n, mi: KI ** 2n,
  gb: 10n ** 9n, g: 10n ** 9n, gib: KI ** 3n, gi: KI ** 3n, tb: 10n ** 12n, t: 10n ** 12n, tib: KI ** 4n, ti: KI ** 4n,
  pb: 10n ** 15n, p: 10n ** 15n, pib: KI ** 5n, pi: KI ** 5n, eb: 10n ** 18n, e: 10n ** 18n, eib: KI ** 6n, ei: KI ** 6n,
}

// The float64 0.001 exactly (OPA: x.SetFloat64(0.001)).
const MILLI = { n: 1152921504606847n, d: 1n << 60n }

const SI_UNITS: Record<string, { n: bigint, d: bigint }> = {
  '': { n: 1n, d: 1n }, m: MILLI,
  k: { n: 1000n, d: 1n }, K: { n: 1000n, d: 1n }, ki: { n: KI, d: 1n }, Ki: { n: KI, d: 1n },
  M: { n: 10n ** 6n, d: 1n }, mi: { n: KI ** 2n, d: 1n }, Mi: { n: KI ** 2n, d: 1n },
  g: { n: 10n ** 9n, d: 1n }, G: { n: 10n ** 9n, d: 1n }, gi: { n: KI ** 3n, d: 1n }, Gi: { n: KI ** 3n, d: 1n },
  t: { n: 10n ** 12n, d: 1n }, T: { n: 10n ** 12n, d: 1n }, ti: { n: KI ** 4n, d: 1n }, Ti: { n: KI ** 4n, d: 1n },
  p: { n: 10n ** 15n, d: 1n }, P: { n: 10n ** 15n, d: 1n }, pi: { n: KI ** 5n, d: 1n }, Pi: { n: KI ** 5n, d: 1n },
  e: { n: 10n ** 18n, d: 1n }, E: { n: 10n ** 18n, d: 1n }, ei: { n: KI ** 6n, d: 1n }, Ei: { n: KI ** 6n, d: 1n },
}

/** Go's big.Rat.FloatString(prec): rounded half away from zero. */
function floatString (n: bigint, d: bigint, prec: number): string {
  const neg = n < 0n
  if (neg) n = -n
  const scale = 10n ** BigInt(prec)
  let q = (n * scale) / d
  const r = (n * scale) % d
  if (r * 2n >= d) q++
  const s = q.toString().padStart(prec + 1, '0')
  const out = s.slice(0, s.length - prec) + '.' + s.slice(s.length - prec)
  return (neg && q !== 0n ? '-' : '') + out
}

export const unitsBuiltins: BuiltinSpec[] = [
  {
    name: 'units.parse_bytes',
    impl: (_ctx, [x]) => {
      const b = 'units.parse_bytes'
      const s = str(b, x, 1).toLowerCase().replaceAll('"', '')
      if (s.includes(' ')) throw new BuiltinError(b, 'spaces not allowed in resource strings')
      const [num, unit] = extractNumAndUnit(b, s)
      if (num === '') throw new BuiltinError(b, 'no byte amount provided')
      const m = BYTE_UNITS[unit]
      if (m === undefined) throw new BuiltinError(b, `byte unit ${unit} not recognized`)
      const v = parseDecimal(num)
      if (v === undefined) throw new BuiltinError(b, 'could not parse byte amount to a number')
      // big.Float arithmetic at 64-bit precision, then truncation to an integer.
      const f = roundToPrec(v.n, v.d, 64)
      const prod = roundToPrec(f.n * m, f.d, 64)
      return new RawJson((prod.n / prod.d).toString())
    },
  },
  {
    name: 'units.parse',
    impl: (_ctx, [x]) => {
      const b = 'units.parse'
      const s = str(b, x, 1).replaceAll('"', '')
      if (s.includes(' ')) throw new BuiltinError(b, 'spaces not allowed in resource strings')
      const [num, rawUnit] = extractNumAndUnit(b, s)
      if (num === '') throw new BuiltinError(b, 'no amount provided')
      const unit = rawUnit.length > 1 ? rawUnit[0] + rawUnit.slice(1).toLowerCase() : rawUnit
      const m = SI_UNITS[unit]
      if (m === undefined) throw new BuiltinError(b, `unit ${unit} not recognized`)
      const v = parseDecimal(num)
      if (v === undefined) throw new BuiltinError(b, 'could not parse amount to a number')
      const n = v.n * m.n; const d = v.d * m.d
      if (n % d === 0n) return new RawJson((n / d).toString())
      return new RawJson(floatString(n, d, 10))
    },
  },
]
