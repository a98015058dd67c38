/**
 * Decision cache over lru-cache: bounded by entries, by the estimated bytes of what it holds
 * (maxBytes; an entry above maxEntryBytes is not cached at all) and by TTL, emptied when any bundle
 * activates (BundleManager 'activate' event), never used for a policy that calls
 * non-deterministic builtins (the caller checks `cacheable`).
 */
import { LRUCache } from 'lru-cache'
import type { CounterChild, Metrics } from '../metrics/index.js'

export interface CachedDecision {
  defined: boolean
  result?: unknown
  /** The result's exact JSON text, when it holds numbers a double cannot represent (see Decision.resultJson). */
  resultJson?: string
  bundle: string
}

export interface DecisionCacheOptions {
  maxEntries: number
  ttlMs: number
  /** Bound on the summed estimated bytes of the entries (default 64 MiB): unique large results would otherwise fill the heap. */
  maxBytes?: number
  /** An entry estimated above this is not cached (default 1 MiB, at most maxBytes). */
  maxEntryBytes?: number
  metrics?: Metrics
  /** Injectable clock for TTL tests (lru-cache `perf`). */
  perf?: { now: () => number }
}

export interface CacheStats { entries: number, hits: number, misses: number, evictions: number, max_entries: number, ttl_ms: number, bytes: number, max_bytes: number }

export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024
export const DEFAULT_CACHE_MAX_ENTRY_BYTES = 1024 * 1024

/**
 * The heap an entry holds, estimated from its key and result (UTF-16 strings, a few words per
 * value and member, lru-cache's slots), without serialising it; stops counting past `budget`
 * (the caller does not cache it then).
 */
export function decisionBytes (key: string, value: CachedDecision, budget: number): number {
  let total = 2 * key.length + 2 * value.bundle.length + 2 * (value.resultJson?.length ?? 0) + 160
  const stack: unknown[] = [value.result]
  while (stack.length > 0 && total <= budget) {
    const v = stack.pop()
    if (typeof v === 'string') total += 2 * v.length + 16
    else if (v === null || typeof v !== 'object') total += 16
    else if (Array.isArray(v)) { total += 32 + 8 * v.length; for (const x of v) stack.push(x) } else {
      total += 48
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue
        total += 2 * k.length + 32
        stack.push((v as Record<string, unknown>)[k])
      }
    }
  }
  return total
}

export class DecisionCache {
  readonly #lru: LRUCache<string, CachedDecision>
  readonly #hitSeries: CounterChild | undefined
  readonly #missSeries: CounterChild | undefined
  readonly #opts: DecisionCacheOptions
  #hits = 0
  #misses = 0
  #evictions = 0
  #epoch = 0
  readonly #maxBytes: number

  constructor (opts: DecisionCacheOptions) {
    this.#opts = opts
    this.#hitSeries = opts.metrics?.cacheHits.series
    this.#missSeries = opts.metrics?.cacheMisses.series
    const evictions = opts.metrics?.cacheEvictions.series
    if (opts.metrics !== undefined) opts.metrics.cacheSize = () => this.#lru.size
    const maxBytes = opts.maxBytes ?? DEFAULT_CACHE_MAX_BYTES
    const maxEntryBytes = Math.min(opts.maxEntryBytes ?? DEFAULT_CACHE_MAX_ENTRY_BYTES, maxBytes)
    this.#maxBytes = maxBytes
    this.#lru = new LRUCache<string, CachedDecision>({
      max: opts.maxEntries,
      maxSize: maxBytes,
      maxEntrySize: maxEntryBytes,
      // past the entry bound the estimate stops counting; lru-cache then does not store it
      sizeCalculation: (v, k) => Math.max(1, decisionBytes(k, v, maxEntryBytes)),
      ttl: opts.ttlMs,
      ttlAutopurge: false,
      allowStale: false,
      updateAgeOnGet: false,
      ...(opts.perf !== undefined ? { perf: opts.perf, ttlResolution: 0 } : {}),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict' || reason === 'expire') {
          this.#evictions++
          evictions?.inc()
        }
      },
    })
  }

  get (key: string): CachedDecision | undefined {
    // entries are never undefined, so undefined is a miss (stale entries are not returned)
    const v = this.#lru.get(key)
    if (v === undefined) {
      this.#misses++
      this.#missSeries?.inc()
    } else {
      this.#hits++
      this.#hitSeries?.inc()
    }
    return v
  }

  /**
   * How many times the cache was emptied. A decision reads it before its first await and
   * inserts with setIfCurrent(): a decision computed before an activation or a trust change
   * (each empties the cache) cannot put its stale answer in after the flush.
   */
  get epoch (): number {
    return this.#epoch
  }

  set (key: string, value: CachedDecision): void {
    this.#lru.set(key, value)
  }

  /** Inserts only when the cache has not been emptied since `epoch` was read; true when inserted. */
  setIfCurrent (epoch: number, key: string, value: CachedDecision): boolean {
    if (epoch !== this.#epoch) return false
    this.#lru.set(key, value)
    return true
  }

  /** Empties the cache; returns how many entries were dropped. */
  clear (): number {
    this.#epoch++
    const n = this.#lru.size
    this.#lru.clear()
    return n
  }

  stats (): CacheStats {
    return { entries: this.#lru.size, hits: this.#hits, misses: this.#misses, evictions: this.#evictions, max_entries: this.#opts.maxEntries, ttl_ms: this.#opts.ttlMs, bytes: this.#lru.calculatedSize, max_bytes: this.#maxBytes }
  }
}
