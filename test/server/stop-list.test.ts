/**
 * The runtime's one list of stops (src/server/stop-list.ts): a failed start unwinds it and
 * stop() runs it, newest first both ways, so the shutdown order is the reverse of registration.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StopList, type StopContext } from '../../src/server/stop-list.js'

test('stop() runs every stop newest first, each awaited before the next, with the grace period', async () => {
  const stops = new StopList()
  const ran: string[] = []
  const seen: StopContext[] = []
  for (const name of ['audit', 'identity', 'app', 'listeners']) {
    stops.add(async (ctx) => {
      seen.push(ctx)
      await new Promise<void>((resolve) => setImmediate(resolve))
      ran.push(name)
    })
  }
  await stops.stop(5000)
  assert.deepEqual(ran, ['listeners', 'app', 'identity', 'audit'])
  for (const ctx of seen) {
    assert.equal(ctx.graceMs, 5000)
    const left = ctx.remainingMs()
    assert.ok(left >= 0 && left <= 5000)
  }
  // The list is spent: a second stop runs nothing again.
  await stops.stop(5000)
  assert.equal(ran.length, 4)
})

test('stop() runs every stop past one that fails, then rethrows the first failure', async () => {
  const stops = new StopList()
  const ran: string[] = []
  const boom = new Error('close failed')
  stops.add(() => { ran.push('first registered') })
  stops.add(() => { throw new Error('a later failure') })
  stops.add(async () => { await Promise.resolve(); throw boom })
  stops.add(() => { ran.push('last registered') })
  await assert.rejects(stops.stop(0), (err) => err === boom)
  assert.deepEqual(ran, ['last registered', 'first registered'])
})

test('a failed step unwinds everything registered so far, newest first, past stops that fail, and rethrows', async () => {
  const stops = new StopList()
  const ran: string[] = []
  const contexts: StopContext[] = []
  stops.add((ctx) => { contexts.push(ctx); ran.push('a') })
  const b = await stops.step(() => 'b', (v, ctx) => { contexts.push(ctx); ran.push(v) })
  assert.equal(b, 'b')
  stops.add(() => { ran.push('c'); throw new Error('closing c failed') })
  const boom = new Error('open failed')
  await assert.rejects(stops.step(async () => { throw boom }, () => { ran.push('never opened') }), (err) => err === boom)
  assert.deepEqual(ran, ['c', 'b', 'a'])
  // Nothing was serving: no grace period to wait for.
  for (const ctx of contexts) {
    assert.equal(ctx.graceMs, undefined)
    assert.equal(ctx.remainingMs(), 0)
  }
})

test('a step that opens nothing registers no stop', async () => {
  const stops = new StopList()
  const ran: string[] = []
  assert.equal(await stops.step(() => undefined, () => { ran.push('undefined') }), undefined)
  await stops.step(async () => 'x', (v) => { ran.push(v) })
  await stops.stop(0)
  assert.deepEqual(ran, ['x'])
})
