/**
 * Cache of verified credentials (lru-cache). The key is the SHA-256 of the complete credential
 * (the whole token, the whole DER chain) plus the plugin and source that read it: never a
 * signature or a kid alone. Each entry lives no longer than its credential (and max_ttl), and
 * the verifier empties the cache whenever a trust bundle changes.
 *
 * Memory is bounded twice: by entries (max_entries) and by the estimated bytes of the cached
 * documents (max_bytes; lru-cache maxSize with entryBytes() as the size of an entry), so a
 * storm of credentials with large claims cannot grow the cache past the bound.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { IdentityDocument } from './document.js'

export interface CacheStats {
  size: number
  hits: number
  misses: number
  clears: number
}

/** SHA-256 over a label and every part of a credential, each length-prefixed so parts cannot run together. */
export function credentialKey (label: string, parts: readonly Uint8Array[]): string {
  const h = createHash('sha256')
  const len = Buffer.alloc(4)
  for (const p of [Buffer.from(label, 'utf8'), ...parts]) {
    len.writeUInt32BE(p.byteLength)
    h.update(len)
    h.update(p)
  }
  return h.digest('hex')
}

/**
 * Estimated heap bytes of one cache entry: 1.5 × the document's JSON length plus the key and
 * lru-cache's per-entry slots. Measured with --expose-gc on Node 20 for an X.509-SVID document
 * (794 bytes of JSON): about 1,190 bytes of heap per entry, estimated here at 1,319, so the
 * bound errs on the safe side (docs/identity.md).
 */
export function entryBytes (doc: IdentityDocument): number {
  return Math.ceil(1.5 * JSON.stringify(doc).length) + ENTRY_OVERHEAD_BYTES
}
/** 64-character hex key, its map slot, and lru-cache's per-index arrays (TTL, start, size, links). */
const ENTRY_OVERHEAD_BYTES = 128

export interface CacheCounters {
  hit: () => void
  miss: () => void
}

export class VerifiedCredentialCache {
  readonly #lru: LRUCache<string, IdentityDocument>
  readonly #now: () => Date
  readonly #maxTtlMs: number
  readonly #counters: CacheCounters | undefined
  #hits = 0
  #misses = 0
  #clears = 0

  /** @param opts.maxBytes bound on the summed entryBytes() of the entries (default: none but maxEntries). */
  constructor (opts: { maxEntries: number, maxBytes?: number, maxTtlSeconds: number, now: () => Date, counters?: CacheCounters }) {
    this.#now = opts.now
    this.#maxTtlMs = opts.maxTtlSeconds * 1000
    this.#counters = opts.counters
    // perf: lru-cache measures TTLs on our clock, so tests move time by moving `now`.
    this.#lru = new LRUCache<string, IdentityDocument>({
      max: opts.maxEntries,
      ...(opts.maxBytes !== undefined ? { maxSize: opts.maxBytes, sizeCalculation: (doc: IdentityDocument) => entryBytes(doc) } : {}),
      ttl: this.#maxTtlMs,
      ttlResolution: 0,
      perf: { now: () => this.#now().getTime() },
    })
  }

  get (key: string): IdentityDocument | undefined {
    const doc = this.#lru.get(key)
    // Belt and braces: the entry's TTL already ends at expiry; check the document's own date too.
    if (doc !== undefined && Date.parse(doc.expires_at) > this.#now().getTime()) {
      this.#hits++
      this.#counters?.hit()
      return doc
    }
    if (doc !== undefined) this.#lru.delete(key)
    this.#misses++
    this.#counters?.miss()
    return undefined
  }

  set (key: string, doc: IdentityDocument, expiresAt: Date): void {
    const ttl = Math.min(this.#maxTtlMs, expiresAt.getTime() - this.#now().getTime())
    if (ttl <= 0) return
    this.#lru.set(key, doc, { ttl })
  }

  clear (): void {
    this.#lru.clear()
    this.#clears++
  }

  /** Entries and their estimated bytes (0 bytes when no byte bound is set). */
  memory (): { entries: number, bytes: number } {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize ?? 0 }
  }

  stats (): CacheStats {
    return { size: this.#lru.size, hits: this.#hits, misses: this.#misses, clears: this.#clears }
  }
}
