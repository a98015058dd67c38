/**
 * Upload timing as OPA's decision-log plugin does it (v1/plugins/logs/plugin.go, util.DefaultBackoff):
 * after a good upload wait uniformly in [min, max]; after a failure wait an exponential backoff
 * from 100 ms, doubling per failure, capped by the max delay, with ±10 % jitter so many
 * instances that failed together do not retry in lockstep.
 */

/** OPA's minRetryDelay. */
export const MIN_RETRY_DELAY_MS = 100
const FACTOR = 2
const JITTER = 0.1

/** Delay before retry number `retries` (0-based: the first retry after one failure is `retries = 0`). */
export function retryDelayMs (retries: number, maxMs: number, random: () => number = Math.random): number {
  let delay = MIN_RETRY_DELAY_MS
  // Bounded: at most ~60 doublings reach any finite cap.
  for (let i = 0; i < retries && delay < maxMs; i++) delay *= FACTOR
  if (delay > maxMs) delay = maxMs
  delay *= 1 + JITTER * (random() * 2 - 1)
  return Math.max(0, Math.round(delay))
}

/** Delay until the next periodic upload: uniform in [minMs, maxMs]. */
export function periodicDelayMs (minMs: number, maxMs: number, random: () => number = Math.random): number {
  return Math.round(minMs + (maxMs - minMs) * random())
}
