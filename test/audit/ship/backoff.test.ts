/** OPA's timing: exponential backoff from 100 ms with ±10 % jitter, capped; periodic delay uniform in [min, max]. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MIN_RETRY_DELAY_MS, periodicDelayMs, retryDelayMs } from '../../../src/audit/ship/backoff.js'

test('backoff doubles per failure from 100 ms and is capped by the max delay', () => {
  const mid = (): number => 0.5 // no jitter
  assert.equal(retryDelayMs(0, 60_000, mid), MIN_RETRY_DELAY_MS)
  assert.equal(retryDelayMs(1, 60_000, mid), 200)
  assert.equal(retryDelayMs(5, 60_000, mid), 3200)
  assert.equal(retryDelayMs(40, 60_000, mid), 60_000)
  assert.equal(retryDelayMs(1e9, 1000, mid), 1000)
})

test('jitter stays within ±10 %', () => {
  assert.equal(retryDelayMs(3, 60_000, () => 0), 720)
  assert.equal(retryDelayMs(3, 60_000, () => 1), 880)
  for (let i = 0; i < 200; i++) {
    const d = retryDelayMs(4, 60_000)
    assert.ok(d >= 1440 && d <= 1760, String(d))
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
