/**
 * sprintf with Go's fmt semantics, as OPA evaluates it (topdown/strings.go builtinSprintf):
 * each argument becomes an int64 (integral numbers), a big integer, a float64, a string, or —
 * for every other value — its Rego text (`["a", "b"]`, `{"k": 1}`, `true`, `null`), and the
 * format is applied by Go's fmt.Sprintf: verbs %v %s %q %d %b %o %O %x %X %c %U %e %E %f %F
 * %g %G %t %%, flags `+ - # 0 space`, width and precision (also `*`), and Go's error
 * notations (`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA int=1)`).
 *
 * opa-wasm ships a sprintf of its own (sprintf-js) with C semantics (`%q` unsupported, `%v`
 * different); the engine lets this registry entry take its place.
 */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { ExactNumber } from './exact-json.js'

type Arg = { kind: 'int', v: bigint } | { kind: 'float', v: number } | { kind: 'string', v: string } | { kind: 'other', v: string }

/** Go's strconv.Quote. */
export function goQuote (s: string): string {
  let out = '"'
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (cp === 0x07) out += '\\a'
    else if (cp === 0x08) out += '\\b'
    else if (cp === 0x0c) out += '\\f'
    else if (cp === 0x0a) out += '\\n'
    else if (cp === 0x0d) out += '\\r'
    else if (cp === 0x09) out += '\\t'
    else if (cp === 0x0b) out += '\\v'
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd'
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`
    else if (!isPrintable(cp)) out += cp > 0xffff ? `\\U${cp.toString(16).padStart(8, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return out + '"'
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u
function isPrintable (cp: number): boolean {
  return PRINTABLE.test(String.fromCodePoint(cp))
}

/** The Rego text of a JSON value (ast.Value.String()). */
export function regoText (v: unknown): string {
  if (v === null) return 'null'
  if (v instanceof ExactNumber) return v.text
  if (typeof v === 'string') return goQuote(v)
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v).toString() : goFloat(v, 'g', -1)
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map(regoText).join(', ')}]`
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort()
    return `{${keys.map((k) => `${goQuote(k)}: ${regoText((v as Record<string, unknown>)[k])}`).join(', ')}}`
  }
  return String(v)
}

function toArg (v: unknown): Arg {
  // OPA decides by the number's text (isFloatNumber): with a fraction or an exponent it is a
  // float64 — or, when ParseFloat fails (2e308), the text itself as a string; otherwise an
  // int64, or a *big.Int beyond int64. The bridge keeps such texts as ExactNumber
  // (exact-json.ts needsExact), so `100.0` arrives as a float and `123456789123456789123` whole.
  if (v instanceof ExactNumber) {
    if (/^-?\d+$/.test(v.text)) return { kind: 'int', v: BigInt(v.text) }
    const f = Number(v.text)
    return Number.isFinite(f) ? { kind: 'float', v: f } : { kind: 'string', v: v.text }
  }
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return { kind: 'int', v: BigInt(v) }
    return { kind: 'float', v }
  }
  if (typeof v === 'string') return { kind: 'string', v }
  return { kind: 'other', v: regoText(v) }
}

/** The exact decimal value of a finite double: value = 0.<digits> × 10^dp (digits without leading zeros; "" for 0). */
function exactDecimal (x: number): { digits: string, dp: number } {
  if (x === 0) return { digits: '', dp: 0 }
  const buf = new DataView(new ArrayBuffer(8))
  buf.setFloat64(0, Math.abs(x))
  const bits = buf.getBigUint64(0)
  const expBits = Number((bits >> 52n) & 0x7ffn)
  let mant = bits & ((1n << 52n) - 1n)
  let e2: number
  if (expBits === 0) e2 = -1074
  else {
    mant |= 1n << 52n
    e2 = expBits - 1075
  }
  let intDigits: string
  let fracLen = 0
  if (e2 >= 0) intDigits = (mant << BigInt(e2)).toString()
  else {
    // mant / 2^k = mant * 5^k / 10^k
    intDigits = (mant * 5n ** BigInt(-e2)).toString()
    fracLen = -e2
  }
  const stripped = intDigits.replace(/^0+/, '')
  const dp = stripped.length - fracLen
  return { digits: stripped.replace(/0+$/, ''), dp }
}

/** Rounds decimal digits to `n` digits, half to even on the exact value (Go's strconv). */
function roundDigits (d: { digits: string, dp: number }, n: number): { digits: string, dp: number } {
  if (n < 0) return { digits: '', dp: d.dp }
  if (d.digits.length <= n) return d
  const keep = d.digits.slice(0, n)
  const next = d.digits.charCodeAt(n) - 48
  const restNonZero = /[1-9]/.test(d.digits.slice(n + 1))
  const last = n > 0 ? keep.charCodeAt(n - 1) - 48 : 0
  const up = next > 5 || (next === 5 && (restNonZero || last % 2 === 1))
  if (!up) return { digits: keep.replace(/0+$/, ''), dp: d.dp }
  // add one at position n-1
  const arr = keep.split('').map(Number)
  let i = arr.length - 1
  while (i >= 0) {
    if (arr[i] === 9) { arr[i] = 0; i-- } else { arr[i] = (arr[i] as number) + 1; break }
  }
  if (i < 0) return { digits: ('1' + arr.join('')).replace(/0+$/, ''), dp: d.dp + 1 }
  return { digits: arr.join('').replace(/0+$/, ''), dp: d.dp }
}

/** Shortest digits that round-trip (the same digits Go's shortest formatting chooses). */
function shortestDigits (x: number): { digits: string, dp: number } {
  if (x === 0) return { digits: '', dp: 0 }
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(Math.abs(x).toExponential()) as RegExpExecArray
  const digits = ((m[1] as string) + (m[2] ?? '')).replace(/0+$/, '')
  return { digits, dp: Number(m[3]) + 1 }
}

function fixedText (d: { digits: string, dp: number }, frac: number): string {
  const all = d.digits
  let intPart: string
  let fracPart: string
  if (d.dp <= 0) {
    intPart = '0'
    fracPart = ('0'.repeat(-d.dp) + all)
  } else {
    intPart = all.slice(0, d.dp).padEnd(d.dp, '0')
    fracPart = all.slice(d.dp)
  }
  fracPart = fracPart.slice(0, frac).padEnd(frac, '0')
  return frac > 0 ? `${intPart}.${fracPart}` : intPart
}

function expText (d: { digits: string, dp: number }, frac: number, upper: boolean): string {
  const digits = d.digits === '' ? '0' : d.digits
  const exp = d.digits === '' ? 0 : d.dp - 1
  const mant = frac > 0 ? `${digits[0] as string}.${digits.slice(1).slice(0, frac).padEnd(frac, '0')}` : (digits[0] as string)
  return `${mant}${upper ? 'E' : 'e'}${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
}

/** strconv.FormatFloat(|f|, fmt, prec, 64) for fmt in e, E, f, g, G (the sign is the caller's). */
export function goFloat (f: number, fmt: 'e' | 'E' | 'f' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(f)) return 'NaN'
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf'
  const neg = f < 0 || Object.is(f, -0)
  const sign = neg ? '-' : ''
  const x = Math.abs(f)
  const upper = fmt === 'E' || fmt === 'G'
  switch (fmt) {
    case 'e': case 'E': {
      const d = prec < 0 ? shortestDigits(x) : roundDigits(exactDecimal(x), prec + 1)
      return sign + expText(d, prec < 0 ? Math.max(d.digits.length - 1, 0) : prec, upper)
    }
    case 'f': {
      if (prec < 0) {
        const d = shortestDigits(x)
        return sign + fixedText(d, Math.max(d.digits.length - d.dp, 0))
      }
      const e = exactDecimal(x)
      return sign + fixedText(roundDigits(e, e.dp + prec), prec)
    }
    default: {
      const shortest = prec < 0
      let p = prec === 0 ? 1 : prec
      const d = shortest ? shortestDigits(x) : roundDigits(exactDecimal(x), p)
      if (shortest) p = d.digits.length
      let eprec = p
      const nd = d.digits.length
      if (eprec > nd && nd >= d.dp) eprec = nd
      if (shortest) eprec = 6
      const exp = d.dp - 1
      if (d.digits !== '' && (exp < -4 || exp >= eprec)) {
        return sign + expText(d, Math.min(p, nd) - 1, upper)
      }
      return sign + fixedText(d, Math.max((p > d.dp ? nd : p) - d.dp, 0))
    }
  }
}

interface Spec { minus: boolean, plus: boolean, sharp: boolean, space: boolean, zero: boolean, width?: number, prec?: number }

function pad (s: string, spec: Spec, numeric: boolean): string {
  const w = spec.width ?? 0
  if (s.length >= w) return s
  if (spec.minus) return s + ' '.repeat(w - s.length)
  if (spec.zero && numeric) {
    const signLen = /^[+\- ]/.test(s) ? 1 : 0
    return s.slice(0, signLen) + '0'.repeat(w - s.length) + s.slice(signLen)
  }
  return ' '.repeat(w - s.length) + s
}

function typeName (a: Arg): string {
  switch (a.kind) {
    case 'int': return isInt64(a.v) ? 'int64' : '*big.Int'
    case 'float': return 'float64'
    case 'string': return 'string'
    case 'other': return 'string'
  }
}

const isInt64 = (v: bigint): boolean => v >= -(2n ** 63n) && v < 2n ** 63n

/** Go's badVerb: the value printed with %v under the same flags. */
function bad (verb: string, a: Arg, spec: Spec): string {
  const val = a.kind === 'float' ? formatFloat(a.v, 'v', spec) : a.kind === 'int' ? formatInt(a.v, 'v', spec) : pad(a.v, spec, false)
  return `%!${verb}(${typeName(a)}=${val})`
}

function signed (s: string, neg: boolean, spec: Spec): string {
  if (neg) return '-' + s
  if (spec.plus) return '+' + s
  if (spec.space) return ' ' + s
  return s
}

function formatInt (v: bigint, verb: string, spec: Spec): string {
  const neg = v < 0n
  const abs = neg ? -v : v
  let digits: string
  let prefix = ''
  switch (verb) {
    case 'd': case 'v': digits = abs.toString(10); break
    case 'b': digits = abs.toString(2); if (spec.sharp) prefix = '0b'; break
    case 'o': digits = abs.toString(8); if (spec.sharp) prefix = '0'; break
    case 'O': digits = abs.toString(8); prefix = '0o'; break
    case 'x': digits = abs.toString(16); if (spec.sharp) prefix = '0x'; break
    case 'X': digits = abs.toString(16).toUpperCase(); if (spec.sharp) prefix = '0X'; break
    default: digits = abs.toString(10)
  }
  if (spec.prec !== undefined) {
    if (spec.prec === 0 && abs === 0n) digits = ''
    else digits = digits.padStart(spec.prec, '0')
  }
  const s = signed(prefix + digits, neg, spec)
  // Go: precision turns off zero padding
  return pad(s, spec.prec !== undefined ? { ...spec, zero: false } : spec, true)
}

function formatFloat (v: number, verb: string, spec: Spec): string {
  const fmt = (verb === 'v' ? 'g' : verb === 'F' ? 'f' : verb) as 'e' | 'E' | 'f' | 'g' | 'G'
  const prec = spec.prec ?? (fmt === 'g' || fmt === 'G' ? -1 : 6)
  let s = goFloat(Math.abs(v), fmt, prec)
  if (spec.sharp && (fmt === 'g' || fmt === 'G') && !s.includes('.') && !/e/i.test(s)) s += '.'
  const neg = v < 0 || Object.is(v, -0)
  if (s === 'NaN') return pad(spec.plus ? '+NaN' : spec.space ? ' NaN' : 'NaN', { ...spec, zero: false }, false)
  if (s === '+Inf') s = 'Inf'
  return pad(signed(s, neg, spec), Number.isFinite(v) ? spec : { ...spec, zero: false }, true)
}

function formatString (s: string, verb: string, spec: Spec): string | undefined {
  switch (verb) {
    case 's': case 'v': return pad(spec.prec !== undefined ? [...s].slice(0, spec.prec).join('') : s, spec, false)
    case 'q': return pad(goQuote(spec.prec !== undefined ? [...s].slice(0, spec.prec).join('') : s), spec, false)
    case 'x': case 'X': {
      let hex = Buffer.from(s, 'utf8').toString('hex')
      if (verb === 'X') hex = hex.toUpperCase()
      if (spec.sharp) hex = (verb === 'X' ? '0X' : '0x') + hex
      return pad(hex, spec, false)
    }
    default: return undefined
  }
}

export function goSprintf (format: string, values: unknown[]): string {
  const args = values.map(toArg)
  let argi = 0
  let out = ''
  let i = 0
  while (i < format.length) {
    const c = format[i] as string
    if (c !== '%') {
      out += c
      i++
      continue
    }
    i++
    if (i >= format.length) {
      out += '%!(NOVERB)'
      break
    }
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false }
    for (; i < format.length; i++) {
      const f = format[i]
      if (f === '-') { spec.minus = true; spec.zero = false } else if (f === '+') spec.plus = true
      else if (f === '#') spec.sharp = true
      else if (f === ' ') spec.space = true
      else if (f === '0') spec.zero = !spec.minus
      else break
    }
    const readNum = (): number | undefined => {
      if (format[i] === '*') {
        i++
        const a = args[argi++]
        if (a?.kind === 'int') return Number(a.v)
        return undefined
      }
      const m = /^\d+/.exec(format.slice(i))
      if (m === null) return undefined
      i += m[0].length
      return Number(m[0])
    }
    const w = readNum()
    if (w !== undefined) {
      if (w < 0) { spec.minus = true; spec.width = -w } else spec.width = w
    }
    if (format[i] === '.') {
      i++
      spec.prec = readNum() ?? 0
    }
    const verb = format[i] as string | undefined
    i++
    if (verb === undefined) {
      out += '%!(NOVERB)'
      break
    }
    if (verb === '%') {
      out += '%'
      continue
    }
    const a = args[argi++]
    if (a === undefined) {
      out += `%!${verb}(MISSING)`
      continue
    }
    let s: string | undefined
    switch (a.kind) {
      case 'int':
        if (!isInt64(a.v)) {
          // *big.Int formats itself (math/big intconv.go): %s and %v are decimal too, and an
          // unknown verb prints %!c(big.Int=…) without fmt's flags.
          s = 'dvsboOxX'.includes(verb) ? formatInt(a.v, verb === 's' ? 'd' : verb, spec) : `%!${verb}(big.Int=${a.v.toString()})`
        } else if ('dvboOxX'.includes(verb)) s = formatInt(a.v, verb, spec)
        else if (verb === 'c') s = pad(String.fromCodePoint(Number(a.v)), spec, false)
        else if (verb === 'q') s = pad(`'${String.fromCodePoint(Number(a.v))}'`, spec, false)
        else if (verb === 'U') {
          const u = `U+${a.v.toString(16).toUpperCase().padStart(4, '0')}`
          s = pad(spec.sharp && a.v >= 0n && a.v <= 0x10ffffn && isPrintable(Number(a.v)) ? `${u} '${String.fromCodePoint(Number(a.v))}'` : u, spec, false)
        }
        break
      case 'float':
        if ('veEfFgG'.includes(verb)) s = formatFloat(a.v, verb, spec)
        break
      case 'string':
      case 'other':
        s = formatString(a.v, verb, spec)
        break
    }
    out += s ?? bad(verb, a, spec)
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => `${typeName(a)}=${a.kind === 'float' ? goFloat(a.v, 'g', -1) : a.kind === 'int' ? a.v.toString() : a.v}`).join(', ') + ')'
  }
  return out
}

export const sprintfBuiltins: BuiltinSpec[] = [
  {
    name: 'sprintf',
    numberText: true,
    impl: (_ctx, [format, values]) => {
      if (typeof format !== 'string') throw new BuiltinError('sprintf', 'operand 1 must be string')
      if (!Array.isArray(values)) throw new BuiltinError('sprintf', 'operand 2 must be array')
      return goSprintf(format, values)
    },
  },
]
