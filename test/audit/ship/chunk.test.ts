/** Chunking: every body under upload_size_limit_bytes (compressed), events in order, none lost; oversized events alone. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import fc from 'fast-check'
import { ChunkEncoder, type ShipEvent } from '../../../src/audit/ship/chunk.js'

function event (seq: number, payload: string): ShipEvent {
  return { seq, bytes: Buffer.from(JSON.stringify({ seq, decision_id: `d${seq}`, input: payload })) }
}

/** Cuts all events into chunks as the shipper does: gather to the budget, encode, keep the rest. */
async function cutAll (enc: ChunkEncoder, events: ShipEvent[]): Promise<Array<{ seqs: number[], body: Buffer, oversized: boolean }>> {
  const out: Array<{ seqs: number[], body: Buffer, oversized: boolean }> = []
  const pending: ShipEvent[] = []
  let bytes = 0
  const flush = async (): Promise<void> => {
    const c = await enc.encode(pending)
    out.push({ seqs: c.events.map((e) => e.seq), body: c.body, oversized: c.oversized })
    pending.splice(0, c.events.length)
    bytes = pending.reduce((n, e) => n + e.bytes.length + 1, 0)
  }
  for (const e of events) {
    pending.push(e)
    bytes += e.bytes.length + 1
    while (bytes >= enc.budget() && pending.length > 0) await flush()
  }
  while (pending.length > 0) await flush()
  return out
}

test('chunks stay under the compressed limit and carry every event once, in order, as a JSON array', async () => {
  const limit = 2048
  const events = Array.from({ length: 400 }, (_, i) => event(i, randomBytes(20 + (i % 50)).toString('hex')))
  const chunks = await cutAll(new ChunkEncoder(limit), events)
  assert.ok(chunks.length > 1)
  for (const c of chunks) {
    assert.ok(c.body.length <= limit, `chunk of ${c.body.length} bytes over ${limit}`)
    assert.equal(c.oversized, false)
    const arr = JSON.parse(gunzipSync(c.body).toString('utf8')) as Array<{ seq: number }>
    assert.deepEqual(arr.map((e) => e.seq), c.seqs)
  }
  assert.deepEqual(chunks.flatMap((c) => c.seqs), events.map((e) => e.seq))
})

test('an event larger than the limit even alone is sent in a chunk of its own, marked oversized', async () => {
  const limit = 512
  const events = [event(0, 'small'), event(1, randomBytes(4000).toString('base64')), event(2, 'small')]
  const chunks = await cutAll(new ChunkEncoder(limit), events)
  const big = chunks.find((c) => c.seqs.includes(1))
  assert.ok(big !== undefined)
  assert.deepEqual(big.seqs, [1])
  assert.equal(big.oversized, true)
  assert.ok(big.body.length > limit)
  assert.deepEqual(chunks.flatMap((c) => c.seqs), [0, 1, 2])
  for (const c of chunks) if (!c.oversized) assert.ok(c.body.length <= limit)
})

test('property: any event sizes and limits — order kept, nothing lost, only single-event chunks exceed the limit', async () => {
  await fc.assert(fc.asyncProperty(
    fc.integer({ min: 64, max: 8192 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.boolean()), { minLength: 1, maxLength: 120 }),
    async (limit, shapes) => {
      const events = shapes.map(([n, random], i) => event(i, random ? randomBytes(n).toString('base64') : 'a'.repeat(n)))
      const chunks = await cutAll(new ChunkEncoder(limit), events)
      assert.deepEqual(chunks.flatMap((c) => c.seqs), events.map((e) => e.seq))
      for (const c of chunks) {
        if (c.body.length > limit) { assert.equal(c.seqs.length, 1); assert.equal(c.oversized, true) } else assert.equal(c.oversized, false)
      }
    }), { numRuns: 40 })
})
