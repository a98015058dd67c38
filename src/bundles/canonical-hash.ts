/**
 * OPA's canonical form of a JSON file, computed on the file's bytes and streamed into a hash
 * (bundle signatures: every JSON file of a signed bundle is hashed in this form).
 *
 * OPA (v1/bundle/verify.go, hash.go) decodes the file with json.Number — every number keeps
 * the digits it was written with, a duplicated key keeps its last value — and walks the value:
 * objects as `{` key `:` value `,` … `}` with keys in Go's byte order (sort.Strings on the
 * decoded UTF-8 key), arrays as `[` … `]`, strings and numbers as a json.Encoder with
 * SetEscapeHTML(false) writes them. Go's encoding/json (decode.go unquote, encode.go
 * appendString), as OPA's Go version has them:
 * - decoding a string: a raw byte that does not start a valid UTF-8 sequence becomes U+FFFD,
 *   one per byte (utf8.DecodeRune's (RuneError, 1)); `\uD8xx\uDCxx` is one code point, any
 *   other `\u` surrogate is U+FFFD (and the escape after a lone high surrogate is read anew);
 * - encoding a string: `"` and `\` escaped, `\b \f \n \r \t` as those escapes, other control
 *   characters as `\u00xx` (lowercase hex), U+2028 and U+2029 as `\u2028`/`\u2029`; all else,
 *   `<`, `>`, `&` and DEL included, as raw UTF-8;
 * - a json.Number is written as its text (so `-0`, `1E+2`, `1.50` stay as written).
 *
 * Why not parse into JavaScript values and serialize (what this replaced): for a 40 MB
 * data.json that took seconds and hundreds of MB, so signed large bundles lost what streaming
 * the data into the engine gained (issue 12). Here the bytes are read twice and no value is
 * built: pass 1 validates the text and records, per array and object (in opening order), where
 * it ends, which container follows its subtree, and whether its bytes are already canonical (no
 * whitespace, keys strictly increasing, every string written as Go would): those are hashed as
 * one byte range. Pass 2 writes the rest: an object's members are collected as byte ranges and
 * sorted by their decoded key only when they are out of order.
 *
 * Nesting deeper than MAX_DATA_DEPTH (the data loader's limit) is refused in pass 1, so pass
 * 2's recursion is bounded and hostile input cannot overflow the stack. Invalid JSON throws a
 * SyntaxError (the caller refuses the bundle).
 *
 * Where this differs from the JavaScript-value path it replaced (both differences follow Go,
 * which is what computed the signed hash): invalid UTF-8 becomes one U+FFFD per byte (the
 * WHATWG decoder writes one per maximal invalid subsequence); two keys that differ only in
 * lone surrogates are one key in Go (both decode to U+FFFD), the last one wins; and a number of
 * more than 1024 characters is accepted.
 */
import { MAX_DATA_DEPTH } from '../policy/data-layout.js'

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d
const COMMA = 0x2c
const COLON = 0x3a
const OUT_CHUNK = 64 * 1024
const HEX = '0123456789abcdef'

/** Receives the canonical text in order. A chunk is only valid during the call (its buffer is reused): hash it or copy it. */
export type CanonicalSink = (chunk: Buffer) => void

/**
 * Writes OPA's canonical form of the JSON text `src` to `sink`, in chunks.
 * Throws SyntaxError when `src` is not JSON or nests deeper than MAX_DATA_DEPTH.
 *
 * @example
 * const h = createHash('sha256')
 * writeOpaCanonicalJson(bytes, (chunk) => h.update(chunk))
 */
export function writeOpaCanonicalJson (src: Buffer, sink: CanonicalSink): void {
  const index = scan(src, MAX_DATA_DEPTH)
  new Writer(src, index, sink).document()
}

/** OPA's canonical form of `src` as one buffer (tests and small files; hashing should stream). */
export function opaCanonicalJson (src: Buffer): Buffer {
  const parts: Buffer[] = []
  writeOpaCanonicalJson(src, (chunk) => { parts.push(Buffer.from(chunk)) })
  return Buffer.concat(parts)
}

/** Pass 1's result: per container, in the order they open. */
interface ContainerIndex {
  /** Offset just past the closing bracket. */
  end: Uint32Array
  /** Ordinal of the first container after this one's subtree (its next sibling's, if any). */
  next: Uint32Array
  /** 1 when the container's bytes are already its canonical form. */
  canonical: Uint8Array
}

function isWs (b: number | undefined): boolean {
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
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    if (j + k >= n) return false
    const c = src[j + k] as number
    return c >= lo && c <= hi
  }
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0
  if (b >= 0xe0 && b <= 0xef) {
    const lo = b === 0xe0 ? 0xa0 : 0x80
    const hi = b === 0xed ? 0x9f : 0xbf
    return cont(1, lo, hi) && cont(2) ? 3 : 0
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const lo = b === 0xf0 ? 0x90 : 0x80
    const hi = b === 0xf4 ? 0x8f : 0xbf
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0
  }
  return 0
}

/** U+2028 or U+2029 (E2 80 A8/A9): valid UTF-8 that Go's encoder escapes anyway. */
function isLineSeparator (src: Buffer, j: number): boolean {
  return src[j] === 0xe2 && src[j + 1] === 0x80 && (src[j + 2] === 0xa8 || src[j + 2] === 0xa9)
}

function syntaxError (at: number, what: string): never {
  throw new SyntaxError(`invalid JSON at offset ${at}: ${what}`)
}

/**
 * End of the string literal at `i` (which holds `"`), validating it; `simple` is set to whether
 * its bytes are already what Go writes (no escape, valid UTF-8, no U+2028/2029).
 */
class StringScanner {
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
          j += 6
        } else {
          syntaxError(j, 'invalid escape')
        }
      } else if (b < 0x20) {
        syntaxError(j, 'control character in string')
      } else if (b < 0x80) {
        j++
      } else {
        const len = utf8Length(src, j)
        if (len === 0 || isLineSeparator(src, j)) {
          simple = false
          j++
        } else {
          j += len
        }
      }
    }
    this.simple = simple
    return j + 1
  }
}

/** End of the number at `i` (JSON grammar; what follows is checked by the caller). */
function numberEnd (src: Buffer, i: number): number {
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

/** Byte order of the contents of two simple string literals (quotes excluded). */
function compareRaw (src: Buffer, as: number, ae: number, bs: number, be: number): number {
  const la = ae - as
  const lb = be - bs
  const l = la < lb ? la : lb
  for (let k = 0; k < l; k++) {
    const d = (src[as + k] as number) - (src[bs + k] as number)
    if (d !== 0) return d
  }
  return la - lb
}

/** Pass 1: validates `src` as one JSON text and indexes its containers. Iterative; depth bounded by `maxDepth`. */
function scan (src: Buffer, maxDepth: number): ContainerIndex {
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
    } else if (flat[top] === 1) {
      if ((prevKeyStart[top] as number) >= 0 && compareRaw(src, prevKeyStart[top] as number, prevKeyEnd[top] as number, i + 1, e - 1) >= 0) flat[top] = 0
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

/**
 * One object's members, in source order: the raw key literal, the decoded key as a byte range
 * (of the source when the literal needs no decoding, else of its decoded bytes), the value.
 */
class Members {
  rawStart: number[] = []
  rawEnd: number[] = []
  keyBuf: Buffer[] = []
  /** Start of the key's bytes in keyBuf, -1 when keyBuf holds the decoded key (from 0 to keyEnd). */
  keyStart: number[] = []
  keyEnd: number[] = []
  valueStart: number[] = []
  /** The value's container ordinal, -1 for a scalar. */
  valueOrd: number[] = []
  order: number[] = []

  /** Go's order of the decoded keys of members a and b (byte order). */
  compare (a: number, b: number): number {
    const ba = this.keyBuf[a] as Buffer
    const bb = this.keyBuf[b] as Buffer
    let sa = this.keyStart[a] as number
    let sb = this.keyStart[b] as number
    if (sa < 0) sa = 0
    if (sb < 0) sb = 0
    const la = (this.keyEnd[a] as number) - sa
    const lb = (this.keyEnd[b] as number) - sb
    const l = la < lb ? la : lb
    for (let k = 0; k < l; k++) {
      const d = (ba[sa + k] as number) - (bb[sb + k] as number)
      if (d !== 0) return d
    }
    return la - lb
  }
}

/** Pass 2: writes the canonical form of a text pass 1 accepted. Recursion is bounded by pass 1's depth limit. */
class Writer {
  private readonly out = Buffer.allocUnsafe(OUT_CHUNK)
  private pos = 0
  private readonly strings: StringScanner
  private readonly scratch: Members[] = []

  constructor (private readonly src: Buffer, private readonly index: ContainerIndex, private readonly sink: CanonicalSink) {
    this.strings = new StringScanner(src)
  }

  document (): void {
    let i = 0
    while (isWs(this.src[i])) i++
    const b = this.src[i]
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) this.container(i, 0, 0)
    else this.scalar(i)
    this.flush()
  }

  private flush (): void {
    if (this.pos > 0) this.sink(this.out.subarray(0, this.pos))
    this.pos = 0
  }

  private byte (b: number): void {
    if (this.pos === OUT_CHUNK) this.flush()
    this.out[this.pos++] = b
  }

  private ascii (s: string): void {
    for (let k = 0; k < s.length; k++) this.byte(s.charCodeAt(k))
  }

  /** Copies src[s, e) to the output. */
  private range (s: number, e: number): void {
    const len = e - s
    if (len <= 32) {
      const src = this.src
      for (let k = s; k < e; k++) this.byte(src[k] as number)
    } else if (len <= OUT_CHUNK - this.pos) {
      this.src.copy(this.out, this.pos, s, e)
      this.pos += len
    } else {
      this.flush()
      if (len < OUT_CHUNK) {
        this.src.copy(this.out, 0, s, e)
        this.pos = len
      } else {
        this.sink(this.src.subarray(s, e))
      }
    }
  }

  private ws (i: number): number {
    while (isWs(this.src[i])) i++
    return i
  }

  /** End of the scalar at i, without writing it. */
  private scalarEnd (i: number): number {
    const src = this.src
    const b = src[i]
    if (b === QUOTE) return this.strings.end(i)
    if (b === 0x74 || b === 0x6e) return i + 4
    if (b === 0x66) return i + 5
    return numberEnd(src, i)
  }

  /** Writes the scalar at i; returns its end. */
  private scalar (i: number): number {
    const e = this.scalarEnd(i)
    if (this.src[i] !== QUOTE || this.strings.simple) this.range(i, e)
    else this.encodeString(decodeString(this.src, i, e))
    return e
  }

  /** Writes the container at i, the `ord`-th to open. */
  private container (i: number, ord: number, depth: number): void {
    const { end, next, canonical } = this.index
    if (canonical[ord] === 1) {
      this.range(i, end[ord] as number)
      return
    }
    const src = this.src
    let child = ord + 1
    if (src[i] === OPEN_ARRAY) {
      this.byte(OPEN_ARRAY)
      i = this.ws(i + 1)
      let first = true
      while (src[i] !== CLOSE_ARRAY) {
        if (!first) this.byte(COMMA)
        first = false
        const b = src[i]
        if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
          this.container(i, child, depth + 1)
          i = end[child] as number
          child = next[child] as number
        } else {
          i = this.scalar(i)
        }
        i = this.ws(i)
        if (src[i] === COMMA) i = this.ws(i + 1)
      }
      this.byte(CLOSE_ARRAY)
      return
    }

    // an object: collect the members as byte ranges, order them by decoded key (Go's byte order)
    const m = this.members(depth)
    let count = 0
    i = this.ws(i + 1)
    while (src[i] !== CLOSE_OBJECT) {
      const ke = this.strings.end(i)
      m.rawStart[count] = i
      m.rawEnd[count] = ke
      if (this.strings.simple) {
        m.keyBuf[count] = src
        m.keyStart[count] = i + 1
        m.keyEnd[count] = ke - 1
      } else {
        const decoded = decodeString(src, i, ke)
        m.keyBuf[count] = decoded
        m.keyStart[count] = -1
        m.keyEnd[count] = decoded.length
      }
      i = this.ws(ke)
      i = this.ws(i + 1) // the colon
      m.valueStart[count] = i
      const b = src[i]
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        m.valueOrd[count] = child
        i = end[child] as number
        child = next[child] as number
      } else {
        m.valueOrd[count] = -1
        i = this.scalarEnd(i)
      }
      count++
      i = this.ws(i)
      if (src[i] === COMMA) i = this.ws(i + 1)
    }
    const order = m.order
    for (let k = 0; k < count; k++) order[k] = k
    let sorted = true
    for (let k = 1; k < count && sorted; k++) sorted = m.compare(k - 1, k) < 0
    if (!sorted) {
      if (count <= 16) {
        // insertion sort: stable, so equal keys stay in source order and the last of a run is the one Go keeps
        for (let k = 1; k < count; k++) {
          const x = order[k] as number
          let j = k - 1
          while (j >= 0 && m.compare(order[j] as number, x) > 0) {
            order[j + 1] = order[j] as number
            j--
          }
          order[j + 1] = x
        }
      } else {
        const sortedOrder = order.slice(0, count).sort((x, y) => m.compare(x, y) || x - y)
        for (let k = 0; k < count; k++) order[k] = sortedOrder[k] as number
      }
    }
    this.byte(OPEN_OBJECT)
    let first = true
    for (let k = 0; k < count; k++) {
      const x = order[k] as number
      if (!sorted && k + 1 < count && m.compare(x, order[k + 1] as number) === 0) continue
      if (!first) this.byte(COMMA)
      first = false
      if (m.keyStart[x] as number >= 0) this.range(m.rawStart[x] as number, m.rawEnd[x] as number)
      else this.encodeString(m.keyBuf[x] as Buffer)
      this.byte(COLON)
      const vo = m.valueOrd[x] as number
      if (vo >= 0) this.container(m.valueStart[x] as number, vo, depth + 1)
      else this.scalar(m.valueStart[x] as number)
    }
    this.byte(CLOSE_OBJECT)
  }

  /** The member scratch of nesting level `depth` (reused: an object's members are done before its parent's next member). */
  private members (depth: number): Members {
    let m = this.scratch[depth]
    if (m === undefined) {
      m = new Members()
      this.scratch[depth] = m
    }
    return m
  }

  /** Writes decoded (valid UTF-8) string bytes as Go's encoder does with HTML escaping off. */
  private encodeString (s: Buffer): void {
    this.byte(QUOTE)
    const n = s.length
    for (let k = 0; k < n; k++) {
      const b = s[k] as number
      if (b === QUOTE || b === BACKSLASH) {
        this.byte(BACKSLASH)
        this.byte(b)
      } else if (b < 0x20) {
        this.byte(BACKSLASH)
        if (b === 0x08) this.byte(0x62)
        else if (b === 0x0c) this.byte(0x66)
        else if (b === 0x0a) this.byte(0x6e)
        else if (b === 0x0d) this.byte(0x72)
        else if (b === 0x09) this.byte(0x74)
        else this.ascii('u00' + HEX[b >> 4] + HEX[b & 0xf])
      } else if (b === 0xe2 && s[k + 1] === 0x80 && (s[k + 2] === 0xa8 || s[k + 2] === 0xa9)) {
        this.ascii(s[k + 2] === 0xa8 ? '\\u2028' : '\\u2029')
        k += 2
      } else {
        this.byte(b)
      }
    }
    this.byte(QUOTE)
  }
}

const REPLACEMENT = [0xef, 0xbf, 0xbd]

function hex4 (src: Buffer, j: number): number {
  return parseInt(src.toString('latin1', j, j + 4), 16)
}

/** The UTF-8 bytes Go's decoder makes of the (valid) string literal src[s, e), quotes included. */
function decodeString (src: Buffer, s: number, e: number): Buffer {
  const out: number[] = []
  const pushCodePoint = (cp: number): void => {
    if (cp < 0x80) out.push(cp)
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f))
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
  }
  let j = s + 1
  const last = e - 1
  while (j < last) {
    const b = src[j] as number
    if (b === BACKSLASH) {
      const c = src[j + 1] as number
      if (c === 0x75) {
        const cp = hex4(src, j + 2)
        if (cp >= 0xd800 && cp <= 0xdfff) {
          // Go: a high surrogate followed by a \u low surrogate is one code point; anything
          // else is U+FFFD, and the following escape is decoded on its own
          if (cp <= 0xdbff && src[j + 6] === BACKSLASH && src[j + 7] === 0x75) {
            const lo = hex4(src, j + 8)
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              pushCodePoint(0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00))
              j += 12
              continue
            }
          }
          out.push(...REPLACEMENT)
        } else {
          pushCodePoint(cp)
        }
        j += 6
        continue
      }
      out.push(c === 0x62 ? 0x08 : c === 0x66 ? 0x0c : c === 0x6e ? 0x0a : c === 0x72 ? 0x0d : c === 0x74 ? 0x09 : c)
      j += 2
    } else if (b < 0x80) {
      out.push(b)
      j++
    } else {
      const len = utf8Length(src, j)
      if (len === 0 || j + len > last) {
        out.push(...REPLACEMENT)
        j++
      } else {
        for (let k = 0; k < len; k++) out.push(src[j + k] as number)
        j += len
      }
    }
  }
  return Buffer.from(out)
}
