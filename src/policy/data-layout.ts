/**
 * OPA's wasm value layout (OPA `wasm/src/value.h`, ABI 1.x, wasm32) as data-loader.ts writes it
 * and data-image.ts reads it: the type tags, number representations, the string hash, and the
 * linear memory an image lives in.
 */
import { endianness } from 'node:os'

if (endianness() !== 'LE') throw new Error('the data image is written and read through native-endian views; this platform is big-endian')

/** Deepest nesting of arrays and objects accepted in data (wasm evaluation recurses on depth). */
export const MAX_DATA_DEPTH = 512

export const PAGE = 65536
export const T_NULL = 1
export const T_BOOLEAN = 2
export const T_NUMBER = 3
export const T_STRING = 4
export const T_ARRAY = 5
export const T_OBJECT = 6
export const REPR_INT = 1
export const REPR_REF = 2

/** OPA wasm/src/value.c fnv1a32 (multiply, then xor) over a byte range. */
export function opaStringHash (bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5
  for (let i = start; i < end; i++) {
    h = Math.imul(h, 0x01000193) >>> 0
    h = (h ^ (bytes[i] as number)) >>> 0
  }
  return h
}

/** Linear memory an image is written into: a wasm memory, or (on a worker thread) a plain buffer that can be transferred. */
export interface Store { readonly buffer: ArrayBuffer, grow: (pages: number) => unknown }

export class PlainStore implements Store {
  buffer: ArrayBuffer
  constructor (pages: number) { this.buffer = new ArrayBuffer(pages * PAGE) }
  grow (pages: number): void {
    const next = new ArrayBuffer(this.buffer.byteLength + pages * PAGE)
    new Uint8Array(next).set(new Uint8Array(this.buffer))
    this.buffer = next
  }
}
