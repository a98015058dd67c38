/**
 * Cache of verified credentials (lru-cache). The key is the SHA-256 of the complete credential
 * (the whole token, the whole DER chain) plus the plugin and source that read it: never a
 * signature or a kid alone. Each entry lives no longer than its credential (and max_ttl), and
 * the verifier empties the cache whenever a trust bundle changes.
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

export class VerifiedCredentialCache {
  readonly #lru: LRUCache<string, IdentityDocument>
  readonly #now: () => Date
  readonly #maxTtlMs: number
  #hits = 0
  #misses = 0
  #clears = 0

  constructor (opts: { maxEntries: number, maxTtlSeconds: number, now: () => Date }) {
    this.#now = opts.now
    this.#maxTtlMs = opts.maxTtlSeconds * 1000
    // perf: lru-cache measures TTLs on our clock, so tests move time by moving `now`.
    this.#lru = new LRUCache<string, IdentityDocument>({ max: opts.maxEntries, ttl: this.#maxTtlMs, ttlResolution: 0, perf: { now: () => this.#now().getTime() } })
  }

  get (key: string): IdentityDocument | undefined {
    const doc = this.#lru.get(key)
    // Belt and braces: the entry's TTL already ends at expiry; check the document's own date too.
    if (doc !== undefined && Date.parse(doc.expires_at) > this.#now().getTime()) {
      this.#hits++
      return doc
    }
    if (doc !== undefined) this.#lru.delete(key)
    this.#misses++
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

  stats (): CacheStats {
    return { size: this.#lru.size, hits: this.#hits, misses: this.#misses, clears: this.#clears }
  }
}
