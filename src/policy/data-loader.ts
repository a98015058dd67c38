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
 * into a linear memory at a fixed base address (data-image-writer.ts: final bucket counts,
 * chains sorted by key, no malloc headers, short scalars stored once). The result is a
 * DataImage: a contiguous segment [base, end) holding the whole merged data document, which is
 * copied into each instance (as OPA's Go SDK does with its first VM's data segment,
 * internal/wasm/sdk/internal/wasm/pool.go).
 *
 * The same pass (data-place.ts) enforces what the bundle loader enforces on small documents
 * (strict JSON, valid UTF-8, data under the bundle's roots, no conflicting documents) and a
 * nesting limit that keeps hostile data from exhausting the wasm stack during evaluation.
 *
 * This file is the orchestration: documents in order into one image, errors named after the
 * file, the worker thread, the image's base address.
 */
import { isUtf8 } from 'node:buffer'
import { startWorker } from '../worker-thread.js'
import { BundleError, type ErrorCode } from '../errors.js'
import { DataImage } from './data-image.js'
import { PAGE } from './data-layout.js'
import { closeOpen, ImageWriter, OpenObject } from './data-image-writer.js'
import { DataError, placeDocument, type DataDocument } from './data-place.js'

export type { DataDocument } from './data-place.js'

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
 * The process group's build slot, when this process is one worker of several
 * (server/workers.ts): a large image is built only while holding it, so that the workers of a
 * group build one after another instead of all at once. Unset (one process): no waiting.
 */
let buildSlot: (() => Promise<() => void>) | undefined

/** Installs the group's build slot (cli/serve.ts, in a worker, before any bundle loads). */
export function setBuildSlot (slot: (() => Promise<() => void>) | undefined): void {
  buildSlot = slot
}

/**
 * buildDataImage on a worker thread, so that the event loop keeps answering decisions while
 * tens of megabytes are parsed; only the final copy of the segment into a memory happens here.
 * Small data is built in place. Rejects with the same BundleError codes.
 */
export async function buildDataImageOffThread (docs: DataDocument[], opts: BuildOptions): Promise<DataImage> {
  const total = docs.reduce((s, d) => s + d.json.length, 0)
  if (total < OFF_THREAD_MIN_BYTES) return buildDataImage(docs, opts)
  const release = buildSlot === undefined ? undefined : await buildSlot()
  try {
    return await buildOffThread(docs, opts)
  } finally {
    release?.()
  }
}

async function buildOffThread (docs: DataDocument[], opts: BuildOptions): Promise<DataImage> {
  // The worker runs the same module file: .ts under tsx (tests), .js when built.
  const worker = startWorker(import.meta.url, 'data-image-worker')
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
