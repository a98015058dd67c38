/**
 * A data document in OPA's wasm value layout (built by data-loader.ts): installed into policy
 * instances by copying its segment, and read back for the Data API (as exact JSON or as
 * JavaScript values) by walking it.
 */
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm'
import { compareUtf8, ExactNumber } from '../canonical-json.js'
import { needsExact } from './builtins/exact-json.js'
import { pathIndex } from './bundle.js'
import { MAX_DATA_DEPTH, opaStringHash, PAGE, REPR_INT, T_ARRAY, T_BOOLEAN, T_NULL, T_NUMBER, T_OBJECT, T_STRING, type Store } from './data-layout.js'

// ignoreBOM: a leading U+FEFF is text (a key "\ufeffblocked" is not "blocked"), as in Go
const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
const encoder = new TextEncoder()

/**
 * A parsed data document in wasm layout: the segment [base, end) of `memory` holds every value,
 * `root` is the address of the merged `data` object. Installed into instances by copying the
 * segment; read back for the Data API by walking it.
 */
export class DataImage {
  /** Memory that holds the segment now (the build memory until an instance adopts it). */
  #memory: Store
  #adopted = false

  constructor (memory: Store, readonly base: number, readonly end: number, readonly root: number) {
    this.#memory = memory
  }

  /** Bytes of the data segment. */
  get size (): number { return this.end - this.base }

  /** A copy of the segment (for handing an image built on a worker thread to the main thread). */
  segment (): ArrayBuffer {
    return this.#memory.buffer.slice(this.base, this.end)
  }

  /** The whole buffer the image was written into (addresses are offsets in it): to transfer from a worker thread. */
  buffer (): ArrayBuffer {
    return this.#memory.buffer
  }

  /**
   * The image in `buffer` (built on a worker thread, addresses are offsets), copied into a wasm
   * memory in slices, yielding to the event loop between them so that decisions keep flowing.
   */
  static async fromBuffer (buffer: ArrayBuffer, base: number, end: number, root: number, maxPages: number): Promise<DataImage> {
    const pages = Math.ceil(end / PAGE) + 1
    const memory = new WebAssembly.Memory({ initial: pages, maximum: Math.max(pages, maxPages) })
    const SLICE = 512 << 10
    for (let at = base; at < end; at += SLICE) {
      new Uint8Array(memory.buffer).set(new Uint8Array(buffer, at, Math.min(SLICE, end - at)), at)
      await new Promise((resolve) => setImmediate(resolve))
    }
    return new DataImage(memory, base, end, root)
  }

  /**
   * A memory for a new instance with the data segment in place. The first instance adopts the
   * build memory itself (no copy); later ones (other modules, or a replacement after a trap)
   * get a copy of the segment from the memory that holds it now.
   */
  memoryFor (descriptor: WebAssembly.MemoryDescriptor): WebAssembly.Memory {
    // A page of room above the data; opa_malloc grows the memory when evaluation needs more.
    const maximum = Math.max(descriptor.maximum ?? 65536, Math.ceil(this.end / PAGE))
    const initial = Math.min(maximum, Math.max(descriptor.initial, Math.ceil(this.end / PAGE) + 1))
    if (!this.#adopted && this.#memory instanceof WebAssembly.Memory && this.#memory.buffer.byteLength >= this.end) {
      this.#adopted = true
      const have = this.#memory.buffer.byteLength / PAGE
      if (have < initial) this.#memory.grow(initial - have)
      return this.#memory
    }
    const memory = new WebAssembly.Memory({ initial, maximum })
    new Uint8Array(memory.buffer).set(new Uint8Array(this.#memory.buffer, this.base, this.size), this.base)
    return memory
  }

  /**
   * Points an instance made over `memoryFor`'s memory at the data: the heap continues above the
   * segment, and evaluation reads `data` at the image's root (opa-wasm LoadedPolicy fields, as
   * its own setData sets them). The instance's memory becomes the one later copies come from,
   * so a replaced instance's memory can be freed.
   */
  attach (policy: LoadedPolicy): void {
    const p = policy as unknown as { wasmInstance: WebAssembly.Instance, mem: WebAssembly.Memory, dataAddr: number, dataHeapPtr: number, baseHeapPtr: number }
    const exports = p.wasmInstance.exports as unknown as { opa_heap_ptr_get: () => number, opa_heap_ptr_set: (p: number) => void }
    if (exports.opa_heap_ptr_get() > this.base) throw new Error(`module heap (${exports.opa_heap_ptr_get()}) reaches into the data image at ${this.base}`)
    const end = (this.end + 7) & ~7
    exports.opa_heap_ptr_set(end)
    p.dataAddr = this.root
    p.dataHeapPtr = end
    this.#memory = p.mem
  }

  /** Reads the value at `path` under `data` as a JSON value (keys sorted); undefined when absent. A segment of an array is its index. */
  read (path: string[]): unknown {
    const addr = this.#find(path)
    if (addr === 0) return undefined
    return toJs(new DataView(this.#memory.buffer), new Uint8Array(this.#memory.buffer), addr, 0)
  }

  /**
   * The value at `path` as JSON text, written straight from the layout (numbers keep their exact
   * text; no JavaScript object graph); undefined when absent. Lets a new snapshot take a
   * bundle's large data from the current one after its raw bytes were released.
   */
  jsonAt (path: string[]): Uint8Array | undefined {
    const addr = this.#find(path)
    if (addr === 0) return undefined
    const out = new JsonOut()
    writeJson(new DataView(this.#memory.buffer), new Uint8Array(this.#memory.buffer), addr, out, 0)
    return out.bytes()
  }

  /**
   * True when `path` is absent for certain: the walk down it stops at an array (an index out of
   * range or not a number) or at a scalar, beneath which no rule can be (OPA refuses bundles
   * whose rules and data share a path). A missing object key is not certain: an uncompiled rule
   * may be there.
   */
  absentBelowLeaf (path: string[]): boolean {
    return this.#walk(path) === 0
  }

  #find (path: string[]): number {
    const addr = this.#walk(path)
    return addr > 0 ? addr : 0
  }

  /**
   * The address of the value at `path`; 0 when the walk stops at an array (index not a number or
   * out of range) or at a scalar; -1 when an object does not have the key.
   */
  #walk (path: string[]): number {
    const view = new DataView(this.#memory.buffer)
    const u8 = new Uint8Array(this.#memory.buffer)
    let addr = this.root
    for (const key of path) {
      if (u8[addr] === T_ARRAY) {
        addr = arrayElement(view, addr, key)
        if (addr === 0) return 0
        continue
      }
      if (u8[addr] !== T_OBJECT) return 0
      const found = objectGet(view, u8, addr, encoder.encode(key))
      if (found === 0) return -1
      addr = found
    }
    return addr
  }
}

/**
 * The address of the element of the array at `arr` that path segment `key` names, as OPA reads
 * `data.list[1]` (policy/bundle.ts pathIndex); 0 when `key` is not an index or out of range.
 */
function arrayElement (view: DataView, arr: number, key: string): number {
  const i = pathIndex(key)
  if (i === undefined || i < 0 || i >= view.getUint32(arr + 8, true)) return 0
  return view.getUint32(view.getUint32(arr + 4, true) + i * 8 + 4, true)
}

/** A growable byte buffer for JSON text. */
class JsonOut {
  #buf = new Uint8Array(1 << 16)
  #n = 0
  #room (k: number): void {
    if (this.#n + k <= this.#buf.length) return
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#n + k))
    next.set(this.#buf.subarray(0, this.#n))
    this.#buf = next
  }

  byte (c: number): void { this.#room(1); this.#buf[this.#n++] = c }
  ascii (s: string): void { this.#room(s.length); for (let i = 0; i < s.length; i++) this.#buf[this.#n++] = s.charCodeAt(i) }
  /** A JSON string of UTF-8 bytes: quotes, backslashes and control characters escaped (RFC 8259 §7). */
  string (u8: Uint8Array, start: number, end: number): void {
    this.#room((end - start) * 6 + 2)
    const b = this.#buf
    b[this.#n++] = 0x22
    for (let i = start; i < end; i++) {
      const c = u8[i] as number
      if (c === 0x22 || c === 0x5c) { b[this.#n++] = 0x5c; b[this.#n++] = c } else if (c < 0x20) {
        const hex = c.toString(16).padStart(4, '0')
        b[this.#n++] = 0x5c; b[this.#n++] = 0x75
        for (let j = 0; j < 4; j++) b[this.#n++] = hex.charCodeAt(j)
      } else b[this.#n++] = c
    }
    b[this.#n++] = 0x22
  }

  raw (u8: Uint8Array, start: number, end: number): void { this.#room(end - start); this.#buf.set(u8.subarray(start, end), this.#n); this.#n += end - start }
  bytes (): Uint8Array { return this.#buf.slice(0, this.#n) }
}

function writeJson (view: DataView, u8: Uint8Array, addr: number, out: JsonOut, depth: number): void {
  if (depth > MAX_DATA_DEPTH + 1) throw new RangeError('data nesting too deep')
  switch (u8[addr]) {
    case T_NULL: out.ascii('null'); return
    case T_BOOLEAN: out.ascii(u8[addr + 1] !== 0 ? 'true' : 'false'); return
    case T_NUMBER: {
      if (u8[addr + 1] === REPR_INT) { out.ascii(view.getBigInt64(addr + 8, true).toString()); return }
      const s = view.getUint32(addr + 8, true)
      out.raw(u8, s, s + view.getUint32(addr + 12, true))
      return
    }
    case T_STRING: {
      const s = view.getUint32(addr + 8, true)
      out.string(u8, s, s + view.getUint32(addr + 4, true))
      return
    }
    case T_ARRAY: {
      const elems = view.getUint32(addr + 4, true)
      const len = view.getUint32(addr + 8, true)
      out.byte(0x5b)
      for (let i = 0; i < len; i++) {
        if (i > 0) out.byte(0x2c)
        writeJson(view, u8, view.getUint32(elems + i * 8 + 4, true), out, depth + 1)
      }
      out.byte(0x5d)
      return
    }
    case T_OBJECT: {
      const buckets = view.getUint32(addr + 4, true)
      const n = view.getUint32(addr + 8, true)
      let first = true
      out.byte(0x7b)
      for (let i = 0; i < n; i++) {
        for (let e = view.getUint32(buckets + i * 4, true); e !== 0; e = view.getUint32(e + 8, true)) {
          if (!first) out.byte(0x2c)
          first = false
          const k = view.getUint32(e, true)
          const s = view.getUint32(k + 8, true)
          out.string(u8, s, s + view.getUint32(k + 4, true))
          out.byte(0x3a)
          writeJson(view, u8, view.getUint32(e + 4, true), out, depth + 1)
        }
      }
      out.byte(0x7d)
      return
    }
    default: throw new Error(`unexpected value type ${String(u8[addr])} at ${addr}`)
  }
}

function objectGet (view: DataView, u8: Uint8Array, obj: number, key: Uint8Array): number {
  const buckets = view.getUint32(obj + 4, true)
  const n = view.getUint32(obj + 8, true)
  let elem = view.getUint32(buckets + (opaStringHash(key, 0, key.length) % n) * 4, true)
  while (elem !== 0) {
    const k = view.getUint32(elem, true)
    if (u8[k] === T_STRING) {
      const len = view.getUint32(k + 4, true)
      const chars = view.getUint32(k + 8, true)
      if (len === key.length && Buffer.compare(u8.subarray(chars, chars + len), key) === 0) return view.getUint32(elem + 4, true)
    }
    elem = view.getUint32(elem + 8, true)
  }
  return 0
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

function toJs (view: DataView, u8: Uint8Array, addr: number, depth: number): unknown {
  if (depth > MAX_DATA_DEPTH + 1) throw new RangeError('data nesting too deep')
  switch (u8[addr]) {
    case T_NULL: return null
    case T_BOOLEAN: return u8[addr + 1] !== 0
    case T_NUMBER: {
      // a number a double cannot hold, or written as a float (100.0, 1e3), keeps its text: OPA
      // answers data with the digits it was written with
      if (u8[addr + 1] === REPR_INT) {
        const v = view.getBigInt64(addr + 8, true)
        return v > MAX_SAFE || v < -MAX_SAFE ? new ExactNumber(v.toString()) : Number(v)
      }
      const s = view.getUint32(addr + 8, true)
      const text = decoder.decode(u8.subarray(s, s + view.getUint32(addr + 12, true)))
      return needsExact(text) ? new ExactNumber(text) : Number(text)
    }
    case T_STRING: {
      const s = view.getUint32(addr + 8, true)
      return decoder.decode(u8.subarray(s, s + view.getUint32(addr + 4, true)))
    }
    case T_ARRAY: {
      const elems = view.getUint32(addr + 4, true)
      const len = view.getUint32(addr + 8, true)
      const out: unknown[] = new Array(len)
      for (let i = 0; i < len; i++) out[i] = toJs(view, u8, view.getUint32(elems + i * 8 + 4, true), depth + 1)
      return out
    }
    case T_OBJECT: {
      const buckets = view.getUint32(addr + 4, true)
      const n = view.getUint32(addr + 8, true)
      const entries: Array<[string, unknown]> = []
      for (let i = 0; i < n; i++) {
        for (let e = view.getUint32(buckets + i * 4, true); e !== 0; e = view.getUint32(e + 8, true)) {
          const k = view.getUint32(e, true)
          const s = view.getUint32(k + 8, true)
          entries.push([decoder.decode(u8.subarray(s, s + view.getUint32(k + 4, true))), toJs(view, u8, view.getUint32(e + 4, true), depth + 1)])
        }
      }
      entries.sort((a, b) => compareUtf8(a[0], b[0]))
      return Object.fromEntries(entries)
    }
    default: throw new Error(`unexpected value type ${String(u8[addr])} at ${addr}`)
  }
}
