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
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return { kind: 'int', v: BigInt(v) }
    return { kind: 'float', v }
  }
  if (typeof v === 'string') return { kind: 'string', v }
  return { kind: 'other', v: regoText(v) }
}

/** strconv.FormatFloat(f, fmt, prec, 64) for fmt in e, E, f, g, G. */
export function goFloat (f: number, fmt: 'e' | 'E' | 'f' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(f)) return 'NaN'
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf'
  const upper = fmt === 'E' || fmt === 'G'
  const lower = fmt.toLowerCase()
  const expo = (s: string): string => {
    // JS writes e+7; Go writes e+07 (at least two exponent digits)
    const m = /e([+-])(\d+)$/.exec(s)
    if (m === null) return s
    const out = s.slice(0, m.index) + 'e' + m[1] + (m[2] as string).padStart(2, '0')
    return upper ? out.toUpperCase() : out
  }
  if (lower === 'e') return expo(prec < 0 ? shortestExp(f) : f.toExponential(Math.min(prec, 100)))
  if (lower === 'f') return prec < 0 ? shortestFixed(f) : f.toFixed(Math.min(prec, 100))
  // %g
  if (f === 0) return Object.is(f, -0) ? '-0' : '0'
  let digits: string
  let exp: number
  if (prec < 0) {
    const s = shortestExp(f)
    const m = /^-?(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s) as RegExpExecArray
    digits = (m[1] as string) + (m[2] ?? '')
    exp = Number(m[3])
  } else {
    const p = prec === 0 ? 1 : prec
    const s = f.toExponential(p - 1)
    const m = /^-?(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s) as RegExpExecArray
    digits = ((m[1] as string) + (m[2] ?? '')).replace(/0+$/, '') || '0'
    exp = Number(m[3])
  }
  const nd = digits.length
  const dp = exp + 1
  // strconv.FormatFloat: %e when exp < -4 || exp >= eprec; shortest decides with precision 6
  let eprec: number
  if (prec < 0) {
    eprec = 6
  } else {
    eprec = prec === 0 ? 1 : prec
    if (eprec > nd && nd >= dp) eprec = nd
  }
  const sign = f < 0 ? '-' : ''
  if (exp < -4 || exp >= eprec) {
    const mant = digits.length > 1 ? `${digits[0] as string}.${digits.slice(1)}` : digits
    const e = `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
    return sign + (upper ? e.toUpperCase() : e)
  }
  // fixed notation with exactly the significant digits
  let out: string
  if (dp <= 0) out = '0.' + '0'.repeat(-dp) + digits
  else if (dp >= nd) out = digits + '0'.repeat(dp - nd)
  else out = digits.slice(0, dp) + '.' + digits.slice(dp)
  return sign + out
}

function shortestExp (f: number): string {
  // JS's shortest round-trip digits, in exponent form
  return f.toExponential()
}

function shortestFixed (f: number): string {
  const s = String(Math.abs(f))
  const sign = f < 0 ? '-' : ''
  if (!/e/.test(s)) return sign + s
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s) as RegExpExecArray
  const digits = (m[1] as string) + (m[2] ?? '')
  const dp = Number(m[3]) + 1
  if (dp <= 0) return sign + '0.' + '0'.repeat(-dp) + digits
  return sign + digits + '0'.repeat(Math.max(0, dp - digits.length))
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
    case 'int': return a.v >= -(2n ** 63n) && a.v < 2n ** 63n ? 'int64' : '*big.Int'
    case 'float': return 'float64'
    case 'string': return 'string'
    case 'other': return 'string'
  }
}

function bad (verb: string, a: Arg): string {
  const val = a.kind === 'float' ? goFloat(a.v, 'g', -1) : a.kind === 'int' ? a.v.toString() : a.v
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
        if ('dvboOxX'.includes(verb)) s = formatInt(a.v, verb, spec)
        else if (verb === 'c') s = pad(String.fromCodePoint(Number(a.v)), spec, false)
        else if (verb === 'q') s = pad(`'${String.fromCodePoint(Number(a.v))}'`, spec, false)
        else if (verb === 'U') s = pad(`U+${a.v.toString(16).toUpperCase().padStart(4, '0')}`, spec, false)
        else if ('eEfFgG'.includes(verb)) s = bad(verb, a)
        break
      case 'float':
        if ('veEfFgG'.includes(verb)) s = formatFloat(a.v, verb, spec)
        break
      case 'string':
      case 'other':
        s = formatString(a.v, verb, spec)
        break
    }
    out += s ?? bad(verb, a)
  }
  if (argi < args.length) {
    out += '%!(EXTRA ' + args.slice(argi).map((a) => `${typeName(a)}=${a.kind === 'float' ? goFloat(a.v, 'g', -1) : a.kind === 'int' ? a.v.toString() : a.v}`).join(', ') + ')'
  }
  return out
}

export const sprintfBuiltins: BuiltinSpec[] = [
  {
    name: 'sprintf',
    impl: (_ctx, [format, values]) => {
      if (typeof format !== 'string') throw new BuiltinError('sprintf', 'operand 1 must be string')
      if (!Array.isArray(values)) throw new BuiltinError('sprintf', 'operand 2 must be array')
      return goSprintf(format, values)
    },
  },
]
