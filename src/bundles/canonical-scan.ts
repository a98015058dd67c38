/**
 * Pass 1 of OPA's canonical JSON on bytes (canonical-hash.ts explains the whole): the lexical
 * rules shared by both passes (strings as Go reads them, strictly: valid UTF-8 and surrogate
 * escapes only in pairs; numbers; literals) and `scan`, which validates the text and indexes
 * every array and object — where it ends, which container follows its subtree, and whether its
 * bytes are already canonical. Nesting is bounded here (maxDepth), so pass 2 may recurse.
 */
export const QUOTE = 0x22
export const BACKSLASH = 0x5c
export const OPEN_OBJECT = 0x7b
export const CLOSE_OBJECT = 0x7d
export const OPEN_ARRAY = 0x5b
export const CLOSE_ARRAY = 0x5d
export const COMMA = 0x2c
export const COLON = 0x3a

/** Pass 1's result: per container, in the order they open. */
export interface ContainerIndex {
  /** Offset just past the closing bracket. */
  end: Uint32Array
  /** Ordinal of the first container after this one's subtree (its next sibling's, if any). */
  next: Uint32Array
  /** 1 when the container's bytes are already its canonical form. */
  canonical: Uint8Array
}

export function isWs (b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
}

function isDigit (b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39
}

function isHex (b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46))
}

/**
 * Length of the valid UTF-8 sequence at `j` (Go's utf8.DecodeRune: shortest form, no
 * surrogates, at most U+10FFFF), or 0 when the byte there does not start one.
 */
function utf8Length (src: Buffer, j: number): number {
  const b = src[j] as number
  const n = src.length
  if (b >= 0xc2 && b <= 0xdf) {
    if (j + 1 >= n) return 0
    const c1 = src[j + 1] as number
    return c1 >= 0x80 && c1 <= 0xbf ? 2 : 0
  }
  if (b >= 0xe0 && b <= 0xef) {
    if (j + 2 >= n) return 0
    const c1 = src[j + 1] as number
    const c2 = src[j + 2] as number
    const lo = b === 0xe0 ? 0xa0 : 0x80
    const hi = b === 0xed ? 0x9f : 0xbf
    return c1 >= lo && c1 <= hi && c2 >= 0x80 && c2 <= 0xbf ? 3 : 0
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (j + 3 >= n) return 0
    const c1 = src[j + 1] as number
    const c2 = src[j + 2] as number
    const c3 = src[j + 3] as number
    const lo = b === 0xf0 ? 0x90 : 0x80
    const hi = b === 0xf4 ? 0x8f : 0xbf
    return c1 >= lo && c1 <= hi && c2 >= 0x80 && c2 <= 0xbf && c3 >= 0x80 && c3 <= 0xbf ? 4 : 0
  }
  return 0
}

/** U+2028 or U+2029 (E2 80 A8/A9): valid UTF-8 that Go's encoder escapes anyway. */
function isLineSeparator (src: Buffer, j: number): boolean {
  return src[j] === 0xe2 && src[j + 1] === 0x80 && (src[j + 2] === 0xa8 || src[j + 2] === 0xa9)
}

export function syntaxError (at: number, what: string): never {
  throw new SyntaxError(`invalid JSON at offset ${at}: ${what}`)
}

/**
 * End of the string literal at `i` (which holds `"`), validating it; `simple` is set to whether
 * its bytes are already what Go writes (no escape, valid UTF-8, no U+2028/2029).
 */
export class StringScanner {
  simple = true

  constructor (private readonly src: Buffer) {}

  end (i: number): number {
    const src = this.src
    const n = src.length
    let simple = true
    let j = i + 1
    for (;;) {
      if (j >= n) syntaxError(i, 'unterminated string')
      const b = src[j] as number
      if (b === QUOTE) break
      if (b === BACKSLASH) {
        simple = false
        const e = src[j + 1]
        if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
          j += 2
        } else if (e === 0x75) {
          if (!(isHex(src[j + 2]) && isHex(src[j + 3]) && isHex(src[j + 4]) && isHex(src[j + 5]))) syntaxError(j, 'invalid \\u escape')
          const cp = hex4(src, j + 2)
          if (cp >= 0xd800 && cp <= 0xdfff) {
            // only a high surrogate escape followed by a low one (one code point) is accepted:
            // Go decodes any other surrogate escape to U+FFFD, JavaScript keeps it (refused, see the header)
            if (!(cp <= 0xdbff && src[j + 6] === BACKSLASH && src[j + 7] === 0x75 &&
                isHex(src[j + 8]) && isHex(src[j + 9]) && isHex(src[j + 10]) && isHex(src[j + 11]))) syntaxError(j, 'lone surrogate escape')
            const lo = hex4(src, j + 8)
            if (lo < 0xdc00 || lo > 0xdfff) syntaxError(j, 'lone surrogate escape')
            j += 12
          } else {
            j += 6
          }
        } else {
          syntaxError(j, 'invalid escape')
        }
      } else if (b < 0x20) {
        syntaxError(j, 'control character in string')
      } else if (b < 0x80) {
        j++
      } else {
        const len = utf8Length(src, j)
        // Go decodes each invalid byte to U+FFFD, JavaScript each maximal invalid subpart: refused (see the header)
        if (len === 0) syntaxError(j, 'invalid UTF-8 in string')
        if (len === 3 && isLineSeparator(src, j)) simple = false
        j += len
      }
    }
    this.simple = simple
    return j + 1
  }
}

/** End of the number at `i` (JSON grammar; what follows is checked by the caller). */
export function numberEnd (src: Buffer, i: number): number {
  let j = i
  if (src[j] === 0x2d) j++
  if (src[j] === 0x30) {
    j++
  } else if (isDigit(src[j]) && src[j] !== 0x30) {
    while (isDigit(src[j])) j++
  } else {
    syntaxError(i, 'expected a value')
  }
  if (src[j] === 0x2e) {
    j++
    if (!isDigit(src[j])) syntaxError(j, 'expected a digit after the decimal point')
    while (isDigit(src[j])) j++
  }
  if (src[j] === 0x65 || src[j] === 0x45) {
    j++
    if (src[j] === 0x2b || src[j] === 0x2d) j++
    if (!isDigit(src[j])) syntaxError(j, 'expected a digit in the exponent')
    while (isDigit(src[j])) j++
  }
  return j
}

function literalEnd (src: Buffer, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) {
    if (src[i + k] !== word.charCodeAt(k)) syntaxError(i, `expected ${word}`)
  }
  return i + word.length
}

/** Byte order of a[as..ae) against b[bs..be) (a JavaScript loop: the ranges are short keys, a native call costs more). */
export function compareRange (a: Buffer, as: number, ae: number, b: Buffer, bs: number, be: number): number {
  const la = ae - as
  const lb = be - bs
  const l = la < lb ? la : lb
  for (let k = 0; k < l; k++) {
    const d = (a[as + k] as number) - (b[bs + k] as number)
    if (d !== 0) return d
  }
  return la - lb
}

/** Pass 1: validates `src` as one JSON text and indexes its containers. Iterative; depth bounded by `maxDepth`. */
export function scan (src: Buffer, maxDepth: number): ContainerIndex {
  const n = src.length
  let cap = 256
  let end = new Uint32Array(cap)
  let next = new Uint32Array(cap)
  let canonical = new Uint8Array(cap)
  let count = 0
  // the open containers, innermost last
  const ord = new Uint32Array(maxDepth)
  const isObject = new Uint8Array(maxDepth)
  const flat = new Uint8Array(maxDepth)
  const prevKeyStart = new Int32Array(maxDepth)
  const prevKeyEnd = new Int32Array(maxDepth)
  let depth = 0
  const strings = new StringScanner(src)

  /** Skips whitespace; whitespace inside a container makes it non-canonical. */
  const ws = (i: number): number => {
    let j = i
    while (isWs(src[j])) j++
    if (j !== i && depth > 0) flat[depth - 1] = 0
    return j
  }
  /** Reads `"key" :` at i (inside the innermost object); returns where its value starts. */
  const key = (i: number): number => {
    if (src[i] !== QUOTE) syntaxError(i, 'expected a string key')
    const e = strings.end(i)
    const top = depth - 1
    if (!strings.simple) {
      flat[top] = 0
      prevKeyStart[top] = -1
    } else {
      if ((prevKeyStart[top] as number) >= 0) {
        const d = compareRange(src, prevKeyStart[top] as number, prevKeyEnd[top] as number, src, i + 1, e - 1)
        // a key repeated right after itself is refused here already (pass 2 finds the others)
        if (d === 0) syntaxError(i, 'duplicate key')
        if (d > 0) flat[top] = 0
      }
      prevKeyStart[top] = i + 1
      prevKeyEnd[top] = e - 1
    }
    let j = ws(e)
    if (src[j] !== COLON) syntaxError(j, 'expected :')
    j = ws(j + 1)
    return j
  }

  let i = ws(0)
  for (;;) {
    // a value starts at i
    let b = src[i]
    let valueDone = true
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (depth >= maxDepth) syntaxError(i, `nests deeper than ${maxDepth} levels`)
      if (count === cap) {
        cap *= 2
        const e2 = new Uint32Array(cap); e2.set(end); end = e2
        const n2 = new Uint32Array(cap); n2.set(next); next = n2
        const c2 = new Uint8Array(cap); c2.set(canonical); canonical = c2
      }
      ord[depth] = count++
      isObject[depth] = b === OPEN_OBJECT ? 1 : 0
      flat[depth] = 1
      prevKeyStart[depth] = -1
      depth++
      i = ws(i + 1)
      if (src[i] === (b === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        // empty: closed below
      } else {
        if (b === OPEN_OBJECT) i = key(i)
        valueDone = false
      }
    } else if (b === QUOTE) {
      i = strings.end(i)
      if (!strings.simple && depth > 0) flat[depth - 1] = 0
    } else if (b === 0x74) {
      i = literalEnd(src, i, 'true')
    } else if (b === 0x66) {
      i = literalEnd(src, i, 'false')
    } else if (b === 0x6e) {
      i = literalEnd(src, i, 'null')
    } else {
      i = numberEnd(src, i)
    }
    if (!valueDone) continue
    // after a value (or at an empty container's closing bracket): `,` or a close, as often as they come
    for (;;) {
      i = ws(i)
      if (depth === 0) {
        if (i !== n) syntaxError(i, 'unexpected trailing characters')
        return { end, next, canonical }
      }
      const top = depth - 1
      const obj = isObject[top] === 1
      b = src[i]
      if (b === COMMA) {
        i = ws(i + 1)
        if (obj) i = key(i)
        break
      }
      if (b !== (obj ? CLOSE_OBJECT : CLOSE_ARRAY)) syntaxError(i, obj ? 'expected , or }' : 'expected , or ]')
      i++
      const o = ord[top] as number
      end[o] = i
      next[o] = count
      canonical[o] = flat[top] as number
      depth--
      if (depth > 0 && canonical[o] === 0) flat[depth - 1] = 0
    }
  }
}

function hexDigit (b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57
}

/** The value of the four hex digits at j (checked by the caller). */
export function hex4 (src: Buffer, j: number): number {
  return (hexDigit(src[j] as number) << 12) | (hexDigit(src[j + 1] as number) << 8) | (hexDigit(src[j + 2] as number) << 4) | hexDigit(src[j + 3] as number)
}
