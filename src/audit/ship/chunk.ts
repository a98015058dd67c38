/**
 * Upload bodies as OPA's decision-log protocol wants them: a gzip-compressed JSON array of
 * events, each body at most `upload_size_limit_bytes` compressed. Events are the stored record
 * bytes (JSON object text), joined into an array without re-encoding.
 *
 * The compressed size of a set of events is only known by compressing it, so a chunk is grown
 * to an uncompressed budget learnt from the ratio seen so far (as OPA's chunk encoder adapts its
 * own), compressed, and shrunk in proportion to the overshoot until it fits.
 *
 * An event that does not fit the limit even alone is where OPA differs: OPA drops it
 * (encoder.go: "exceeded the upload_size_limit_bytes", counted in decision_logs_encoding_failure).
 * A compliance log must not lose an event silently, so it is sent in a chunk of its own, larger
 * than the limit, and counted (`oversized`); see docs/audit.md.
 */
import { promisify } from 'node:util'
import { gzip as gzipCb } from 'node:zlib'

const gzip = promisify(gzipCb)

export interface ShipEvent {
  seq: number
  bytes: Buffer
}

export interface Chunk {
  /** The events in this body, in sequence order. */
  events: ShipEvent[]
  /** gzip of `[e1,e2,…]`. */
  body: Buffer
  /** Uncompressed size of the JSON array. */
  rawBytes: number
  /** One event alone larger than the limit (sent anyway). */
  oversized: boolean
}

function arrayOf (events: ShipEvent[]): Buffer {
  const parts: Buffer[] = [Buffer.from('[')]
  events.forEach((e, i) => { if (i > 0) parts.push(Buffer.from(',')); parts.push(e.bytes) })
  parts.push(Buffer.from(']'))
  return Buffer.concat(parts)
}

/** Largest ratio uncompressed/compressed trusted for the next budget (JSON rarely compresses past this). */
const MAX_RATIO = 16

/**
 * Cuts a sequence of events into gzip bodies under a size limit. Feed events with `take()`
 * (the chunker pulls as many as its budget allows), call `next()` for the next body.
 */
export class ChunkEncoder {
  private ratio = 1
  constructor (readonly limitBytes: number) {}

  /** Uncompressed bytes worth gathering before the next compression attempt. */
  budget (): number {
    return Math.max(1, Math.floor(this.limitBytes * this.ratio * 0.9))
  }

  /**
   * The largest prefix of `events` (non-empty) whose gzip body fits the limit, or the first
   * event alone when even that does not fit. The caller keeps the rest for the next chunk.
   */
  async encode (events: ShipEvent[]): Promise<Chunk> {
    if (events.length === 0) throw new Error('ChunkEncoder.encode: no events')
    let n = events.length
    // Each pass removes at least one event: bounded by events.length compressions (in practice one or two).
    for (;;) {
      const slice = events.slice(0, n)
      const raw = arrayOf(slice)
      const body = await gzip(raw)
      if (body.length <= this.limitBytes || n === 1) {
        this.learn(raw.length, body.length)
        return { events: slice, body, rawBytes: raw.length, oversized: body.length > this.limitBytes }
      }
      this.learn(raw.length, body.length)
      // Shrink in proportion to the overshoot, always by at least one event.
      n = Math.max(1, Math.min(n - 1, Math.floor(n * (this.limitBytes / body.length) * 0.95)))
    }
  }

  private learn (raw: number, compressed: number): void {
    if (compressed > 0) this.ratio = Math.min(MAX_RATIO, Math.max(1, raw / compressed))
  }
}
