/**
 * The console's in-browser proof check: a compliance reader should not have to trust the server
 * that a decision record is in the signed log. Given the exact stored record bytes, an RFC 9162
 * inclusion proof and a C2SP signed checkpoint note, this recomputes everything with WebCrypto
 * (SHA-256 and Ed25519) and reports which step failed. It is the browser twin of
 * src/audit/log/tree.ts (leaf/node hashes, §2.1.3.2 verification) and
 * src/audit/log/checkpoint.ts (note format, key hash, signature); test/console/ui-verify.test.ts
 * checks the two agree on real logs. No DOM use: the same module runs in Node for that test.
 */

const SIG_PREFIX = '\u2014 '
const ED25519_TYPE = 0x01
const enc = new TextEncoder()

/** Bytes over a plain ArrayBuffer (what WebCrypto accepts). */
export type Bytes = Uint8Array<ArrayBuffer>

export function b64decode (text: string): Bytes {
  const bin = atob(text)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export function b64encode (bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin)
}

export function hex (bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += b.toString(16).padStart(2, '0')
  return s
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number)
  return d === 0
}

async function sha256 (...parts: Uint8Array[]): Promise<Uint8Array> {
  let len = 0
  for (const p of parts) len += p.length
  const buf = new Uint8Array(len)
  let at = 0
  for (const p of parts) { buf.set(p, at); at += p.length }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf))
}

/** RFC 9162 §2.1.1: SHA-256(0x00 ‖ entry). */
export async function leafHash (entry: Uint8Array): Promise<Uint8Array> {
  return await sha256(Uint8Array.of(0), entry)
}

/** RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right). */
export async function nodeHash (left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  if (left.length !== 32 || right.length !== 32) throw new RangeError('node children must be 32-byte hashes')
  return await sha256(Uint8Array.of(1), left, right)
}

/**
 * RFC 9162 §2.1.3.2: folds an inclusion proof for the leaf hash at `index` in a tree of `size`
 * to the root it implies; undefined when the proof has the wrong shape for that index and size.
 */
export async function rootFromInclusionProof (index: number, size: number, leaf: Uint8Array, proof: Uint8Array[]): Promise<Uint8Array | undefined> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0 || p.length !== 32) return undefined
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2) }
      }
    } else {
      r = await nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 ? r : undefined
}

export interface ParsedNote {
  origin: string
  size: number
  root: Uint8Array
  /** The signed message: the note text up to and including the newline before the blank line. */
  body: string
  signatures: Array<{ name: string, keyHash: Bytes, sig: Bytes }>
}

/** Parses a C2SP signed note carrying a tlog checkpoint; throws Error on malformed notes. */
export function parseNote (note: string): ParsedNote {
  const split = note.indexOf('\n\n')
  if (split < 0 || !note.endsWith('\n')) throw new Error('checkpoint note has no signature block')
  const body = note.slice(0, split + 1)
  const lines = body.split('\n')
  if (lines.length < 4) throw new Error('checkpoint body needs origin, size and root lines')
  const [origin, sizeText, rootText] = lines as [string, string, string]
  if (origin === '') throw new Error('checkpoint origin is empty')
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new Error('checkpoint size is not a decimal tree size')
  let root: Uint8Array
  try { root = b64decode(rootText) } catch { throw new Error('checkpoint root is not base64') }
  if (root.length !== 32) throw new Error('checkpoint root is not a SHA-256 hash')
  const signatures: ParsedNote['signatures'] = []
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) throw new Error('checkpoint signature line does not start with an em dash')
    const parts = line.slice(SIG_PREFIX.length).split(' ')
    if (parts.length !== 2 || parts[0] === '') throw new Error('checkpoint signature line is not `— <name> <signature>`')
    let raw: Bytes
    try { raw = b64decode(parts[1] as string) } catch { throw new Error('checkpoint signature is not base64') }
    if (raw.length < 5) throw new Error('checkpoint signature is too short')
    signatures.push({ name: parts[0] as string, keyHash: raw.subarray(0, 4), sig: raw.subarray(4) })
  }
  if (signatures.length === 0) throw new Error('checkpoint note has no signature')
  return { origin, size: Number(sizeText), root, body, signatures }
}

/** The DER bytes of a PEM block. */
export function pemToDer (pem: string): Bytes {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(pem)
  if (m === null) throw new Error('public key is not an SPKI PEM block')
  return b64decode((m[1] as string).replace(/\s+/g, ''))
}

/** C2SP signed-note key hash: the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ raw key). */
export async function noteKeyHash (name: string, rawPublicKey: Uint8Array): Promise<Uint8Array> {
  return (await sha256(enc.encode(name + '\n'), Uint8Array.of(ED25519_TYPE), rawPublicKey)).subarray(0, 4)
}

/**
 * The name of the first signature on the note that verifies with this Ed25519 public key (SPKI
 * PEM), or undefined. The key hash must match too: it binds the name to the key.
 */
export async function verifyNoteSignature (note: ParsedNote, publicKeyPem: string): Promise<string | undefined> {
  const spki = pemToDer(publicKeyPem)
  if (spki.length !== 44) throw new Error('public key is not an Ed25519 SPKI key')
  const raw = spki.subarray(spki.length - 32)
  const key = await crypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, false, ['verify'])
  const message = enc.encode(note.body)
  for (const s of note.signatures) {
    if (s.sig.length !== 64) continue
    if (!equal(s.keyHash, await noteKeyHash(s.name, raw))) continue
    if (await crypto.subtle.verify({ name: 'Ed25519' }, key, s.sig, message)) return s.name
  }
  return undefined
}

/** What GET /v1/console/decisions/<stream>/<seq> returns that the check needs. */
export interface DecisionEvidence {
  record: string
  proof: { tree_size: number, leaf_index: number, hashes: string[] } | null
  checkpoint: { note: string, size: number, root: string, origin: string } | null
  public_key: { pem: string, key_hash_hex?: string, name?: string } | null
}

export type ProofStep = 'unsealed' | 'record' | 'proof' | 'note' | 'size' | 'root' | 'signature' | 'no-key'

export interface ProofResult {
  ok: boolean
  /** The step that failed (or 'unsealed' / 'no-key' when it could not be checked at all). */
  failed?: ProofStep
  detail: string
  size?: number
  origin?: string
  /** Name of the key whose signature verified. */
  keyName?: string
  leafHashHex?: string
  computedRootHex?: string
}

/**
 * The whole check, each step from the bytes: leaf hash of the record, fold the proof, compare
 * with the root in the signed note (not the server's separate `root` field), check the note is
 * for the proof's tree size, then check the note's signature with the public key.
 */
export async function verifyDecisionEvidence (e: DecisionEvidence): Promise<ProofResult> {
  if (e.proof === null || e.checkpoint === null) return { ok: false, failed: 'unsealed', detail: 'This event is newer than the latest signed checkpoint; it has no proof yet.' }
  let note: ParsedNote
  try { note = parseNote(e.checkpoint.note) } catch (err) { return { ok: false, failed: 'note', detail: `The checkpoint note is malformed: ${(err as Error).message}` } }
  if (note.size !== e.proof.tree_size) return { ok: false, failed: 'size', detail: `The proof is for a tree of size ${e.proof.tree_size} but the signed checkpoint is for size ${note.size}.` }
  const leaf = await leafHash(enc.encode(e.record))
  let hashes: Uint8Array[]
  try { hashes = e.proof.hashes.map(b64decode) } catch { return { ok: false, failed: 'proof', detail: 'The proof hashes are not base64.' } }
  const root = await rootFromInclusionProof(e.proof.leaf_index, e.proof.tree_size, leaf, hashes)
  if (root === undefined) return { ok: false, failed: 'proof', detail: 'The inclusion proof has the wrong shape for its leaf index and tree size.', leafHashHex: hex(leaf) }
  if (!equal(root, note.root)) {
    return { ok: false, failed: 'root', detail: 'The root computed from the record and its proof differs from the signed checkpoint root: the record or the proof was altered.', leafHashHex: hex(leaf), computedRootHex: hex(root), size: note.size, origin: note.origin }
  }
  if (e.public_key === null) return { ok: false, failed: 'no-key', detail: 'No public key is known for this log, so the checkpoint signature cannot be checked.', size: note.size, origin: note.origin }
  let keyName: string | undefined
  try { keyName = await verifyNoteSignature(note, e.public_key.pem) } catch (err) { return { ok: false, failed: 'signature', detail: `The public key cannot be used: ${(err as Error).message}` } }
  if (keyName === undefined) return { ok: false, failed: 'signature', detail: 'No signature on the checkpoint verifies with the log\'s public key.', size: note.size, origin: note.origin }
  return { ok: true, detail: 'verified', size: note.size, origin: note.origin, keyName, leafHashHex: hex(leaf), computedRootHex: hex(root) }
}
