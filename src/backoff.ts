/**
 * OPA's plugin timing, shared by the plugins Portcullis implements after OPA's: the bundle
 * downloader (bundles/service/downloader.ts, OPA's bundle plugin) and the decision-log shipper
 * (audit/ship/shipper.ts, OPA's decision-log plugin). Both of OPA's plugins use the same
 * `util.DefaultBackoff(minRetryDelay, max_delay_seconds, retries)` after a failure and a
 * uniform delay in [min_delay_seconds, max_delay_seconds] after a success, so both here use
 * this one module.
 *
 * OPA's `util.Backoff(base, max, jitter, factor, retries)`: base·factor^retries, stopping once
 * at or over the cap, capped at max, times 1 ± jitter (uniform) so instances that failed
 * together do not retry in lockstep. `DefaultBackoff` is jitter 0.2, factor 1.6; OPA's
 * `minRetryDelay` is 100 ms. One deliberate difference: OPA answers 0 for the first retry
 * (retries = 0); here it is the base, 100 ms, so a failing server is never asked again at once.
 */

/** OPA's `minRetryDelay`. */
export const MIN_RETRY_DELAY_MS = 100

/** OPA's `util.DefaultBackoff`: growth per consecutive failure. */
export const BACKOFF_FACTOR = 1.6
/** OPA's `util.DefaultBackoff`: the delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter]. */
export const BACKOFF_JITTER = 0.2

/**
 * Delay (ms, rounded) before retry number `retries` (0-based: after the first failure
 * `retries` is 0), capped at `maxMs` before the jitter.
 *
 * @example
 *   retryDelayMs(3, 120_000)   // 100·1.6³ ≈ 410 ms, ±20 %
 */
export function retryDelayMs (retries: number, maxMs: number, random: () => number = Math.random): number {
  if (retries <= 0) return Math.round(Math.min(MIN_RETRY_DELAY_MS, maxMs))
  let delay = MIN_RETRY_DELAY_MS
  // Bounded: the loop stops at the cap, which a factor > 1 reaches in finitely many steps
  for (let r = retries; delay < maxMs && r > 0; r--) delay *= BACKOFF_FACTOR
  if (delay > maxMs) delay = maxMs
  delay *= 1 + BACKOFF_JITTER * (random() * 2 - 1)
  return Math.max(0, Math.round(delay))
}

/** Delay until the next periodic poll or upload: uniform in [minMs, maxMs]. */
export function periodicDelayMs (minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.round(minMs + (maxMs - minMs) * random())
}
