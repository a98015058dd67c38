/**
 * OPA's canonical form of a JSON file, computed on the file's bytes and streamed into a hash
 * (bundle signatures: every JSON file of a signed bundle is hashed in this form).
 *
 * OPA (v1/bundle/verify.go, hash.go) decodes the file with json.Number — every number keeps
 * the digits it was written with — and walks the value: objects as `{` key `:` value `,` … `}`
 * with keys in Go's byte order (sort.Strings on the decoded UTF-8 key), arrays as `[` … `]`,
 * strings and numbers as a json.Encoder with SetEscapeHTML(false) writes them. Go's
 * encoding/json (encode.go appendString), as OPA's Go version has it:
 * - encoding a string: `"` and `\` escaped, `\b \f \n \r \t` as those escapes, other control
 *   characters as `\u00xx` (lowercase hex), U+2028 and U+2029 as `\u2028`/`\u2029`; all else,
 *   `<`, `>`, `&` and DEL included, as raw UTF-8;
 * - a json.Number is written as its text (so `-0`, `1E+2`, `1.50` stay as written).
 *
 * Stricter than OPA, deliberately (docs/policies.md, "Signed files Portcullis refuses"): the
 * hash is computed here, but the file is read by other code (JSON.parse-like parsers for small
 * data and the manifest, the wasm image writer for large data), so any text that Go and those
 * readers interpret differently would let a tampered file keep a valid signature. Refused
 * (SyntaxError, so the bundle is refused as invalid data) although Go accepts them:
 * - a key repeated in one object (Go keeps the last value; the large-data writer merged repeated
 *   objects where an earlier document had put an object) — found in pass 1 when the repeat is
 *   the next key, else when pass 2 sorts the members;
 * - a byte that is not valid UTF-8 inside a string (Go: one U+FFFD per byte; the WHATWG decoder:
 *   one per maximal invalid subpart);
 * - a `\uD800`–`\uDFFF` escape that is not a high surrogate escape followed by a low one (Go:
 *   U+FFFD; JSON.parse: a lone surrogate, a different key).
 * What remains is text every reader decodes to the same code points, once per key.
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
 * Memory: pass 1's index (9 bytes per container); pass 2's member lists are typed arrays (28
 * bytes per member of the objects being written, reused per nesting level), and decoded keys
 * and strings go into reused buffers (a decoded string is never longer than its literal).
 * verify.ts hashes files of 1 MiB or more on a worker thread (canonical-hash-worker.ts).
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
/** Byte order of a[as..ae) against b[bs..be) (a JavaScript loop: the ranges are short keys, a native call costs more). */
function compareRange (a: Buffer, as: number, ae: number, b: Buffer, bs: number, be: number): number {
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


const NONE = 0xffffffff

/**
 * One object's members, in source order, in typed arrays grown by doubling (an object of
 * millions of members costs 24 bytes per member, not a JavaScript array element per field):
 * the raw key literal, where the decoded key is (the literal's own bytes when it needs no
 * decoding, else a range of `arena`), the value's container ordinal, the sort order, and the
 * first four bytes of the decoded key (most comparisons end there).
 */
class Members {
  cap = 0
  rawStart: Uint32Array = new Uint32Array(0)
  rawEnd: Uint32Array = new Uint32Array(0)
  /** Start of the decoded key in `arena`, NONE when the key is the literal's own bytes. */
  keyStart: Uint32Array = new Uint32Array(0)
  keyEnd: Uint32Array = new Uint32Array(0)
  /** The value's container ordinal, NONE for a scalar. */
  valueOrd: Uint32Array = new Uint32Array(0)
  order: Uint32Array = new Uint32Array(0)
  prefix: Uint32Array = new Uint32Array(0)
  /** Decoded keys (only those with escapes), back to back. */
  arena: Buffer = Buffer.alloc(0)
  arenaUsed = 0

  constructor (private readonly src: Buffer) {}

  /** Room for member `k` (and everything before it). */
  ensure (k: number): void {
    if (k < this.cap) return
    const cap = Math.max(16, this.cap * 2, k + 1)
    const grow = (a: Uint32Array): Uint32Array => { const b = new Uint32Array(cap); b.set(a); return b }
    this.rawStart = grow(this.rawStart)
    this.rawEnd = grow(this.rawEnd)
    this.keyStart = grow(this.keyStart)
    this.keyEnd = grow(this.keyEnd)
    this.valueOrd = grow(this.valueOrd)
    this.order = grow(this.order)
    this.prefix = grow(this.prefix)
    this.cap = cap
  }

  /** Room for `n` more arena bytes. */
  reserve (n: number): void {
    if (this.arenaUsed + n <= this.arena.length) return
    const b = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + n, 1024))
    this.arena.copy(b, 0, 0, this.arenaUsed)
    this.arena = b
  }

  /** Records member k's key bytes (a range of `buf`) and its 4-byte prefix. */
  setKey (k: number, buf: Buffer, s: number, e: number): void {
    let p = 0
    for (let q = 0; q < 4; q++) p = p * 256 + (s + q < e ? buf[s + q] as number : 0)
    this.prefix[k] = p
  }

  /** Go's order of the decoded keys of members a and b (byte order). */
  compare (a: number, b: number): number {
    const pa = this.prefix[a] as number
    const pb = this.prefix[b] as number
    if (pa !== pb) return pa < pb ? -1 : 1
    let ba = this.src
    let bb = this.src
    let sa: number, ea: number, sb: number, eb: number
    if (this.keyStart[a] === NONE) { sa = (this.rawStart[a] as number) + 1; ea = (this.rawEnd[a] as number) - 1 } else { ba = this.arena; sa = this.keyStart[a] as number; ea = this.keyEnd[a] as number }
    if (this.keyStart[b] === NONE) { sb = (this.rawStart[b] as number) + 1; eb = (this.rawEnd[b] as number) - 1 } else { bb = this.arena; sb = this.keyStart[b] as number; eb = this.keyEnd[b] as number }
    // the first 4 bytes are equal (the prefixes are, zero-padded: a shorter key has no more)
    const ta = Math.min(sa + 4, ea)
    const tb = Math.min(sb + 4, eb)
    return compareRange(ba, ta, ea, bb, tb, eb) || (ea - sa) - (eb - sb)
  }
}

/** Pass 2: writes the canonical form of a text pass 1 accepted. Recursion is bounded by pass 1's depth limit. */
class Writer {
  private readonly out = Buffer.allocUnsafe(OUT_CHUNK)
  private pos = 0
  private readonly strings: StringScanner
  private readonly scratch: Members[] = []
  /** Decoded string values, reused (a decoded string is never longer than its literal). */
  private decoded: Buffer = Buffer.alloc(0)

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

  /** Copies buf[s, e) to the output. */
  private range (s: number, e: number, buf: Buffer = this.src): void {
    const len = e - s
    if (len <= 32) {
      for (let k = s; k < e; k++) this.byte(buf[k] as number)
    } else if (len <= OUT_CHUNK - this.pos) {
      buf.copy(this.out, this.pos, s, e)
      this.pos += len
    } else {
      this.flush()
      if (len < OUT_CHUNK) {
        buf.copy(this.out, 0, s, e)
        this.pos = len
      } else {
        this.sink(buf.subarray(s, e))
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
    if (this.src[i] !== QUOTE || this.strings.simple) {
      this.range(i, e)
    } else {
      if (this.decoded.length < e - i) this.decoded = Buffer.allocUnsafe(Math.max(e - i, this.decoded.length * 2))
      this.encodeString(this.decoded, 0, decodeString(this.src, i, e, this.decoded, 0))
    }
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
    m.arenaUsed = 0
    let count = 0
    i = this.ws(i + 1)
    while (src[i] !== CLOSE_OBJECT) {
      m.ensure(count)
      const ke = this.strings.end(i)
      m.rawStart[count] = i
      m.rawEnd[count] = ke
      if (this.strings.simple) {
        m.keyStart[count] = NONE
        m.setKey(count, src, i + 1, ke - 1)
      } else {
        m.reserve(ke - i)
        const at = m.arenaUsed
        m.arenaUsed = decodeString(src, i, ke, m.arena, at)
        m.keyStart[count] = at
        m.keyEnd[count] = m.arenaUsed
        m.setKey(count, m.arena, at, m.arenaUsed)
      }
      i = this.ws(ke)
      i = this.ws(i + 1) // the colon
      const b = src[i]
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        m.valueOrd[count] = child
        i = end[child] as number
        child = next[child] as number
      } else {
        m.valueOrd[count] = NONE
        i = this.scalarEnd(i)
      }
      count++
      i = this.ws(i)
      if (src[i] === COMMA) i = this.ws(i + 1)
    }
    let order = m.order
    for (let k = 0; k < count; k++) order[k] = k
    let sorted = true
    for (let k = 1; k < count && sorted; k++) sorted = m.compare(k - 1, k) < 0
    if (!sorted) {
      if (count <= 16) {
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
        order = order.subarray(0, count).sort((x, y) => m.compare(x, y))
      }
      // Go keeps a repeated key's last value; the loaders must not be able to read the file
      // otherwise than the hash did, so a signed file with a repeated key is refused (see the header).
      for (let k = 1; k < count; k++) {
        if (m.compare(order[k - 1] as number, order[k] as number) === 0) syntaxError(m.rawStart[order[k] as number] as number, 'duplicate key')
      }
    }
    this.byte(OPEN_OBJECT)
    for (let k = 0; k < count; k++) {
      const x = order[k] as number
      if (k > 0) this.byte(COMMA)
      if (m.keyStart[x] === NONE) this.range(m.rawStart[x] as number, m.rawEnd[x] as number)
      else this.encodeString(m.arena, m.keyStart[x] as number, m.keyEnd[x] as number)
      this.byte(COLON)
      const vo = m.valueOrd[x] as number
      const vs = this.ws(this.ws(m.rawEnd[x] as number) + 1)
      if (vo !== NONE) this.container(vs, vo, depth + 1)
      else this.scalar(vs)
    }
    this.byte(CLOSE_OBJECT)
  }

  /** The member scratch of nesting level `depth` (reused: an object's members are done before its parent's next member). */
  private members (depth: number): Members {
    let m = this.scratch[depth]
    if (m === undefined) {
      m = new Members(this.src)
      this.scratch[depth] = m
    }
    return m
  }

  /** Writes decoded (valid UTF-8) string bytes s[from, to) as Go's encoder does with HTML escaping off. */
  private encodeString (s: Buffer, from: number, to: number): void {
    this.byte(QUOTE)
    for (let k = from; k < to; k++) {
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
      } else if (b === 0xe2 && k + 2 < to && s[k + 1] === 0x80 && (s[k + 2] === 0xa8 || s[k + 2] === 0xa9)) {
        this.ascii(s[k + 2] === 0xa8 ? '\\u2028' : '\\u2029')
        k += 2
      } else {
        this.byte(b)
      }
    }
    this.byte(QUOTE)
  }
}

function hexDigit (b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x57
}

/** The value of the four hex digits at j (checked by the caller). */
function hex4 (src: Buffer, j: number): number {
  return (hexDigit(src[j] as number) << 12) | (hexDigit(src[j + 1] as number) << 8) | (hexDigit(src[j + 2] as number) << 4) | hexDigit(src[j + 3] as number)
}

/**
 * Decodes the string literal src[s, e) (quotes included), which pass 1 accepted (valid UTF-8,
 * surrogate escapes only in pairs), into out[at, …) — the caller leaves room for e - s bytes,
 * which is enough: no escape decodes to more bytes than it is written with. Returns the end.
 */
function decodeString (src: Buffer, s: number, e: number, out: Buffer, at: number): number {
  let o = at
  let j = s + 1
  const last = e - 1
  while (j < last) {
    const b = src[j] as number
    if (b !== BACKSLASH) {
      out[o++] = b
      j++
      continue
    }
    const c = src[j + 1] as number
    if (c !== 0x75) {
      out[o++] = c === 0x62 ? 0x08 : c === 0x66 ? 0x0c : c === 0x6e ? 0x0a : c === 0x72 ? 0x0d : c === 0x74 ? 0x09 : c
      j += 2
      continue
    }
    let cp = hex4(src, j + 2)
    j += 6
    if (cp >= 0xd800 && cp <= 0xdbff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(src, j + 2) - 0xdc00)
      j += 6
    }
    if (cp < 0x80) {
      out[o++] = cp
    } else if (cp < 0x800) {
      out[o++] = 0xc0 | (cp >> 6); out[o++] = 0x80 | (cp & 0x3f)
    } else if (cp < 0x10000) {
      out[o++] = 0xe0 | (cp >> 12); out[o++] = 0x80 | ((cp >> 6) & 0x3f); out[o++] = 0x80 | (cp & 0x3f)
    } else {
      out[o++] = 0xf0 | (cp >> 18); out[o++] = 0x80 | ((cp >> 12) & 0x3f); out[o++] = 0x80 | ((cp >> 6) & 0x3f); out[o++] = 0x80 | (cp & 0x3f)
    }
  }
  return o
}
