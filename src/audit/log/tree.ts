/**
 * The audit log's Merkle tree: RFC 9162 §2.1 hashing and proofs over hashes stored in the
 * order of Go's golang.org/x/mod/sumdb/tlog (StoredHashIndex), so that an append writes only
 * the new leaf hash and the interior hashes it completes, and any root or proof needs O(log n)
 * stored hashes — never the events themselves. See docs/audit.md "Tree".
 *
 * Stored hash (level L, index k) is the root of the complete subtree over leaves
 * [k·2^L, (k+1)·2^L). Arithmetic uses plain numbers with division, not 32-bit bit operators, so
 * tree sizes beyond 2^31 stay correct.
 */
import { createHash, hash } from 'node:crypto'

export const HASH_SIZE = 32

// One-shot crypto.hash over a reused scratch buffer: no Hash object per call (verify hashes
// every record and about one interior node per record).
let scratch = Buffer.allocUnsafe(4096)

/** RFC 9162 §2.1.1: SHA-256(0x00 ‖ entry). */
export function leafHash (entry: Uint8Array): Buffer {
  if (entry.length + 1 > scratch.length) scratch = Buffer.allocUnsafe(Math.max(entry.length + 1, scratch.length * 2))
  scratch[0] = 0
  scratch.set(entry, 1)
  return hash('sha256', scratch.subarray(0, entry.length + 1), 'buffer') as unknown as Buffer
}

/** RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash (left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) throw new RangeError('node children must be 32-byte hashes')
  scratch[0] = 1
  scratch.set(left, 1)
  scratch.set(right, 1 + HASH_SIZE)
  return hash('sha256', scratch.subarray(0, 1 + 2 * HASH_SIZE), 'buffer') as unknown as Buffer
}

/** RFC 9162 §2.1.1: the root of the empty tree is SHA-256 of the empty string. */
export const EMPTY_ROOT = createHash('sha256').digest()

/** Number of trailing 1 bits of n (n ≥ 0): how many interior hashes leaf n completes. */
function trailingOnes (n: number): number {
  let c = 0
  while (n % 2 === 1) { c++; n = (n - 1) / 2 }
  return c
}

/** tlog.StoredHashIndex: position in the stored-hash sequence of hash (level, n). */
export function storedHashIndex (level: number, n: number): number {
  for (let l = level; l > 0; l--) n = 2 * n + 1
  let i = 0
  while (n > 0) { i += n; n = Math.floor(n / 2) }
  return i + level
}

/** tlog.StoredHashCount: how many hashes are stored for a tree of n leaves. */
export function storedHashCount (n: number): number {
  if (n === 0) return 0
  return storedHashIndex(0, n - 1) + 1 + trailingOnes(n - 1)
}

/** The largest tree size whose stored hashes fit in `count` hashes (a reader's view of a hashes file a writer is appending to). */
export function treeSizeForStoredCount (count: number): number {
  // storedHashCount(n) is about 2n; search [count/2 - 64, count/2 + 64] ∩ [0, count]
  let lo = 0
  let hi = Math.max(0, Math.floor(count / 2) + 64)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (storedHashCount(mid) <= count) lo = mid
    else hi = mid - 1
  }
  return lo
}

function isPowerOfTwo (n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2
  return n === 1
}

/** Largest power of two strictly smaller than n (n ≥ 2): RFC 9162's split point k. */
export function splitPoint (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** Reads stored hashes by index; the hashes file (positional reads) or memory. */
export interface HashReader {
  readHashes: (indexes: number[]) => Buffer[]
}

/** The stored-hash indexes whose hashes, folded right to left, give MTH(D[lo:hi]). */
function subtreeIndexes (lo: number, hi: number, out: number[]): number {
  let count = 0
  while (lo < hi) {
    // largest power of two that is ≤ hi - lo and aligned at lo
    let k = 1
    let level = 0
    while (k * 2 <= hi - lo && lo % (k * 2) === 0) { k *= 2; level++ }
    out.push(storedHashIndex(level, lo / k))
    count++
    lo += k
  }
  return count
}

function fold (hashes: Buffer[]): Buffer {
  let h = hashes[hashes.length - 1] as Buffer
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i] as Buffer, h)
  return h
}

/**
 * MTH(D[lo:hi]) for every range asked, with one batched read: a proof is a list of subtree
 * hashes, each built from at most log2(n) stored hashes.
 */
function subtreeHashes (ranges: Array<[number, number]>, reader: HashReader): Buffer[] {
  const indexes: number[] = []
  const counts = ranges.map(([lo, hi]) => subtreeIndexes(lo, hi, indexes))
  const hashes = indexes.length === 0 ? [] : reader.readHashes(indexes)
  const out: Buffer[] = []
  let at = 0
  for (const c of counts) {
    out.push(fold(hashes.slice(at, at + c)))
    at += c
  }
  return out
}

/** The root hash of the tree of the first n leaves. */
export function treeRoot (n: number, reader: HashReader): Buffer {
  if (n === 0) return EMPTY_ROOT
  return subtreeHashes([[0, n]], reader)[0] as Buffer
}

/** RFC 9162 §2.1.3.1 PATH(m, D[0:n]): the inclusion proof of leaf m in the tree of size n. */
export function inclusionProof (m: number, n: number, reader: HashReader): Buffer[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m >= n) throw new RangeError(`no inclusion proof for leaf ${m} in a tree of size ${n}`)
  const ranges: Array<[number, number]> = []
  let lo = 0
  let hi = n
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo)
    if (m - lo < k) { ranges.push([lo + k, hi]); hi = lo + k } else { ranges.push([lo, lo + k]); lo = lo + k }
  }
  // PATH lists the deepest sibling first
  return subtreeHashes(ranges.reverse(), reader)
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]): the consistency proof from the tree of size m to size n. */
export function consistencyProof (m: number, n: number, reader: HashReader): Buffer[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) throw new RangeError(`no consistency proof from size ${m} to ${n}`)
  if (m === 0 || m === n) return []
  const ranges: Array<[number, number]> = []
  let lo = 0
  let hi = n
  let mm = m
  let b = true
  for (;;) {
    const size = hi - lo
    if (mm === size) {
      if (!b) ranges.push([lo, hi])
      break
    }
    const k = splitPoint(size)
    if (mm <= k) { ranges.push([lo + k, hi]); hi = lo + k } else { ranges.push([lo, lo + k]); lo = lo + k; mm -= k; b = false }
  }
  return subtreeHashes(ranges.reverse(), reader)
}

/** RFC 9162 §2.1.3.2: does `proof` show the leaf with hash `leaf` at `index` in the tree of `size` with `root`? */
export function verifyInclusion (index: number, size: number, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false
  let fn = index
  let sn = size - 1
  let r: Uint8Array = leaf
  for (const p of proof) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2) }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && Buffer.from(r).equals(root)
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show the tree (m, firstRoot) is a prefix of (n, secondRoot)?
 * m = 0: the empty tree is a prefix of every tree, but only when `firstRoot` is the empty tree's
 * root (SHA-256 of nothing) and the proof is empty — any other first root is a false claim.
 */
export function verifyConsistency (m: number, n: number, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: Uint8Array[]): boolean {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) return false
  if (m === 0) return proof.length === 0 && EMPTY_ROOT.equals(firstRoot) && (n > 0 || EMPTY_ROOT.equals(secondRoot))
  if (m === n) return proof.length === 0 && Buffer.from(firstRoot).equals(secondRoot)
  if (proof.length === 0) return false
  const path = [...proof]
  // a power-of-two first tree is itself a node of the second: its root starts the path
  if (isPowerOfTwo(m)) path.unshift(firstRoot)
  let fn = m - 1
  let sn = n - 1
  while (fn % 2 === 1) { fn = (fn - 1) / 2; sn = Math.floor(sn / 2) }
  let fr: Uint8Array = path[0] as Uint8Array
  let sr: Uint8Array = fr
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2) }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && Buffer.from(fr).equals(firstRoot) && Buffer.from(sr).equals(secondRoot)
}

/**
 * The right edge of a growing tree (its complete subtrees, largest first): appending a leaf
 * yields exactly the hashes tlog stores for it (StoredHashesForRecordHash), and the root is
 * the fold of the edge. The writer and verify keep one; it is rebuilt from O(log n) stored
 * hashes (`CompactRange.load`).
 */
export class CompactRange {
  /** Hashes of the complete subtrees covering [0, size), largest (leftmost) first. */
  private readonly hashes: Buffer[] = []
  /** Their levels (log2 of their leaf counts). */
  private readonly levels: number[] = []
  size = 0

  /** Rebuilds the edge of the tree of size n from its stored hashes. */
  static load (n: number, reader: HashReader): CompactRange {
    const c = new CompactRange()
    if (n === 0) return c
    const indexes: number[] = []
    subtreeIndexes(0, n, indexes)
    const hashes = reader.readHashes(indexes)
    let lo = 0
    for (const h of hashes) {
      let k = 1
      let level = 0
      while (k * 2 <= n - lo && lo % (k * 2) === 0) { k *= 2; level++ }
      c.hashes.push(h)
      c.levels.push(level)
      lo += k
    }
    c.size = n
    return c
  }

  /** Appends a leaf hash; returns the hashes to store for it, in tlog's order (leaf first). */
  append (leaf: Buffer): Buffer[] {
    const stored = [leaf]
    let h = leaf
    let level = 0
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      this.levels.pop()
      h = nodeHash(this.hashes.pop() as Buffer, h)
      level++
      stored.push(h)
    }
    this.hashes.push(h)
    this.levels.push(level)
    this.size++
    return stored
  }

  root (): Buffer {
    return this.hashes.length === 0 ? EMPTY_ROOT : fold(this.hashes)
  }

  clone (): CompactRange {
    const c = new CompactRange()
    c.hashes.push(...this.hashes)
    c.levels.push(...this.levels)
    c.size = this.size
    return c
  }
}

/** MTH over leaf entries in memory (RFC 9162 §2.1.1), for tests and small trees. */
export function rootFromLeaves (entries: Uint8Array[]): Buffer {
  const c = new CompactRange()
  for (const e of entries) c.append(leafHash(e))
  return c.root()
}

/** A HashReader over stored hashes in memory (tests, small trees). */
export function memoryHashReader (stored: Buffer[]): HashReader {
  return {
    readHashes: (indexes) => indexes.map((i) => {
      const h = stored[i]
      if (h === undefined) throw new RangeError(`stored hash ${i} is beyond the ${stored.length} stored`)
      return h
    }),
  }
}
