/**
 * The console's caches, bounded by bytes (console.cache_max_bytes), not only by count: a
 * segment summary holds up to MAX_SET callers, paths and transports each, and a caller (a
 * SPIFFE ID, an OIDC subject) or a path can be long, so a count bound alone lets a few
 * segments full of long names hold gigabytes. Each cache is an lru-cache with `maxSize` and a
 * `sizeCalculation` that estimates what an entry keeps alive: its strings (UTF-16, two bytes a
 * character, plus a header), the Map and Set entries around them, and a fixed overhead per
 * object. The estimate is deliberately on the high side; it is a bound, not an accounting.
 *
 * The caches are per process (they are keyed by directory, so several servers in one process
 * share them) and sized by the last configuration: configureConsoleCaches() is called when the
 * console routes are registered, and replaces the caches only when the bound changes. They are
 * made on first use.
 */
import { LRUCache } from 'lru-cache'

/** Default console.cache_max_bytes (config/defaults.ts keeps the same number). */
export const DEFAULT_CACHE_MAX_BYTES = 64 * 1024 * 1024
/** Entries per cache, whatever their size (a second bound, on bookkeeping). */
const MAX_ENTRIES = 100_000

const OBJECT = 64
const ENTRY = 48
const NUMBER = 16

/** Estimated bytes of a string kept in memory. */
export const stringBytes = (s: string): number => 24 + 2 * s.length

/** Estimated bytes of a value made of plain objects, arrays, Maps, Sets, strings and numbers (bounded depth). */
export function estimateBytes (v: unknown, depth = 0): number {
  if (typeof v === 'string') return stringBytes(v)
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return NUMBER
  if (typeof v !== 'object' || depth > 8) return OBJECT
  let n = OBJECT
  if (v instanceof Map) {
    for (const [k, x] of v) n += ENTRY + estimateBytes(k, depth + 1) + estimateBytes(x, depth + 1)
  } else if (v instanceof Set) {
    for (const x of v) n += ENTRY + estimateBytes(x, depth + 1)
  } else if (Array.isArray(v)) {
    for (const x of v) n += 8 + estimateBytes(x, depth + 1)
  } else {
    for (const [k, x] of Object.entries(v)) n += 8 + stringBytes(k) + estimateBytes(x, depth + 1)
  }
  return n
}

export interface CacheStats { entries: number, bytes: number, max_bytes: number }

/** A byte-bounded LRU of `name`, sizing each entry (key included) with estimateBytes. */
function byteBounded<V extends object> (maxBytes: number): LRUCache<string, V> {
  return new LRUCache<string, V>({
    max: MAX_ENTRIES,
    maxSize: maxBytes,
    // an entry larger than the whole bound is not kept (lru-cache: maxEntrySize defaults to maxSize)
    sizeCalculation: (value, key) => Math.max(1, stringBytes(key) + estimateBytes(value)),
  })
}

let maxBytes = DEFAULT_CACHE_MAX_BYTES
// Made on first use, not at import: an lru-cache with `max` allocates its bookkeeping for every
// entry up front (two arrays of MAX_ENTRIES each), tens of milliseconds of a server's start
// whether or not the console is ever opened.
let caches: { summaries: LRUCache<string, object>, partials: LRUCache<string, object> } | undefined

function current (): { summaries: LRUCache<string, object>, partials: LRUCache<string, object> } {
  const half = Math.max(1, Math.floor(maxBytes / 2))
  caches ??= { summaries: byteBounded<object>(half), partials: byteBounded<object>(half) }
  return caches
}

/** Sets console.cache_max_bytes: half for the segment index, half for the overview partials. */
export function configureConsoleCaches (bytes: number = DEFAULT_CACHE_MAX_BYTES): void {
  if (!Number.isSafeInteger(bytes) || bytes < 2) throw new RangeError(`console cache bound must be a positive integer, got ${bytes}`)
  if (bytes === maxBytes) return
  maxBytes = bytes
  caches = undefined
}

/** The segment-summary cache (segments.ts). */
export function summaryCache<V extends object> (): LRUCache<string, V> {
  return current().summaries as unknown as LRUCache<string, V>
}

/** The overview partial-aggregate cache (overview.ts). */
export function partialCache<V extends object> (): LRUCache<string, V> {
  return current().partials as unknown as LRUCache<string, V>
}

/** Entries and estimated bytes of each cache (tests, and what docs/console.md "Cost" describes). */
export function consoleCacheStats (): { summaries: CacheStats, partials: CacheStats } {
  const stats = (c: LRUCache<string, object>): CacheStats => ({ entries: c.size, bytes: c.calculatedSize, max_bytes: c.maxSize })
  const c = current()
  return { summaries: stats(c.summaries), partials: stats(c.partials) }
}
