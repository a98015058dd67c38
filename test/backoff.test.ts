/**
 * OPA's plugin timing (src/backoff.ts), used by the bundle downloader and the decision-log
 * shipper: util.DefaultBackoff from 100 ms (×1.6 per retry, ±20 % jitter, capped), and the
 * periodic delay uniform in [min, max].
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MIN_RETRY_DELAY_MS, periodicDelayMs, retryDelayMs } from '../src/backoff.js'

test("OPA's DefaultBackoff: 100 ms first, ×1.6 per retry, capped at the max delay", () => {
  const mid = (): number => 0.5 // no jitter
  assert.equal(retryDelayMs(0, 120_000, mid), MIN_RETRY_DELAY_MS)
  assert.equal(retryDelayMs(1, 120_000, mid), 160)
  assert.equal(retryDelayMs(3, 120_000, mid), 410)
  assert.equal(retryDelayMs(50, 120_000, mid), 120_000)
  assert.equal(retryDelayMs(1e9, 1000, mid), 1000)
  // a cap below the base caps the first retry too
  assert.equal(retryDelayMs(0, 50, mid), 50)
})

test('jitter stays within ±20 % of the capped delay', () => {
  assert.equal(retryDelayMs(50, 120_000, () => 0), 96_000)
  assert.equal(retryDelayMs(50, 120_000, () => 0.999999), 144_000)
  for (let i = 0; i < 200; i++) {
    const d = retryDelayMs(4, 120_000)
    assert.ok(d >= Math.floor(655.36 * 0.8) && d <= Math.ceil(655.36 * 1.2), String(d))
  }
})

test('periodic delay is uniform in [min, max]', () => {
  assert.equal(periodicDelayMs(300_000, 600_000, () => 0), 300_000)
  assert.equal(periodicDelayMs(300_000, 600_000, () => 1), 600_000)
  for (let i = 0; i < 200; i++) {
    const d = periodicDelayMs(10, 20)
    assert.ok(d >= 10 && d <= 20)
  }
})
