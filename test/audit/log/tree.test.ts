/**
 * The Merkle tree against an independent implementation: Go's golang.org/x/mod/sumdb/tlog
 * (test/audit/tlogcheck). Roots, the stored-hash layout, inclusion and consistency proofs must
 * be identical, and each side's verifier must accept the other side's proofs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import {
  CompactRange, EMPTY_ROOT, consistencyProof, inclusionProof, leafHash, memoryHashReader, nodeHash, rootFromLeaves,
  storedHashCount, storedHashIndex, treeRoot, treeSizeForStoredCount, verifyConsistency, verifyInclusion,
} from '../../../src/audit/log/tree.js'
import { needsTlogcheck, runTlogcheck, type TlogQuery } from '../../helpers/tlogcheck.js'

function build (entries: Buffer[]): Buffer[] {
  const c = new CompactRange()
  const stored: Buffer[] = []
  for (const e of entries) stored.push(...c.append(leafHash(e)))
  return stored
}

const b64 = (b: Buffer): string => b.toString('base64')

test('RFC 9162 hashing of small trees by hand', () => {
  const [a, b, c] = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]
  assert.deepEqual(rootFromLeaves([]), EMPTY_ROOT)
  assert.deepEqual(rootFromLeaves([a]), leafHash(a))
  assert.deepEqual(rootFromLeaves([a, b, c]), nodeHash(nodeHash(leafHash(a), leafHash(b)), leafHash(c)))
  const stored = build([a, b, c])
  assert.equal(stored.length, storedHashCount(3))
  assert.deepEqual(stored[storedHashIndex(1, 0)], nodeHash(leafHash(a), leafHash(b)))
})

test('treeSizeForStoredCount inverts storedHashCount, also between counts', () => {
  for (let n = 0; n < 2000; n++) {
    assert.equal(treeSizeForStoredCount(storedHashCount(n)), n)
    if (n > 0) assert.equal(treeSizeForStoredCount(storedHashCount(n) - 1), n - 1)
  }
  assert.equal(treeSizeForStoredCount(storedHashCount(10_000_000)), 10_000_000)
})

test('roots, stored hashes and proofs equal Go sumdb/tlog on random trees, each verified by both sides', needsTlogcheck(), () => {
  const sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300]
  for (let i = 0; i < 12; i++) sizes.push(randomInt(1, 300))
  sizes.push(1023, 1024, 1025, 4097)
  const big = Math.max(...sizes)
  const entries = Array.from({ length: big }, () => randomBytes(randomInt(0, 64)))
  const stored = build(entries)
  const reader = memoryHashReader(stored)
  const queries: TlogQuery[] = []
  for (const n of sizes) {
    queries.push({ op: 'tree', n })
    const root = treeRoot(n, reader)
    const leaves = [0, n - 1, randomInt(0, n), randomInt(0, n)]
    for (const i of leaves) {
      const proof = inclusionProof(i, n, reader)
      assert.ok(verifyInclusion(i, n, leafHash(entries[i] as Buffer), proof, root), `own inclusion ${i}/${n}`)
      if (proof.length > 0) assert.equal(verifyInclusion(i, n, leafHash(Buffer.from('x')), proof, root), false)
      queries.push({ op: 'record', i, n, proof: proof.map(b64) })
    }
    for (const m of [1, n, randomInt(1, n + 1), Math.max(1, n - 1)]) {
      if (m >= n) continue // tlog.ProveTree wants m < n
      const proof = consistencyProof(m, n, reader)
      const mroot = treeRoot(m, reader)
      assert.ok(verifyConsistency(m, n, mroot, root, proof), `own consistency ${m}→${n}`)
      assert.equal(verifyConsistency(m, n, leafHash(Buffer.from('x')), root, proof), false)
      queries.push({ op: 'consistency', m, n, proof: proof.map(b64) })
    }
  }
  const go = runTlogcheck(entries, queries)
  assert.deepEqual(stored.map(b64), go.stored, 'stored-hash layout equals tlog StoredHashes')
  let q = 0
  for (const n of sizes) {
    assert.equal(go.answers[q++]?.root, b64(treeRoot(n, reader)), `root of ${n}`)
    for (const query of queries.slice(q)) {
      if (query.op === 'tree') break
      const a = go.answers[q++]
      assert.equal(a?.error, undefined)
      assert.equal(a?.check, 'ok', `tlog accepts our proof ${JSON.stringify({ ...query, proof: undefined })}`)
      assert.deepEqual(a?.proof ?? [], query.proof, `same proof ${query.op}`)
      const theirs = (a?.proof ?? []).map((p) => Buffer.from(p, 'base64'))
      if (query.op === 'record') {
        assert.ok(verifyInclusion(query.i, query.n, leafHash(entries[query.i] as Buffer), theirs, treeRoot(query.n, reader)))
      } else if (query.op === 'consistency') {
        assert.ok(verifyConsistency(query.m, query.n, treeRoot(query.m, reader), treeRoot(query.n, reader), theirs))
      }
    }
  }
  assert.equal(q, queries.length)
})

test('CompactRange.load rebuilds the right edge from stored hashes', () => {
  const entries = Array.from({ length: 777 }, (_, i) => Buffer.from(`e${i}`))
  const stored = build(entries)
  for (const n of [0, 1, 2, 5, 64, 100, 511, 777]) {
    const c = CompactRange.load(n, memoryHashReader(stored))
    assert.deepEqual(c.root(), rootFromLeaves(entries.slice(0, n)))
    if (n < 777) assert.deepEqual(c.append(leafHash(entries[n] as Buffer)), stored.slice(storedHashCount(n), storedHashCount(n + 1)))
  }
})

test('verifyConsistency from the empty tree: only the empty tree\'s root, with an empty proof', async () => {
  const { verifyConsistency: vc, EMPTY_ROOT: empty, rootFromLeaves: roots } = await import('../../../src/audit/log/tree.js')
  const root5 = roots([0, 1, 2, 3, 4].map((i) => Buffer.from(`leaf ${i}`)))
  assert.equal(vc(0, 5, empty, root5, []), true)
  assert.equal(vc(0, 5, Buffer.alloc(32, 7), root5, []), false)
  assert.equal(vc(0, 5, empty, root5, [Buffer.alloc(32)]), false)
  assert.equal(vc(0, 0, empty, empty, []), true)
  assert.equal(vc(0, 0, empty, Buffer.alloc(32, 7), []), false)
})
