/**
 * OPA's canonical form of a JSON file, computed on the file's bytes and streamed into a hash
 * (bundle signatures: a signed bundle's `data.json` files and `.manifest` are hashed in this form).
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
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, COLON, COMMA, compareRange, type ContainerIndex, hex4, isWs, numberEnd, OPEN_ARRAY, OPEN_OBJECT, QUOTE, scan, StringScanner, syntaxError } from './canonical-scan.js'

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

const NONE = 0xffffffff

/**
 * One object's members, in source order, in typed arrays grown by doubling (an object of
 * millions of members costs 28 bytes per member, not a JavaScript array element per field):
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

  /** Records the first four bytes of member k's decoded key (a range of `buf`), zero-padded. */
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
