/**
 * placeDocument: one data document parsed from its exact bytes and placed at its path in the
 * data tree being written (data-image-writer.ts), for data-loader.ts.
 *
 * The same pass enforces what the bundle loader enforces on small documents (strict JSON,
 * valid UTF-8 text — the bytes themselves are checked by the caller —, data under the bundle's
 * roots, no conflicting documents) and a nesting limit that keeps hostile data from exhausting
 * the wasm stack during evaluation.
 */
import { isAncestorOfSegments, rootOwnsSegments, rootSegments } from './bundle.js'
import { MAX_DATA_DEPTH } from './data-layout.js'
import { OpenObject, type ImageWriter } from './data-image-writer.js'

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

/** A document that cannot be placed: the byte offset, and the path for conflicts and roots. */
export class DataError extends Error {
  constructor (readonly offset: number, message: string, readonly code: 'PORTCULLIS_BUNDLE_DATA_INVALID' | 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' = 'PORTCULLIS_BUNDLE_DATA_INVALID', readonly path?: string) {
    super(message)
  }
}

// ignoreBOM: a leading U+FEFF is text (a key "\ufeffblocked" is not "blocked"), as in Go
const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
const encoder = new TextEncoder()

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

interface Frame {
  kind: 'array' | 'object'
  values?: number[]
  /** Members of an object written when it closes: (key address, key hash, value address) each. */
  members?: number[]
  /** An object that merges into a place another document already filled (see OpenObject). */
  open?: OpenObject
  /** Address of the key waiting for its value, its OPA hash, and its text where paths or merging need it. */
  key: number
  keyHash: number
  keyText?: string
  /** Path under `data`, tracked while roots must still be checked beneath it. */
  path?: string[]
}

/**
 * Parses `doc` (iteratively: depth is bounded by MAX_DATA_DEPTH, not by the JS stack) and
 * places it into the open tree under `root`. A document's top-level object always merges into
 * its place; deeper objects merge where an earlier document already put an object (deep merge,
 * as the bundle loader merges small documents); any other collision is a conflict.
 *
 * A key repeated within one object keeps its last value, as JSON.parse and OPA (Go's decoder)
 * keep it: a repeated scalar or a new object replaces the earlier one (setOpen; ImageWriter.object
 * keeps the last of equal keys). One case is refused instead (PORTCULLIS_BUNDLE_DATA_INVALID): a
 * key repeated with an object value where an earlier document already put an object. The first
 * occurrence has then been merged into that object member by member (streamed, nothing kept
 * to take back), so last-wins would mean undoing a merge in a tree other documents share;
 * merging both occurrences instead (what this did) reads the document differently from OPA.
 * Signed bundles never get here with a repeated key (canonical-hash.ts refuses them).
 */
export function placeDocument (w: ImageWriter, root: OpenObject, doc: DataDocument, docIndex: number): void {
  const b = new Uint8Array(doc.json.buffer, doc.json.byteOffset, doc.json.byteLength)
  const n = b.length
  let i = 0
  const where = (p: string[]): string => '/' + p.join('/')
  // segment by segment: a key holding `/` is one segment, never a path into a root
  const roots = doc.roots?.map(rootSegments)
  const inRoots = (p: string[]): boolean => roots === undefined || roots.some((r) => rootOwnsSegments(r, p))
  const aboveRoots = (p: string[]): boolean => roots !== undefined && roots.some((r) => isAncestorOfSegments(p, r))
  const fail = (what: string): never => { throw new DataError(i, `${what} at byte ${i}`) }
  const conflict = (p: string[]): never => { throw new DataError(i, `data at ${where(p)} conflicts with another data file`, 'PORTCULLIS_BUNDLE_DATA_INVALID', p.join('/')) }
  const repeated = (p: string[]): never => {
    throw new DataError(i, `key ${JSON.stringify(p[p.length - 1])} is repeated in one object at ${where(p.slice(0, -1))} where another data file already put an object: a repeated key cannot replace a merge, refused`, 'PORTCULLIS_BUNDLE_DATA_INVALID', p.join('/'))
  }
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
    (top.members as number[]).push(top.key, top.keyHash, value)
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
    top.keyHash = w.lastStringHash >= 0 ? w.lastStringHash : w.stringHash(top.key)
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
      // counted from data's root, as reads of the image count it: a document placed n
      // directories down may nest n levels less (it was readable back only up to that)
      if (stack.length + doc.path.length >= MAX_DATA_DEPTH) fail(`data nests deeper than ${MAX_DATA_DEPTH} levels from data's root`)
      const isObj = c === 0x7b
      if (!isObj && top === undefined && lastSeg === undefined) fail('the root data document must be an object')
      const frame: Frame = { kind: isObj ? 'object' : 'array', key: 0, keyHash: 0, path: checkPlacement(p, isObj) }
      if (isObj) {
        const held = top?.open?.members.get(top.keyText as string)
        if (top === undefined) frame.open = lastSeg === undefined ? root : openAt(parent, lastSeg, segment(lastSeg), doc.path)
        else if (held !== undefined && held.doc !== docIndex) {
          // An earlier document holds this place: this object merges into it, member by member.
          // If the key comes again in this object, JSON's last-wins would have to take back
          // what the first occurrence merged (snapshot and undo in the shared tree): refused.
          if (held.mergedBy === docIndex) repeated(p ?? [top.keyText as string])
          frame.open = openAt(top.open as OpenObject, top.keyText as string, top.key, p ?? [top.keyText as string])
          held.mergedBy = docIndex
        } else frame.members = []
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
