/**
 * Loads bundle data documents into OPA wasm memory without a JavaScript object graph and
 * without opa_json_parse.
 *
 * Why: opa-wasm's `setData` stringifies a parsed JS object, copies the text into wasm memory
 * and parses it there with `opa_json_parse`. For tens of megabytes that is slow and fat
 * (measured on a 40 MB document: 10-17 s, mostly in `opa_malloc`'s first-fit free-list scan
 * as object buckets are regrown, and 375 MB of wasm heap — 9.4 bytes per byte of JSON —
 * plus the text, which is never freed). Here one pass over the exact bytes read from the
 * bundle writes OPA's value structures (OPA `wasm/src/value.h`, ABI 1.x, wasm32) directly
 * into a linear memory at a fixed base address: objects get their final bucket count at once
 * (OPA_OBJECT_MIN_BUCKETS doubled until len <= n * OPA_OBJECT_LOAD_FACTOR, as repeated
 * `opa_object_insert` leaves it) with each bucket chain sorted by key, exactly as
 * `__opa_object_insert_elem` orders it; keys are hashed with OPA's fnv1a32; values carry no
 * malloc headers (data values are read-only during evaluation and never freed: OPA resets the
 * heap pointer above them for each evaluation); repeated short strings and numbers (object keys,
 * role names) are stored once. The result is a DataImage: a contiguous segment [base, end)
 * holding the whole merged data document, which is copied into each instance (as OPA's Go SDK
 * does with its first VM's data segment, internal/wasm/sdk/internal/wasm/pool.go).
 *
 * The same pass enforces what the bundle loader enforces on small documents (strict JSON,
 * valid UTF-8, data under the bundle's roots, no conflicting documents) and a nesting limit
 * that keeps hostile data from exhausting the wasm stack during evaluation.
 */
import { isUtf8 } from 'node:buffer'
import { Worker } from 'node:worker_threads'
import { BundleError, type ErrorCode } from '../errors.js'
import { isAncestorOf, rootContains } from './bundle.js'
import { DataImage } from './data-image.js'
import { MAX_DATA_DEPTH, opaStringHash, PAGE, PlainStore, REPR_INT, REPR_REF, T_ARRAY, T_BOOLEAN, T_NULL, T_NUMBER, T_OBJECT, T_STRING, type Store } from './data-layout.js'

/** One data document to place: the exact JSON bytes and where it goes under `data`. */
export interface DataDocument {
  /** Path segments under `data` (`[]` for the root document, which must be an object). */
  path: string[]
  /** Exact JSON bytes (UTF-8). */
  json: Uint8Array
  /** Bundle-relative file name, for errors. */
  file: string
  /** Bundle source, for errors. */
  source: string
  /** The owning bundle's roots; values outside them are rejected. Undefined: not checked. */
  roots?: string[]
}

const MIN_BUCKETS = 8
const LOAD_FACTOR = 0.7
/** Scalars up to this many bytes are stored once per image (keys, enum-like values). */
const INTERN_MAX_BYTES = 48
const INTERN_MASK = (1 << 17) - 1


function bucketCount (len: number): number {
  let n = MIN_BUCKETS
  while (len > n * LOAD_FACTOR) n *= 2
  return n
}


class DataError extends Error {
  constructor (readonly offset: number, message: string, readonly code: 'PORTCULLIS_BUNDLE_DATA_INVALID' | 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' = 'PORTCULLIS_BUNDLE_DATA_INVALID', readonly path?: string) {
    super(message)
  }
}

/** An object member waiting to be written: key bytes and the address of its value (or an open object). */
interface Member { key: number, value: number | OpenObject, doc?: number }
/** An object kept open so that later documents can merge into it (a document's path passes through it). */
class OpenObject {
  readonly members = new Map<string, Member>()
}


/** Writes OPA values into a growable linear memory from `base` upward. */
class ImageWriter {
  readonly memory: Store
  #u8: Uint8Array
  #dv: DataView
  /** Word view for the 4-aligned struct fields (wasm memory is little-endian, as is every platform Node runs on). */
  #u32: Uint32Array
  #ptr: number
  readonly #maxPages: number
  /** Direct-mapped cache of stored scalars by hash: a later one with the same slot replaces it. */
  readonly #interned = new Uint32Array(INTERN_MASK + 1)
  readonly #indexNumbers: number[] = []
  readonly nullAddr: number
  readonly trueAddr: number
  readonly falseAddr: number

  constructor (base: number, initialBytes: number, maxPages: number, plain = false) {
    this.#maxPages = maxPages
    // Untouched pages of a wasm memory are never made resident, so sizing up front costs no RSS.
    const pages = Math.min(maxPages, Math.ceil((base + initialBytes) / PAGE))
    if (base + PAGE > pages * PAGE) throw new RangeError('data image exceeds the memory limit')
    this.memory = plain ? new PlainStore(pages) : new WebAssembly.Memory({ initial: pages, maximum: maxPages })
    this.#u8 = new Uint8Array(this.memory.buffer)
    this.#dv = new DataView(this.memory.buffer)
    this.#u32 = new Uint32Array(this.memory.buffer)
    this.#ptr = base
    this.nullAddr = this.alloc(4)
    this.#u8[this.nullAddr] = T_NULL
    this.trueAddr = this.alloc(4)
    this.#u8[this.trueAddr] = T_BOOLEAN
    this.#u8[this.trueAddr + 1] = 1
    this.falseAddr = this.alloc(4)
    this.#u8[this.falseAddr] = T_BOOLEAN
  }

  get end (): number { return this.#ptr }

  alloc (size: number, align = 4): number {
    const addr = (this.#ptr + align - 1) & ~(align - 1)
    const next = addr + size
    if (next > this.#u8.length) {
      const want = Math.max(Math.ceil((next - this.#u8.length) / PAGE), Math.ceil(this.#u8.length / PAGE / 4))
      const pages = Math.min(want, this.#maxPages - this.#u8.length / PAGE)
      if (this.#u8.length + pages * PAGE < next) throw new RangeError('data image exceeds the memory limit')
      this.memory.grow(pages)
      this.#u8 = new Uint8Array(this.memory.buffer)
      this.#dv = new DataView(this.memory.buffer)
      this.#u32 = new Uint32Array(this.memory.buffer)
    }
    this.#ptr = next
    return addr
  }

  /** Interned scalar at `hash` whose type and bytes equal b[start, end), or 0. */
  #lookup (type: number, hash: number, b: Uint8Array, start: number, end: number): number {
    const addr = this.#interned[hash & INTERN_MASK] as number
    if (addr === 0 || this.#u8[addr] !== type) return 0
    const len = this.#u32[(addr + (type === T_STRING ? 4 : 12)) >>> 2] as number
    if (len !== end - start) return 0
    const chars = this.#u32[(addr + 8) >>> 2] as number
    const u8 = this.#u8
    for (let i = 0; i < len; i++) if (u8[chars + i] !== b[start + i]) return 0
    return addr
  }

  #remember (hash: number, addr: number): void {
    this.#interned[hash & INTERN_MASK] = addr
  }

  /** An OPA string of the UTF-8 bytes b[start, end); short ones are stored once. */
  string (b: Uint8Array, start = 0, end = b.length): number {
    const len = end - start
    const hash = len <= INTERN_MAX_BYTES ? opaStringHash(b, start, end) : -1
    if (hash >= 0) {
      const hit = this.#lookup(T_STRING, hash, b, start, end)
      if (hit !== 0) return hit
    }
    const chars = this.alloc(len, 1)
    this.#u8.set(b.subarray(start, end), chars)
    const addr = this.alloc(12)
    this.#u8[addr] = T_STRING
    this.#u8[addr + 1] = 0 // not owned: never freed
    this.#u32[(addr + 4) >>> 2] = len
    this.#u32[(addr + 8) >>> 2] = chars
    if (hash >= 0) this.#remember(hash, addr)
    return addr
  }

  /** A JSON number b[start, end) kept as its text (OPA_NUMBER_REPR_REF), exactly as opa_json_parse keeps it. */
  numberRef (b: Uint8Array, start: number, end: number): number {
    const len = end - start
    // Numbers hash apart from strings of the same text (the xor), both interned in one table.
    const hash = len <= INTERN_MAX_BYTES ? (opaStringHash(b, start, end) ^ 0x5bd1e995) >>> 0 : -1
    if (hash >= 0) {
      const hit = this.#lookup(T_NUMBER, hash, b, start, end)
      if (hit !== 0) return hit
    }
    const chars = this.alloc(len, 1)
    this.#u8.set(b.subarray(start, end), chars)
    const addr = this.alloc(24, 8)
    this.#u8[addr] = T_NUMBER
    this.#u8[addr + 1] = REPR_REF
    this.#u32[(addr + 8) >>> 2] = chars
    this.#u32[(addr + 12) >>> 2] = len
    this.#u8[addr + 16] = 0
    if (hash >= 0) this.#remember(hash, addr)
    return addr
  }

  /** The OPA hash of a written string. */
  stringHash (addr: number): number {
    const chars = this.#u32[(addr + 8) >>> 2] as number
    return opaStringHash(this.#u8, chars, chars + (this.#u32[(addr + 4) >>> 2] as number))
  }

  /** opa_value_compare of two written strings: unsigned bytes, then length. */
  #compareStrings (a: number, b: number): number {
    if (a === b) return 0
    const u8 = this.#u8
    const la = this.#u32[(a + 4) >>> 2] as number
    const lb = this.#u32[(b + 4) >>> 2] as number
    const ca = this.#u32[(a + 8) >>> 2] as number
    const cb = this.#u32[(b + 8) >>> 2] as number
    const min = la < lb ? la : lb
    for (let i = 0; i < min; i++) {
      const d = (u8[ca + i] as number) - (u8[cb + i] as number)
      if (d !== 0) return d
    }
    return la - lb
  }

  /** Array index numbers (opa_array_append stores OPA_NUMBER_REPR_INT indices); shared. */
  #index (i: number): number {
    let addr = this.#indexNumbers[i]
    if (addr === undefined) {
      addr = this.alloc(24, 8)
      this.#u8[addr] = T_NUMBER
      this.#u8[addr + 1] = REPR_INT
      this.#dv.setBigInt64(addr + 8, BigInt(i), true)
      this.#indexNumbers[i] = addr
    }
    return addr
  }

  /** Members of an object written earlier (to merge a later document into it); undefined if not an object. */
  reopen (addr: number): OpenObject | undefined {
    if (this.#u8[addr] !== T_OBJECT) return undefined
    const o = new OpenObject()
    const buckets = (this.#u32[(addr + 4) >>> 2] as number)
    const n = (this.#u32[(addr + 8) >>> 2] as number)
    for (let i = 0; i < n; i++) {
      for (let e = (this.#u32[(buckets + i * 4) >>> 2] as number); e !== 0; e = (this.#u32[(e + 8) >>> 2] as number)) {
        const k = this.#u32[e >>> 2] as number
        const s = this.#u32[(k + 8) >>> 2] as number
        o.members.set(decoder.decode(this.#u8.subarray(s, s + (this.#u32[(k + 4) >>> 2] as number))), { key: k, value: this.#u32[(e + 4) >>> 2] as number })
      }
    }
    return o
  }

  array (values: number[]): number {
    for (let i = 0; i < values.length; i++) this.#index(i) // may grow the memory: before the elements
    const elems = values.length === 0 ? 0 : this.alloc(values.length * 8)
    for (let i = 0; i < values.length; i++) {
      this.#u32[(elems + i * 8) >>> 2] = this.#indexNumbers[i] as number
      this.#u32[(elems + i * 8 + 4) >>> 2] = values[i] as number
    }
    const addr = this.alloc(16)
    this.#u8[addr] = T_ARRAY
    this.#u32[(addr + 4) >>> 2] = elems
    this.#u32[(addr + 8) >>> 2] = values.length
    this.#u32[(addr + 12) >>> 2] = values.length
    return addr
  }

  /**
   * An object from `members`, a flat list of (key string address, key hash, value address)
   * in document order; a repeated key keeps its last value (JSON.parse). Bucket chains are
   * sorted by key, as OPA's inserts leave them.
   */
  object (members: number[]): number {
    let len = members.length / 3
    let n = bucketCount(len)
    let chains = this.#chains(members, n)
    let distinct = 0
    for (const c of chains) if (c !== undefined) distinct += c.length
    if (distinct !== len) { len = distinct; n = bucketCount(len); chains = this.#chains(members, n) }
    const buckets = this.alloc(n * 4)
    const elems = this.alloc(len * 12)
    const u32 = this.#u32
    let e = elems
    for (let i = 0; i < n; i++) {
      const chain = chains[i]
      if (chain === undefined) { u32[(buckets >>> 2) + i] = 0; continue }
      u32[(buckets >>> 2) + i] = e
      for (let j = 0; j < chain.length; j++) {
        const m = chain[j] as number
        u32[e >>> 2] = members[m] as number
        u32[(e + 4) >>> 2] = members[m + 2] as number
        u32[(e + 8) >>> 2] = j + 1 < chain.length ? e + 12 : 0
        e += 12
      }
    }
    const addr = this.alloc(16)
    this.#u8[addr] = T_OBJECT
    u32[(addr + 4) >>> 2] = buckets
    u32[(addr + 8) >>> 2] = n
    u32[(addr + 12) >>> 2] = len
    return addr
  }

  /** Member offsets per bucket, sorted by key, a repeated key reduced to its last member. */
  #chains (members: number[], n: number): Array<number[] | undefined> {
    const chains: Array<number[] | undefined> = new Array(n)
    for (let m = 0; m < members.length; m += 3) {
      const b = (members[m + 1] as number) % n
      const chain = chains[b]
      if (chain === undefined) chains[b] = [m]
      else chain.push(m)
    }
    for (let b = 0; b < n; b++) {
      const chain = chains[b]
      if (chain === undefined || chain.length < 2) continue
      // Insertion sort (chains are short), stable; among equal keys the later member is kept.
      for (let x = 1; x < chain.length; x++) {
        const v = chain[x] as number
        let y = x - 1
        while (y >= 0 && this.#compareStrings(members[chain[y] as number] as number, members[v] as number) > 0) { chain[y + 1] = chain[y] as number; y-- }
        chain[y + 1] = v
      }
      let w = 0
      for (let x = 0; x < chain.length; x++) {
        const v = chain[x] as number
        if (w > 0 && this.#compareStrings(members[chain[w - 1] as number] as number, members[v] as number) === 0) chain[w - 1] = v
        else chain[w++] = v
      }
      chain.length = w
    }
    return chains
  }
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()


const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

interface Frame {
  kind: 'array' | 'object'
  values?: number[]
  /** Members of an object written when it closes: (key address, key hash, value address) each. */
  members?: number[]
  /** An object that merges into a place another document already filled (see OpenObject). */
  open?: OpenObject
  /** Address of the key waiting for its value, and its text where paths or merging need it. */
  key: number
  keyText?: string
  /** Path under `data`, tracked while roots must still be checked beneath it. */
  path?: string[]
}

/**
 * Parses `doc` (iteratively: depth is bounded by MAX_DATA_DEPTH, not by the JS stack) and
 * places it into the open tree under `root`. A document's top-level object always merges into
 * its place; deeper objects merge where an earlier document already put an object (deep merge,
 * as the bundle loader merges small documents); any other collision is a conflict.
 */
function placeDocument (w: ImageWriter, root: OpenObject, doc: DataDocument, docIndex: number): void {
  const b = new Uint8Array(doc.json.buffer, doc.json.byteOffset, doc.json.byteLength)
  const n = b.length
  let i = 0
  const where = (p: string[]): string => '/' + p.join('/')
  const roots = doc.roots
  const inRoots = (p: string[]): boolean => roots === undefined || roots.some((r) => rootContains(r, p.join('/')))
  const aboveRoots = (p: string[]): boolean => roots !== undefined && roots.some((r) => isAncestorOf(p.join('/'), r))
  const fail = (what: string): never => { throw new DataError(i, `${what} at byte ${i}`) }
  const conflict = (p: string[]): never => { throw new DataError(i, `data at ${where(p)} conflicts with another data file`, 'PORTCULLIS_BUNDLE_DATA_INVALID', p.join('/')) }
  const segment = (seg: string): number => w.string(encoder.encode(seg))

  /** The open object at key `k` of `into` (created, or reopened from an earlier document's object). */
  const openAt = (into: OpenObject, k: string, key: number, p: string[]): OpenObject => {
    const existing = into.members.get(k)
    if (existing === undefined) {
      const o = new OpenObject()
      into.members.set(k, { key, value: o, doc: docIndex })
      return o
    }
    if (existing.value instanceof OpenObject) return existing.value
    const reopened = w.reopen(existing.value)
    if (reopened === undefined) return conflict(p)
    existing.value = reopened
    return reopened
  }
  /** Sets a finished value at key `k` of an open object. */
  const setOpen = (into: OpenObject, k: string, key: number, value: number, p: string[]): void => {
    const existing = into.members.get(k)
    // Within one document a repeated key's last value wins (JSON.parse); across documents it conflicts.
    if (existing !== undefined && (existing.doc !== docIndex || existing.value instanceof OpenObject)) conflict(p)
    into.members.set(k, { key, value, doc: docIndex })
  }

  let parent = root
  for (const [j, seg] of doc.path.slice(0, -1).entries()) parent = openAt(parent, seg, segment(seg), doc.path.slice(0, j + 1))
  const lastSeg = doc.path[doc.path.length - 1]

  const stack: Frame[] = []
  const skipWs = (): void => { while (i < n && isWs(b[i] as number)) i++ }

  const checkPlacement = (p: string[] | undefined, isObject: boolean): string[] | undefined => {
    // Roots: inside them anything goes; above them only objects (whose members are checked).
    if (p === undefined || roots === undefined || inRoots(p)) return undefined
    if (isObject && aboveRoots(p)) return p
    throw new DataError(i, `data at ${where(p)} is outside the bundle roots ${JSON.stringify(roots)}`, 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS', p.join('/'))
  }

  const finish = (value: number, p: string[] | undefined): void => {
    const top = stack[stack.length - 1]
    if (top === undefined) {
      // A non-object document below the root (the root document must be an object).
      if (lastSeg === undefined) fail('the root data document must be an object')
      setOpen(parent, lastSeg as string, segment(lastSeg as string), value, doc.path)
      return
    }
    if (top.kind === 'array') { (top.values as number[]).push(value); return }
    if (top.open !== undefined) { setOpen(top.open, top.keyText as string, top.key, value, p ?? [top.keyText as string]); return }
    (top.members as number[]).push(top.key, w.stringHash(top.key), value)
  }

  // The last string read: b[sStart, sEnd), or `sEscaped` when it had escapes.
  let sStart = 0
  let sEnd = 0
  let sEscaped: Uint8Array | undefined
  const readString = (): void => {
    const start = ++i
    let escaped = false
    for (;;) {
      if (i >= n) fail('unterminated string')
      const c = b[i] as number
      if (c === 0x22) break
      if (c < 0x20) fail('control character in string')
      if (c === 0x5c) { escaped = true; i += 2; continue }
      i++
    }
    const end = i++
    sStart = start
    sEnd = end
    sEscaped = undefined
    if (!escaped) return
    try {
      sEscaped = encoder.encode(JSON.parse(decoder.decode(b.subarray(start - 1, end + 1))) as string)
    } catch {
      fail('invalid escape in string')
    }
  }
  const writeString = (): number => sEscaped !== undefined ? w.string(sEscaped) : w.string(b, sStart, sEnd)
  const stringText = (): string => decoder.decode(sEscaped ?? b.subarray(sStart, sEnd))
  const digit = (): boolean => (b[i] as number) >= 0x30 && (b[i] as number) <= 0x39
  const readNumber = (): number => {
    const start = i
    if (b[i] === 0x2d) i++
    if (b[i] === 0x30) i++
    else if (digit()) { while (digit()) i++ } else fail('invalid number')
    if (b[i] === 0x2e) {
      i++
      if (!digit()) fail('invalid number')
      while (digit()) i++
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++
      if (b[i] === 0x2b || b[i] === 0x2d) i++
      if (!digit()) fail('invalid number')
      while (digit()) i++
    }
    return w.numberRef(b, start, i)
  }
  const literal = (text: string): void => {
    for (let j = 0; j < text.length; j++) if (b[i + j] !== text.charCodeAt(j)) fail('invalid literal')
    i += text.length
  }
  const readKey = (): void => {
    skipWs()
    if (b[i] !== 0x22) fail('expected a string key')
    const top = stack[stack.length - 1] as Frame
    readString()
    top.key = writeString()
    top.keyText = top.open !== undefined || top.path !== undefined ? stringText() : undefined
    skipWs()
    if (b[i] !== 0x3a) fail('expected :')
    i++
  }
  const closeFrame = (): void => {
    const f = stack.pop() as Frame
    if (f.open !== undefined) return // merged in place
    finish(f.kind === 'array' ? w.array(f.values as number[]) : w.object(f.members as number[]), f.path)
  }

  for (;;) {
    skipWs()
    if (i >= n) fail('unexpected end of data')
    const c = b[i] as number
    const top = stack[stack.length - 1]
    // Path of this value, while it matters (roots still to check, or the document's own place).
    const p = top === undefined ? doc.path : top.kind === 'object' && top.path !== undefined ? [...top.path, top.keyText as string] : undefined
    if (c === 0x7b || c === 0x5b) {
      if (stack.length >= MAX_DATA_DEPTH) fail(`data nests deeper than ${MAX_DATA_DEPTH} levels`)
      const isObj = c === 0x7b
      if (!isObj && top === undefined && lastSeg === undefined) fail('the root data document must be an object')
      const frame: Frame = { kind: isObj ? 'object' : 'array', key: 0, path: checkPlacement(p, isObj) }
      if (isObj) {
        if (top === undefined) frame.open = lastSeg === undefined ? root : openAt(parent, lastSeg, segment(lastSeg), doc.path)
        else if (top.open !== undefined && top.open.members.has(top.keyText as string) && top.open.members.get(top.keyText as string)?.doc !== docIndex) frame.open = openAt(top.open, top.keyText as string, top.key, p ?? [top.keyText as string])
        else frame.members = []
      } else {
        frame.values = []
      }
      i++
      stack.push(frame)
      skipWs()
      if (b[i] === (isObj ? 0x7d : 0x5d)) { i++; closeFrame() } else {
        if (isObj) readKey()
        continue
      }
    } else {
      let addr: number
      if (c === 0x22) { readString(); addr = writeString() } else if (c === 0x74) { literal('true'); addr = w.trueAddr } else if (c === 0x66) { literal('false'); addr = w.falseAddr } else if (c === 0x6e) { literal('null'); addr = w.nullAddr } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) addr = readNumber()
      else return fail('unexpected character')
      if (top === undefined && lastSeg === undefined) fail('the root data document must be an object')
      checkPlacement(p, false)
      finish(addr, p)
    }
    // After a value: separators and closers.
    for (;;) {
      skipWs()
      const f = stack[stack.length - 1]
      if (f === undefined) {
        if (i !== n) fail('trailing characters after the document')
        return
      }
      const d = b[i]
      if (d === 0x2c) {
        i++
        if (f.kind === 'object') readKey()
        break
      }
      if (d === (f.kind === 'object' ? 0x7d : 0x5d)) { i++; closeFrame(); continue }
      fail(f.kind === 'object' ? 'expected , or }' : 'expected , or ]')
    }
  }
}

/** Writes the open objects (the merge skeleton) bottom-up; returns the root's address. */
function closeOpen (w: ImageWriter, o: OpenObject): number {
  const members: number[] = []
  for (const m of o.members.values()) members.push(m.key, w.stringHash(m.key), m.value instanceof OpenObject ? closeOpen(w, m.value) : m.value)
  return w.object(members)
}

export interface BuildOptions {
  /** Address at which the segment starts: above the heap pointer of every module it will be installed in. */
  base: number
  /** Upper bound of the memory in 64 KiB pages (the engine's memory.maxPages). */
  maxPages: number
  /** Write into a plain ArrayBuffer (transferable) instead of a wasm memory. */
  plain?: boolean
}

/**
 * Builds the merged data document of `docs` (in order; the first is usually the root document)
 * as a DataImage. Throws BundleError (PORTCULLIS_BUNDLE_DATA_INVALID, _DATA_OUTSIDE_ROOTS,
 * _TOO_LARGE) naming the file and byte offset; never leaves a partial image behind.
 */
export function buildDataImage (docs: DataDocument[], opts: BuildOptions): DataImage {
  const total = docs.reduce((s, d) => s + d.json.length, 0)
  let w: ImageWriter
  try {
    // Measured: the compact layout takes about 2-3 bytes per byte of JSON for entitlement-shaped data.
    w = new ImageWriter(opts.base, Math.max(PAGE, Math.ceil(total * 2.5)), opts.maxPages, opts.plain === true)
  } catch (err) {
    throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `data documents of ${total} bytes do not fit the wasm memory limit of ${opts.maxPages} pages (engine memory.maxPages)`, { limit: opts.maxPages }, { cause: err })
  }
  const root = new OpenObject()
  for (const [k, doc] of docs.entries()) {
    if (!isUtf8(doc.json)) {
      throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${doc.source}: ${doc.file} is not valid UTF-8`, { source: doc.source, file: doc.file })
    }
    try {
      placeDocument(w, root, doc, k)
    } catch (err) {
      if (err instanceof DataError) {
        throw new BundleError(err.code, `${doc.source}: ${doc.file}: ${err.message}`, { source: doc.source, file: doc.file, offset: err.offset, ...(err.path !== undefined ? { path: err.path } : {}) })
      }
      if (err instanceof RangeError) {
        throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${doc.source}: ${doc.file}: data does not fit the wasm memory limit of ${opts.maxPages} pages (engine memory.maxPages)`, { source: doc.source, file: doc.file, limit: opts.maxPages }, { cause: err })
      }
      throw err
    }
  }
  let rootAddr: number
  try {
    rootAddr = closeOpen(w, root)
  } catch (err) {
    throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `data does not fit the wasm memory limit of ${opts.maxPages} pages (engine memory.maxPages)`, { limit: opts.maxPages }, { cause: err })
  }
  return new DataImage(w.memory, opts.base, w.end, rootAddr)
}

/** Below this many bytes of large documents an image is built on the calling thread (a worker costs more than it saves). */
export const OFF_THREAD_MIN_BYTES = 1 << 20

/**
 * buildDataImage on a worker thread, so that the event loop keeps answering decisions while
 * tens of megabytes are parsed; only the final copy of the segment into a memory happens here.
 * Small data is built in place. Rejects with the same BundleError codes.
 */
export async function buildDataImageOffThread (docs: DataDocument[], opts: BuildOptions): Promise<DataImage> {
  const total = docs.reduce((s, d) => s + d.json.length, 0)
  if (total < OFF_THREAD_MIN_BYTES) return buildDataImage(docs, opts)
  // The worker runs the same module file: .ts under tsx (tests), .js when built.
  const self = new URL(import.meta.url)
  let worker: Worker
  if (self.pathname.endsWith('.ts')) {
    // Running from TypeScript sources (tests under tsx): a worker's own entry is loaded before
    // an inherited --import takes effect, so the worker registers tsx and then imports it.
    const tsx = import.meta.resolve('tsx/esm/api')
    const entry = new URL('./data-image-worker.ts', self).href
    worker = new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`, { eval: true })
  } else {
    worker = new Worker(new URL('./data-image-worker.js', self))
  }
  try {
    const reply = await new Promise<{ ok: true, buffer: ArrayBuffer, base: number, end: number, root: number } | { ok: false, code?: ErrorCode, message: string, details?: Record<string, unknown> }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`data image worker exited with code ${code}`)))
      // A document that owns its whole buffer is moved to the worker, not copied: it is not
      // needed here afterwards (a bundle's large data lives in the image once it serves, and a
      // bundle whose build fails is dropped), and the worker's end frees it. Views into a
      // larger buffer (a Buffer pool) are sent as copies of just their bytes.
      const transfer: ArrayBuffer[] = []
      const sent = docs.map((d) => {
        const owns = d.json.byteOffset === 0 && d.json.byteLength === d.json.buffer.byteLength && d.json.buffer instanceof ArrayBuffer
        if (owns) transfer.push(d.json.buffer as ArrayBuffer)
        return { ...d, json: owns ? d.json : new Uint8Array(d.json) }
      })
      worker.postMessage({ docs: sent, opts }, transfer)
    })
    if (!reply.ok) {
      if (reply.code !== undefined) throw new BundleError(reply.code, reply.message, reply.details ?? {})
      throw new Error(reply.message)
    }
    const image = await DataImage.fromBuffer(reply.buffer, reply.base, reply.end, reply.root, opts.maxPages)
    // Hand the buffer back so that it is freed with the worker now rather than whenever this
    // thread's GC gets to it (it is as large as the image).
    worker.postMessage(null, [reply.buffer])
    return image
  } finally {
    await worker.terminate()
  }
}

/** The base address for an image installed into modules whose heap pointers (after instantiation) are `heapPtrs`. */
export function imageBase (heapPtrs: number[]): number {
  // One page of headroom above the highest heap pointer, page-aligned.
  return (Math.ceil(Math.max(0, ...heapPtrs) / PAGE) + 1) * PAGE
}
