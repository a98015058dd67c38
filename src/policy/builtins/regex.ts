/**
 * regex.* host builtins (OPA v1/topdown/regex.go, regex_template.go) over re2js, a port of
 * RE2/J, which is itself a translation of Go's regexp: the same RE2 syntax (Perl flags, no
 * backreferences or lookaround), the same leftmost-first submatch semantics, and matching in
 * time linear in the input, so no pattern can make a decision backtrack for ever (the JavaScript
 * RegExp this replaces answered `^(a+)+$` against 34 a's and a "!" in exponential time).
 */
import { LRUCache } from 'lru-cache'
import { RE2JS, RE2JSException } from 're2js'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { int, str } from './args.js'

/** A compiled Go regexp: the engine and the name of each group (index 0 is the whole match, ""). */
export interface GoRegexp {
  /** RE2/J's Go-shaped API (findAllSubmatchIndex etc.), over UTF-16 string indices. */
  readonly re2: ReturnType<RE2JS['re2']>
  readonly subexpNames: readonly string[]
}

/**
 * Compiled patterns, bounded both in count and in total pattern text (a pattern longer than the
 * whole budget is compiled every time rather than cached). OPA keeps 100 per process; a bigger
 * bound costs little and saves recompiling the patterns of several bundles.
 */
export const REGEX_CACHE_MAX_ENTRIES = 1000
export const REGEX_CACHE_MAX_PATTERN_CHARS = 1024 * 1024
const cache = new LRUCache<string, GoRegexp>({
  max: REGEX_CACHE_MAX_ENTRIES,
  maxSize: REGEX_CACHE_MAX_PATTERN_CHARS,
  sizeCalculation: (_v, key) => key.length + 1,
})

/** Number of compiled patterns held (for tests of the bound). */
export function regexCacheSize (): number {
  return cache.size
}

/**
 * Go's regexp.Compile(pattern); throws BuiltinError with Go's "error parsing regexp: ..." on a
 * pattern Go rejects.
 */
export function goRegexp (b: string, pattern: string): GoRegexp {
  const hit = cache.get(pattern)
  if (hit !== undefined) return hit
  const re = compile(b, pattern)
  cache.set(pattern, re)
  return re
}

function compile (b: string, pattern: string): GoRegexp {
  try {
    return fromRe2(RE2JS.compile(pattern).re2(), undefined)
  } catch (err) {
    if (!(err instanceof RE2JSException)) throw err
    // Go accepts a capture name used twice (RE2/J does not): compile with every named group
    // renamed apart and keep the original names for $name expansion.
    if (err.message.includes('duplicate capture group name')) {
      const renamed = renameCaptures(pattern)
      try {
        return fromRe2(RE2JS.compile(renamed.pattern).re2(), renamed.names)
      } catch (err2) {
        if (!(err2 instanceof RE2JSException)) throw err2
        throw new BuiltinError(b, err2.message)
      }
    }
    throw new BuiltinError(b, err.message)
  }
}

function fromRe2 (re2: ReturnType<RE2JS['re2']>, originalNames: ReadonlyMap<string, string> | undefined): GoRegexp {
  const names: string[] = new Array<string>(re2.numberOfCapturingGroups() + 1).fill('')
  for (const [name, index] of Object.entries(re2.namedGroups)) names[index] = originalNames?.get(name) ?? name
  return { re2, subexpNames: names }
}

/**
 * Renames the named groups of an RE2 pattern to n0, n1, ...: scans past escapes, \Q...\E
 * quoting and character classes (with their [:name:] parts) the way Go's parser does, so only
 * real `(?P<name>` / `(?<name>` openings are touched.
 */
const NAMED_GROUP = /\(\?P?<([A-Za-z0-9_]+)>/y

function renameCaptures (pattern: string): { pattern: string, names: Map<string, string> } {
  const names = new Map<string, string>()
  let out = ''
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]
    if (c === '\\') {
      if (pattern[i + 1] === 'Q') {
        const e = pattern.indexOf('\\E', i + 2)
        const end = e < 0 ? pattern.length : e + 2
        out += pattern.slice(i, end); i = end; continue
      }
      out += pattern.slice(i, i + 2); i += 2; continue
    }
    if (c === '[') {
      let j = i + 1
      if (pattern[j] === '^') j++
      if (pattern[j] === ']') j++
      while (j < pattern.length && pattern[j] !== ']') {
        if (pattern[j] === '\\') { j += 2; continue }
        if (pattern.startsWith('[:', j)) {
          const e = pattern.indexOf(':]', j + 2)
          if (e >= 0) { j = e + 2; continue }
        }
        j++
      }
      out += pattern.slice(i, j + 1); i = j + 1; continue
    }
    NAMED_GROUP.lastIndex = i
    const m = NAMED_GROUP.exec(pattern)
    if (m !== null) {
      const fresh = `n${names.size}`
      names.set(fresh, m[1] as string)
      out += `(?P<${fresh}>`; i += m[0].length; continue
    }
    out += c; i++
  }
  return { pattern: out, names }
}

/** Go's FindAll*SubmatchIndex (n < 0: all), as UTF-16 index pairs; -1 for a group that did not match. */
function findAllIndex (re: GoRegexp, s: string, n: number): number[][] {
  if (n === 0) return []
  return (re.re2.findAllSubmatchIndex(s, n) as number[][] | null) ?? []
}

/** Go's `n` for FindAll: any count beyond the number of possible matches means all of them. */
function matchLimit (k: bigint, s: string): number {
  return k < 0n || k > BigInt(s.length + 1) ? -1 : Number(k)
}

/**
 * Go's Regexp.Expand template syntax: $1, ${1}, $name, ${name}, $$. A name is the longest run of
 * Unicode letters, digits and underscores; all digits (no leading zero) is a group number; a
 * name refers to the leftmost group of that name that matched; anything else expands to nothing.
 */
const EXPAND_NAME = /\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+)/uy

function expand (template: string, re: GoRegexp, s: string, match: number[]): string {
  let out = ''
  for (let i = 0; i < template.length; i++) {
    const c = template[i]
    if (c !== '$') { out += c; continue }
    if (template[i + 1] === '$') { out += '$'; i++; continue }
    EXPAND_NAME.lastIndex = i + 1
    const m = EXPAND_NAME.exec(template)
    if (m === null) { out += '$'; continue }
    i += m[0].length
    const name = (m[1] ?? m[2]) as string
    const num = /^(?:0|[1-9]\d{0,8})$/.test(name) ? Number(name) : -1
    if (num >= 0) {
      if (2 * num + 1 < match.length && (match[2 * num] as number) >= 0) out += s.slice(match[2 * num], match[2 * num + 1])
      continue
    }
    for (let g = 1; g < re.subexpNames.length; g++) {
      if (re.subexpNames[g] === name && 2 * g + 1 < match.length && (match[2 * g] as number) >= 0) {
        out += s.slice(match[2 * g], match[2 * g + 1])
        break
      }
    }
  }
  return out
}

/** Go's regexp.QuoteMeta. */
const quoteMeta = (s: string): string => s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')

/**
 * OPA's regex template: literal text with a regular expression between each pair of one-byte
 * delimiters (nesting counted), each checked on its own as ^expr$, then compiled whole.
 */
function templateRegexp (b: string, tpl: string, open: string, close: string): GoRegexp {
  // Delimiters are one byte in OPA; ASCII code units never occur inside another character in
  // UTF-16 either, so scanning code units finds the same positions.
  const idxs: number[] = []
  let level = 0; let idx = 0
  for (let i = 0; i < tpl.length; i++) {
    if (tpl[i] === open) {
      if (++level === 1) idx = i
    } else if (tpl[i] === close) {
      if (--level === 0) idxs.push(idx, i + 1)
      else if (level < 0) throw new BuiltinError(b, `unbalanced braces in ${JSON.stringify(tpl)}`)
    }
  }
  if (level !== 0) throw new BuiltinError(b, `unbalanced braces in ${JSON.stringify(tpl)}`)
  let src = '^'
  let end = 0
  for (let i = 0; i < idxs.length; i += 2) {
    const raw = tpl.slice(end, idxs[i])
    end = idxs[i + 1] as number
    const patt = tpl.slice((idxs[i] as number) + 1, end - 1)
    src += `${quoteMeta(raw)}(${patt})`
    goRegexp(b, `^${patt}$`)
  }
  return goRegexp(b, src + quoteMeta(tpl.slice(end)) + '$')
}

/** Go's Regexp.Split(s, -1). */
function split (re: GoRegexp, pattern: string, s: string): string[] {
  if (pattern.length > 0 && s.length === 0) return ['']
  const out: string[] = []
  let beg = 0; let end = 0
  for (const m of findAllIndex(re, s, -1)) {
    end = m[0] as number
    if (m[1] !== 0) out.push(s.slice(beg, end))
    beg = m[1] as number
  }
  if (end !== s.length) out.push(s.slice(beg))
  return out
}

// ---- regex.globs_match (the yashtewari/glob-intersection rules OPA uses) ----

interface GlobToken { ranges: Array<[number, number]>, flag: '' | '*' | '+' }

/**
 * gintersect's Tokenize (tokenize.go), rule for rule: `.` any rune, `[...]` a set with `a-z`
 * ranges, `\\` escapes one rune, `*` / `+` flag the token before them. Every invalid pattern
 * is an error (a stray `]`, a leading or doubled flag, an unclosed set, a bad range, a trailing
 * backslash), which OPA raises as a builtin error — strict mode fails the decision on it.
 */
function tokenizeGlob (b: string, g: string): GlobToken[] {
  const input = [...g]
  const invalid = (index: number, message: string): never => {
    throw new BuiltinError(b, `input:${g}, pos:${index}, ${message}: the input provided is invalid`)
  }
  // nextRune: the rune at index with its escape, and where the next one starts; undefined at the end.
  const nextRune = (index: number): { next: number, r: string, escaped: boolean } | undefined => {
    if (index >= input.length) return undefined
    if (input[index] === '\\') {
      if (index === input.length - 1) invalid(index, 'input ends with a \\ (escape) character')
      return { next: index + 2, r: input[index + 1] as string, escaped: true }
    }
    return { next: index + 1, r: input[index] as string, escaped: false }
  }
  const cp = (r: string): number => r.codePointAt(0) as number
  const out: GlobToken[] = []
  let index = 0
  for (;;) {
    const first = nextRune(index)
    if (first === undefined) break
    index = first.next
    let token: GlobToken
    if (!first.escaped && first.r === '.') token = { ranges: [[0, 0x10ffff]], flag: '' }
    else if (!first.escaped && first.r === ']') return invalid(index, "set-close ']' with no preceding '['")
    else if (!first.escaped && first.r === '[') {
      const ranges: Array<[number, number]> = []
      let prev = 0
      let prevExists = false
      let complete = false
      for (let n = nextRune(index); n !== undefined; n = nextRune(index)) {
        index = n.next
        if (!n.escaped && n.r === '-') {
          if (!prevExists) invalid(index, "range character '-' must be preceded by a Unicode character")
          if (index >= input.length - 1) invalid(index, "range character '-' must be followed by a Unicode character")
          const hi = nextRune(index) as { next: number, r: string, escaped: boolean }
          index = hi.next
          if (!hi.escaped && (hi.r === ']' || hi.r === '-')) invalid(index, "range character '-' cannot be followed by a special symbol")
          if (cp(hi.r) < prev) invalid(index, `range is out of order: '${hi.r}' comes before '${String.fromCodePoint(prev)}' in Unicode`)
          ranges.push([prev, cp(hi.r)])
          prevExists = false
        } else if (!n.escaped && n.r === ']') {
          complete = true
          break
        } else {
          prev = cp(n.r)
          prevExists = true
          ranges.push([prev, prev])
        }
      }
      if (!complete) invalid(index, 'found [ without matching ]')
      token = { ranges, flag: '' }
    } else if (!first.escaped && (first.r === '*' || first.r === '+')) {
      return invalid(index, `flag '${first.r}' must be preceded by a non-flag`)
    } else token = { ranges: [[cp(first.r), cp(first.r)]], flag: '' }
    // nextFlag: an unescaped * or + right after the token flags it.
    const f = nextRune(index)
    if (f !== undefined && !f.escaped && (f.r === '*' || f.r === '+')) {
      token.flag = f.r
      index = f.next
    }
    out.push(token)
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

export const regexBuiltins: BuiltinSpec[] = [
  {
    name: 'regex.replace',
    impl: (_ctx, [s, p, v]) => {
      const b = 'regex.replace'
      const text = str(b, s, 1); const pattern = str(b, p, 2); const value = str(b, v, 3)
      const re = goRegexp(b, pattern)
      let out = ''; let last = 0
      for (const m of findAllIndex(re, text, -1)) {
        out += text.slice(last, m[0]) + expand(value, re, text, m)
        last = m[1] as number
      }
      return out + text.slice(last)
    },
  },
  {
    name: 'regex.find_n',
    impl: (_ctx, [p, s, n]) => {
      const b = 'regex.find_n'
      const pattern = str(b, p, 1); const text = str(b, s, 2); const k = int(b, n, 3)
      const re = goRegexp(b, pattern)
      return findAllIndex(re, text, matchLimit(k, text)).map((m) => text.slice(m[0], m[1]))
    },
  },
  {
    // opa-wasm's own regex.split runs a JavaScript RegExp; this one replaces it (see index.ts).
    name: 'regex.split',
    impl: (_ctx, [p, s]) => {
      const b = 'regex.split'
      const pattern = str(b, p, 1); const text = str(b, s, 2)
      return split(goRegexp(b, pattern), pattern, text)
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
      const tpl = str(b, t, 1); const text = str(b, s, 2); const open = str(b, o, 3); const close = str(b, c, 4)
      if (Buffer.byteLength(open) !== 1) throw new BuiltinError(b, `start delimiter has to be exactly one character long but is ${Buffer.byteLength(open)} long`)
      if (Buffer.byteLength(close) !== 1) throw new BuiltinError(b, `end delimiter has to be exactly one character long but is ${Buffer.byteLength(open)} long`)
      return templateRegexp(b, tpl, open, close).re2.match(text) as boolean
    },
  },
]
