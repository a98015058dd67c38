/**
 * server/workers.ts BuildSlot: the primary's one slot for building large data images, granted
 * in arrival order. The "workers" here are recording stand-ins for cluster workers (send and
 * isConnected are all the slot uses); the real group is exercised end to end in
 * test/server/workers.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BuildSlot } from '../../src/server/workers.js'

function worker (id: number): { id: number, sent: unknown[], connected: boolean, send: (m: unknown) => boolean, isConnected: () => boolean } {
  const w = { id, sent: [] as unknown[], connected: true, send: (m: unknown) => { w.sent.push(m); return true }, isConnected: () => w.connected }
  return w
}
const grants = (w: { sent: unknown[] }): string[] => w.sent.map((m) => (m as { id: string }).id)

test('claims are granted one at a time, in arrival order; a release grants the next', () => {
  const granted: string[] = []
  const slot = new BuildSlot((_w, id) => { granted.push(id) })
  const [a, b] = [worker(1), worker(2)]
  slot.claim(a, 'a1')
  slot.claim(b, 'b1')
  slot.claim(a, 'a2')
  assert.deepEqual(grants(a), ['a1'])
  assert.deepEqual(grants(b), [])
  assert.equal(slot.holder, 'a1')
  slot.release('a1')
  assert.deepEqual(grants(b), ['b1'])
  slot.release('b1')
  assert.deepEqual(grants(a), ['a1', 'a2'])
  slot.release('a2')
  assert.equal(slot.holder, undefined)
  assert.deepEqual(granted, ['a1', 'b1', 'a2'])
})

test('a release of a claim still waiting withdraws it; an unknown or repeated release changes nothing', () => {
  const slot = new BuildSlot()
  const [a, b, c] = [worker(1), worker(2), worker(3)]
  slot.claim(a, 'a1')
  slot.claim(b, 'b1')
  slot.claim(c, 'c1')
  slot.release('b1') // b gave up waiting (its timeout) and built anyway
  slot.release('nope')
  assert.equal(slot.holder, 'a1')
  slot.release('a1')
  assert.deepEqual(grants(b), [])
  assert.deepEqual(grants(c), ['c1'])
  slot.release('a1')
  assert.equal(slot.holder, 'c1')
})

test('a worker that exits frees the slot and drops its waiting claims; disconnected workers are skipped', () => {
  const slot = new BuildSlot()
  const [a, b, c] = [worker(1), worker(2), worker(3)]
  slot.claim(a, 'a1')
  slot.claim(a, 'a2')
  slot.claim(b, 'b1')
  slot.claim(c, 'c1')
  b.connected = false
  slot.forget(a)
  assert.deepEqual(grants(a), ['a1'])
  assert.deepEqual(grants(b), [])
  assert.equal(slot.holder, 'c1')
  assert.deepEqual(grants(c), ['c1'])
})
