/**
 * The image writer: OPA's value structures (OPA `wasm/src/value.h`, ABI 1.x, wasm32) written
 * straight into a linear memory at a fixed base address, for data-loader.ts.
 *
 * Objects get their final bucket count at once (OPA_OBJECT_MIN_BUCKETS doubled until
 * len <= n * OPA_OBJECT_LOAD_FACTOR, as repeated `opa_object_insert` leaves it) with each
 * bucket chain sorted by key, exactly as `__opa_object_insert_elem` orders it; keys are hashed
 * with OPA's fnv1a32; values carry no malloc headers (data values are read-only during
 * evaluation and never freed: OPA resets the heap pointer above them for each evaluation);
 * repeated short strings and numbers (object keys, role names) are stored once.
 */
import { opaStringHash, PAGE, PlainStore, REPR_INT, REPR_REF, T_ARRAY, T_BOOLEAN, T_NULL, T_NUMBER, T_OBJECT, T_STRING, type Store } from './data-layout.js'

// ignoreBOM: a leading U+FEFF is text (a key "\ufeffblocked" is not "blocked"), as in Go
const decoder = new TextDecoder('utf-8', { ignoreBOM: true })

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

/** An object member waiting to be written: key bytes and the address of its value (or an open object). */
export interface Member {
  key: number
  value: number | OpenObject
  /** The document that put the value here. */
  doc?: number
  /** The last document whose object merged into this member's object (data-place.ts: a key repeated there is refused). */
  mergedBy?: number
}
/** An object kept open so that later documents can merge into it (a document's path passes through it). */
export class OpenObject {
  readonly members = new Map<string, Member>()
}

/** Writes OPA values into a growable linear memory from `base` upward. */
export class ImageWriter {
  readonly memory: Store
  #u8: Uint8Array
  #dv: DataView
  /** Word view for the 4-aligned struct fields (wasm memory is little-endian, as is every platform Node runs on). */
  #u32: Uint32Array
  #ptr: number
  readonly #maxPages: number
  /** Direct-mapped cache of stored scalars by hash: a later one with the same slot replaces it. */
  readonly #interned = new Uint32Array(INTERN_MASK + 1)
  /** The full hash of each slot's scalar: a different one is refused without reading the image (a cache miss in a large one). */
  readonly #internedHash = new Uint32Array(INTERN_MASK + 1)
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
    const slot = hash & INTERN_MASK
    const addr = this.#interned[slot] as number
    if (addr === 0 || this.#internedHash[slot] !== hash || this.#u8[addr] !== type) return 0
    const len = this.#u32[(addr + (type === T_STRING ? 4 : 12)) >>> 2] as number
    if (len !== end - start) return 0
    const chars = this.#u32[(addr + 8) >>> 2] as number
    const u8 = this.#u8
    for (let i = 0; i < len; i++) if (u8[chars + i] !== b[start + i]) return 0
    return addr
  }

  #remember (hash: number, addr: number): void {
    this.#interned[hash & INTERN_MASK] = addr
    this.#internedHash[hash & INTERN_MASK] = hash
  }

  /** Copies b[start, end) to `at` (short runs byte by byte: cheaper than a subarray and set). */
  #copy (b: Uint8Array, start: number, end: number, at: number): void {
    if (end - start > 32) { this.#u8.set(b.subarray(start, end), at); return }
    const u8 = this.#u8
    for (let i = start; i < end; i++) u8[at++] = b[i] as number
  }

  /** The OPA hash of the string the last string() call stored or found, where it computed one (short strings), else -1. */
  lastStringHash = -1

  /** An OPA string of the UTF-8 bytes b[start, end); short ones are stored once. */
  string (b: Uint8Array, start = 0, end = b.length): number {
    const len = end - start
    const hash = len <= INTERN_MAX_BYTES ? opaStringHash(b, start, end) : -1
    this.lastStringHash = hash
    if (hash >= 0) {
      const hit = this.#lookup(T_STRING, hash, b, start, end)
      if (hit !== 0) return hit
    }
    const chars = this.alloc(len, 1)
    this.#copy(b, start, end, chars)
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
    this.#copy(b, start, end, chars)
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
    const total = members.length / 3
    let n = bucketCount(total)
    let len = this.#arrange(members, total, n)
    if (len !== total) { n = bucketCount(len); len = this.#arrange(members, total, n) }
    const buckets = this.alloc(n * 4)
    const elems = this.alloc(len * 12)
    const u32 = this.#u32
    const order = this.#order
    const ends = this.#ends
    const dropped = this.#dropped
    let e = elems
    let k = 0
    for (let b = 0; b < n; b++) {
      const end = ends[b] as number
      let last = 0
      u32[(buckets >>> 2) + b] = 0
      for (; k < end; k++) {
        if (dropped[k] === 1) continue
        const m = (order[k] as number) * 3
        if (last === 0) u32[(buckets >>> 2) + b] = e
        else u32[(last + 8) >>> 2] = e
        u32[e >>> 2] = members[m] as number
        u32[(e + 4) >>> 2] = members[m + 2] as number
        u32[(e + 8) >>> 2] = 0
        last = e
        e += 12
      }
    }
    const addr = this.alloc(16)
    this.#u8[addr] = T_OBJECT
    this.#u32[(addr + 4) >>> 2] = buckets
    this.#u32[(addr + 8) >>> 2] = n
    this.#u32[(addr + 12) >>> 2] = len
    return addr
  }

  // Scratch of object(), reused (object() runs to its end before the next one starts).
  /** Member indices grouped by bucket (a counting sort), each bucket's run sorted by key. */
  #order = new Uint32Array(64)
  /** 1 where order[k] is a key repeated later in its run: the later member is kept. */
  #dropped = new Uint8Array(64)
  /** End of each bucket's run in #order. */
  #ends = new Uint32Array(64)

  /**
   * Arranges the `total` members in `n` buckets (hash mod n, n a power of two) into #order: by
   * bucket, then by key within a bucket (a stable insertion sort: runs are short), marking in
   * #dropped every member whose key comes again later in its run. Returns the members kept.
   */
  #arrange (members: number[], total: number, n: number): number {
    if (this.#order.length < total) { this.#order = new Uint32Array(total * 2); this.#dropped = new Uint8Array(total * 2) }
    if (this.#ends.length < n) this.#ends = new Uint32Array(n * 2)
    const order = this.#order
    const dropped = this.#dropped
    const ends = this.#ends
    const mask = n - 1
    ends.fill(0, 0, n)
    for (let j = 0; j < total; j++) { const b = (members[j * 3 + 1] as number) & mask; ends[b] = (ends[b] as number) + 1 }
    // ends[b] = start of bucket b, for the placement below; afterwards it is the end of bucket b
    let sum = 0
    for (let b = 0; b < n; b++) { const c = ends[b] as number; ends[b] = sum; sum += c }
    for (let j = 0; j < total; j++) { const b = (members[j * 3 + 1] as number) & mask; const at = ends[b] as number; order[at] = j; ends[b] = at + 1 }
    dropped.fill(0, 0, total)
    let kept = total
    let start = 0
    for (let b = 0; b < n; b++) {
      const end = ends[b] as number
      if (end - start > 1) {
        for (let x = start + 1; x < end; x++) {
          const v = order[x] as number
          let y = x - 1
          while (y >= start && this.#compareStrings(members[(order[y] as number) * 3] as number, members[v * 3] as number) > 0) { order[y + 1] = order[y] as number; y-- }
          order[y + 1] = v
        }
        for (let x = start; x + 1 < end; x++) {
          if (this.#compareStrings(members[(order[x] as number) * 3] as number, members[(order[x + 1] as number) * 3] as number) === 0) { dropped[x] = 1; kept-- }
        }
      }
      start = end
    }
    return kept
  }
}

/** Writes the open objects (the merge skeleton) bottom-up; returns the root's address. */
export function closeOpen (w: ImageWriter, o: OpenObject): number {
  const members: number[] = []
  for (const m of o.members.values()) members.push(m.key, w.stringHash(m.key), m.value instanceof OpenObject ? closeOpen(w, m.value) : m.value)
  return w.object(members)
}
