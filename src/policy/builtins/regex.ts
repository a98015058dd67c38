/**
 * regex.* host builtins (OPA v1/topdown/regex.go, regex_template.go) over a translation of Go
 * RE2 syntax to JavaScript RegExp. RE2 has no backreferences or lookaround, so every RE2 pattern
 * that translates runs with the same leftmost-first semantics; constructs JavaScript lacks are
 * rejected as errors rather than approximated.
 */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { int, str } from './args.js'

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7F', blank: '\\t ', cntrl: '\\x00-\\x1F\\x7F', digit: '0-9', graph: '!-~',
  lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: '\\t\\n\\v\\f\\r ', upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
}

const cache = new Map<string, RegExp>()

/** Compiles a Go regexp pattern; throws BuiltinError on a pattern Go (or the translation) rejects. */
export function goRegex (b: string, pattern: string, global = false): RegExp {
  const key = (global ? 'g' : '') + pattern
  const hit = cache.get(key)
  if (hit !== undefined) { hit.lastIndex = 0; return hit }
  let flags = global ? 'g' : ''
  let src = pattern
  const m = /^\(\?([imsU]+)\)/.exec(src)
  if (m !== null) {
    if (m[1]?.includes('U') === true) throw new BuiltinError(b, 'ungreedy flag is not supported')
    for (const f of m[1] as string) if (!flags.includes(f)) flags += f
    src = src.slice(m[0].length)
  }
  if (/\(\?[imsU-]+[:)]/.test(src)) throw new BuiltinError(b, 'inline flags inside the pattern are not supported')
  if (/\(\?[=!<]/.test(src.replace(/\(\?P?<[A-Za-z_]/g, ''))) throw new BuiltinError(b, `error parsing regexp: invalid or unsupported Perl syntax in ${pattern}`)
  if (/\\[1-9]/.test(src)) throw new BuiltinError(b, `error parsing regexp: invalid escape sequence in ${pattern}`)
  src = src
    .replace(/\(\?P</g, '(?<')
    .replace(/\\z/g, '$(?![\\s\\S])')
    .replace(/\\A/g, '^')
    .replace(/\[:(\^?)([a-z]+):\]/g, (all, neg: string, name: string) => {
      const cls = POSIX[name]
      if (cls === undefined) throw new BuiltinError(b, `error parsing regexp: invalid character class range: ${all}`)
      if (neg !== '') throw new BuiltinError(b, 'negated POSIX classes are not supported')
      return cls
    })
  // Unicode mode: Go matches runes, never half a surrogate pair. Go lets any punctuation be
  // escaped; Unicode-mode RegExp accepts only syntax characters, so the rest become \xHH.
  flags += 'u'
  src = src.replace(/\\(.)/gsu, (all, c: string) => {
    if (/[A-Za-z0-9]/.test(c) || '^$\\.*+?()[]{}|/'.includes(c)) return all
    const cp = c.codePointAt(0) as number
    return cp < 0x80 ? '\\x' + cp.toString(16).padStart(2, '0') : c
  }).replace(/\\([pP])([A-Za-z])/g, '\\$1{$2}')
  let re: RegExp
  try {
    re = new RegExp(src, flags)
  } catch (err) {
    throw new BuiltinError(b, `error parsing regexp: ${(err as Error).message}`)
  }
  if (cache.size > 1000) cache.clear()
  cache.set(key, re)
  return re
}

/** Go's FindAllStringSubmatchIndex loop: empty matches right after a match are skipped. */
function findAll (re: RegExp, s: string, n: number): RegExpExecArray[] {
  const out: RegExpExecArray[] = []
  if (n === 0) return out
  re.lastIndex = 0
  let prevEnd = -1
  let pos = 0
  while (pos <= s.length) {
    re.lastIndex = pos
    const m = re.exec(s)
    if (m === null) break
    const start = m.index; const end = start + m[0].length
    let accept = true
    if (m[0].length === 0) {
      if (start === prevEnd) accept = false
      // Advance by one character (a whole code point).
      const cp = s.codePointAt(start)
      pos = start + (cp !== undefined && cp > 0xffff ? 2 : 1)
    } else {
      pos = end
    }
    if (start > s.length) break
    if (accept) {
      out.push(m)
      if (n > 0 && out.length >= n) break
    }
    prevEnd = end
  }
  re.lastIndex = 0
  return out
}

/** Go's Regexp.Expand template syntax: $1, ${1}, $name, ${name}, $$. */
function expand (template: string, m: RegExpExecArray): string {
  let out = ''
  for (let i = 0; i < template.length; i++) {
    const c = template[i]
    if (c !== '$') { out += c; continue }
    const rest = template.slice(i + 1)
    if (rest.startsWith('$')) { out += '$'; i++; continue }
    let name: string | undefined
    let len = 0
    const braced = /^\{([A-Za-z0-9_]+)\}/.exec(rest)
    if (braced !== null) { name = braced[1]; len = braced[0].length } else {
      const bare = /^[A-Za-z0-9_]+/.exec(rest)
      if (bare !== null) { name = bare[0]; len = bare[0].length }
    }
    if (name === undefined) { out += '$'; continue }
    i += len
    if (/^\d+$/.test(name)) out += m[Number(name)] ?? ''
    else out += m.groups?.[name] ?? ''
  }
  return out
}

/** gorilla/mux-style template: literal text with regular expressions between delimiters. */
function templateRegex (b: string, tpl: string, open: string, close: string): RegExp {
  let src = '^'
  let i = 0
  while (i < tpl.length) {
    const s = tpl.indexOf(open, i)
    if (s < 0) { src += escape(tpl.slice(i)); break }
    src += escape(tpl.slice(i, s))
    // Delimiters nest: find the matching end.
    let level = 0; let j = s
    for (; j < tpl.length; j++) {
      if (tpl.startsWith(open, j)) { level++; j += open.length - 1 } else if (tpl.startsWith(close, j)) { level--; if (level === 0) break; j += close.length - 1 }
    }
    if (level !== 0 || j >= tpl.length) throw new BuiltinError(b, `unbalanced braces in ${tpl}`)
    src += '(' + goRegex(b, tpl.slice(s + open.length, j)).source + ')'
    i = j + close.length
  }
  return goRegex(b, src + '$')
}

// ---- regex.globs_match (the yashtewari/glob-intersection rules OPA uses) ----

interface GlobToken { ranges: Array<[number, number]>, flag: '' | '*' | '+' }

function tokenizeGlob (b: string, g: string): GlobToken[] {
  const runes = [...g]
  const out: GlobToken[] = []
  for (let i = 0; i < runes.length; i++) {
    const c = runes[i] as string
    if (c === '*' || c === '+') {
      const prev = out[out.length - 1]
      if (prev === undefined || prev.flag !== '') throw new BuiltinError(b, `glob: ${c} must follow a character or class`)
      prev.flag = c
      continue
    }
    if (c === '\\') {
      const n = runes[++i]
      if (n === undefined) throw new BuiltinError(b, 'glob: trailing backslash')
      const cp = n.codePointAt(0) as number
      out.push({ ranges: [[cp, cp]], flag: '' })
      continue
    }
    if (c === '.') { out.push({ ranges: [[0, 0x10ffff]], flag: '' }); continue }
    if (c === '[') {
      const ranges: Array<[number, number]> = []
      let j = i + 1
      let closed = false
      for (; j < runes.length; j++) {
        let ch = runes[j] as string
        if (ch === ']') { closed = true; break }
        if (ch === '\\') { ch = runes[++j] ?? ''; if (ch === '') break }
        const lo = ch.codePointAt(0) as number
        if (runes[j + 1] === '-') {
          let hiCh = runes[j + 2]
          if (hiCh === undefined) break
          if (hiCh === '\\') { hiCh = runes[j + 3]; j++ ; if (hiCh === undefined) break }
          const hi = hiCh.codePointAt(0) as number
          if (hi < lo) throw new BuiltinError(b, 'glob: invalid character range')
          ranges.push([lo, hi])
          j += 2
        } else ranges.push([lo, lo])
      }
      if (!closed) throw new BuiltinError(b, 'glob: unterminated character class')
      out.push({ ranges, flag: '' })
      i = j
      continue
    }
    const cp = c.codePointAt(0) as number
    out.push({ ranges: [[cp, cp]], flag: '' })
  }
  return out
}

const overlaps = (a: GlobToken, b: GlobToken): boolean => a.ranges.some(([l1, h1]) => b.ranges.some(([l2, h2]) => l1 <= h2 && l2 <= h1))

/** Whether some non-empty string matches both globs, by the library's rules: a starred token may be skipped only while the other glob has tokens left. */
export function globsIntersect (g1: GlobToken[], g2: GlobToken[]): boolean {
  const seen = new Set<number>()
  const stack: Array<[number, number]> = [[0, 0]]
  const w = g2.length + 1
  while (stack.length > 0) {
    const [i, j] = stack.pop() as [number, number]
    const key = i * w + j
    if (seen.has(key)) continue
    seen.add(key)
    if (i === g1.length && j === g2.length) return true
    if (i === g1.length || j === g2.length) continue
    const a = g1[i] as GlobToken; const c = g2[j] as GlobToken
    if (a.flag === '*') stack.push([i + 1, j])
    if (c.flag === '*') stack.push([i, j + 1])
    if (!overlaps(a, c)) continue
    const aNext = a.flag === '' ? [i + 1] : [i, i + 1]
    const cNext = c.flag === '' ? [j + 1] : [j, j + 1]
    for (const x of aNext) for (const y of cNext) if (x !== i || y !== j) stack.push([x, y])
  }
  return false
}

const escape = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')

export const regexBuiltins: BuiltinSpec[] = [
  {
    name: 'regex.replace',
    impl: (_ctx, [s, p, v]) => {
      const b = 'regex.replace'
      const text = str(b, s, 1); const re = goRegex(b, str(b, p, 2), true); const value = str(b, v, 3)
      let out = ''; let last = 0
      for (const m of findAll(re, text, -1)) {
        out += text.slice(last, m.index) + expand(value, m)
        last = m.index + m[0].length
      }
      return out + text.slice(last)
    },
  },
  {
    name: 'regex.find_n',
    impl: (_ctx, [p, s, n]) => {
      const b = 'regex.find_n'
      const re = goRegex(b, str(b, p, 1), true)
      const k = int(b, n, 3)
      return findAll(re, str(b, s, 2), k < 0n ? -1 : k > 1000000n ? 1000000 : Number(k)).map((m) => m[0])
    },
  },
  {
    name: 'regex.globs_match',
    impl: (_ctx, [x, y]) => {
      const b = 'regex.globs_match'
      return globsIntersect(tokenizeGlob(b, str(b, x, 1)), tokenizeGlob(b, str(b, y, 2)))
    },
  },
  {
    name: 'regex.template_match',
    impl: (_ctx, [t, s, o, c]) => {
      const b = 'regex.template_match'
      const re = templateRegex(b, str(b, t, 1), str(b, o, 3), str(b, c, 4))
      re.lastIndex = 0
      return re.test(str(b, s, 2))
    },
  },
]
