/**
 * Signed checkpoints: C2SP tlog-checkpoint bodies (origin, tree size, base64 root) in C2SP
 * signed-note envelopes with Ed25519 signatures (note signature type 0x01). The format is the
 * one sumdb, Sigstore and transparency-dev witnesses use, so an auditor's existing tools can
 * read it. See docs/audit.md "Checkpoints".
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../../log.js'
import { errnoOf, invalid } from './errors.js'
import { HASH_SIZE } from './tree.js'

export interface Checkpoint {
  origin: string
  size: number
  root: Buffer
  /**
   * The `retained <seq>` extension line: the signer's statement that records below this seq
   * may have been removed by retention (every record from it on is kept). Absent: none removed.
   */
  retained?: number
  /** The full signed note text (body, blank line, signature lines). */
  note: string
}

/** C2SP signed-note: the em dash that starts a signature line. */
const SIG_PREFIX = '\u2014 '
const ED25519_TYPE = 0x01

/** The extension line (C2SP tlog-checkpoint allows lines after the root) that signs retention. */
const RETAINED_RE = /^retained (0|[1-9][0-9]*)$/

/**
 * The checkpoint body: `<origin>\n<size>\n<base64 root>\n`, then `retained <seq>\n` when
 * retention has removed records below `retained` (docs/audit.md "Checkpoints").
 */
export function formatCheckpoint (origin: string, size: number, root: Buffer, retained = 0): string {
  if (origin === '' || /[\n\r]/.test(origin) || origin.startsWith(SIG_PREFIX)) throw invalid(`checkpoint origin ${JSON.stringify(origin)} must be one non-empty line`)
  if (!Number.isSafeInteger(size) || size < 0) throw invalid(`checkpoint size ${size} is not a tree size`)
  if (root.length !== HASH_SIZE) throw invalid('checkpoint root must be 32 bytes')
  if (!Number.isSafeInteger(retained) || retained < 0 || retained > size) throw invalid(`checkpoint retained seq ${retained} must be between 0 and the tree size ${size}`)
  return `${origin}\n${size}\n${root.toString('base64')}\n${retained > 0 ? `retained ${retained}\n` : ''}`
}

/** The raw 32-byte Ed25519 public key of a key object. */
function rawPublicKey (key: KeyObject): Buffer {
  const pub = key.type === 'public' ? key : createPublicKey(key)
  const der = pub.export({ type: 'spki', format: 'der' })
  return der.subarray(der.length - 32)
}

/** C2SP signed-note key hash: first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key). */
export function keyHash (name: string, publicKey: KeyObject): Buffer {
  return createHash('sha256').update(name).update('\n').update(Buffer.from([ED25519_TYPE])).update(rawPublicKey(publicKey)).digest().subarray(0, 4)
}

/**
 * A checkpoint public key (Ed25519, SPKI PEM) as the verifiers read it: the auditor's pinned
 * key or the one stored beside the log. Throws PORTCULLIS_AUDIT_INVALID naming `what`.
 */
export function parseCheckpointPublicKey (pem: string, what = 'the checkpoint public key'): KeyObject {
  let key: KeyObject
  try { key = createPublicKey(pem) } catch (err) {
    throw invalid(`${what} is not a PEM public key: ${(err as Error).message}`)
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(`${what} must be Ed25519, not ${String(key.asymmetricKeyType)}`)
  return key
}

function checkKey (key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(`checkpoint keys must be Ed25519, not ${String(key.asymmetricKeyType)}`)
}

/** Signs a checkpoint body: the returned note is body, blank line, `— <name> <base64(key hash ‖ signature)>`. */
export function signCheckpoint (body: string, privateKeyPem: string | KeyObject, keyName: string): string {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem
  checkKey(key)
  if (keyName === '' || /[\s+]/.test(keyName)) throw invalid(`note key name ${JSON.stringify(keyName)} must be non-empty without spaces or '+'`)
  const sig = sign(null, Buffer.from(body, 'utf8'), key)
  return `${body}\n${SIG_PREFIX}${keyName} ${Buffer.concat([keyHash(keyName, createPublicKey(key)), sig]).toString('base64')}\n`
}

/** Parses a signed checkpoint note (signatures unchecked). Throws PORTCULLIS_AUDIT_INVALID. */
export function parseCheckpoint (note: string): Checkpoint & { body: string, signatures: Array<{ name: string, sig: Buffer }> } {
  const split = note.indexOf('\n\n')
  if (split < 0 || !note.endsWith('\n')) throw invalid('checkpoint note has no signature block')
  const body = note.slice(0, split + 1)
  const lines = body.split('\n')
  // origin, size, root, then '' after the final newline; extension lines are allowed by C2SP
  if (lines.length < 4) throw invalid('checkpoint body needs origin, size and root lines')
  const [origin, sizeText, rootText] = lines as [string, string, string]
  if (origin === '') throw invalid('checkpoint origin is empty')
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw invalid(`checkpoint size ${JSON.stringify(sizeText)} is not a decimal tree size`)
  const root = Buffer.from(rootText, 'base64')
  if (root.length !== HASH_SIZE || root.toString('base64') !== rootText) throw invalid('checkpoint root is not a base64 SHA-256 hash')
  let retained: number | undefined
  for (const ext of lines.slice(3, -1)) {
    if (!ext.startsWith('retained')) continue // other extension lines are the signer's business
    const m = RETAINED_RE.exec(ext)
    if (m === null || retained !== undefined) throw invalid(`checkpoint extension ${JSON.stringify(ext)} is not one \`retained <seq>\` line`)
    retained = Number(m[1])
    if (!Number.isSafeInteger(retained) || retained > Number(sizeText)) throw invalid(`checkpoint retained seq ${m[1] as string} exceeds the tree size`)
  }
  const signatures: Array<{ name: string, sig: Buffer }> = []
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) throw invalid(`checkpoint signature line ${JSON.stringify(line)} does not start with an em dash`)
    const parts = line.slice(SIG_PREFIX.length).split(' ')
    if (parts.length !== 2 || parts[0] === '') throw invalid('checkpoint signature line is not `— <name> <signature>`')
    const sig = Buffer.from(parts[1] as string, 'base64')
    if (sig.length < 5) throw invalid('checkpoint signature is too short')
    signatures.push({ name: parts[0] as string, sig })
  }
  if (signatures.length === 0) throw invalid('checkpoint note has no signature')
  return { origin, size: Number(sizeText), root, ...(retained !== undefined ? { retained } : {}), note, body, signatures }
}

/**
 * Whether the note carries a valid Ed25519 signature by this public key (any key name; the key
 * hash binds the name to the key). Malformed notes are false, not thrown.
 */
export function verifyCheckpoint (note: string, publicKeyPem: string | KeyObject): boolean {
  let parsed
  try { parsed = parseCheckpoint(note) } catch { return false }
  const key = typeof publicKeyPem === 'string' ? createPublicKey(publicKeyPem) : publicKeyPem
  if (key.asymmetricKeyType !== 'ed25519') return false
  for (const s of parsed.signatures) {
    if (s.sig.length !== 4 + 64) continue
    if (!s.sig.subarray(0, 4).equals(keyHash(s.name, key))) continue
    if (verify(null, Buffer.from(parsed.body, 'utf8'), key, s.sig.subarray(4))) return true
  }
  return false
}

/** Whether any of the keys signed the note (after a key rotation a log's checkpoints are signed by several keys, each by one). */
export function signedByAny (note: string, keys: readonly KeyObject[]): boolean {
  return keys.some((k) => verifyCheckpoint(note, k))
}

/** A fresh Ed25519 key pair as PKCS#8 / SPKI PEM. */
export function generateCheckpointKey (): { privateKeyPem: string, publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

/**
 * Splits the append-only checkpoints file into notes: each note is its body lines, one blank
 * line, then one or more signature lines; the next note starts at the first line after them
 * that is not a signature line. A torn final note (no signature yet) is returned as `torn`.
 */
export function splitCheckpointNotes (text: string): { notes: Array<{ note: string, offset: number }>, torn?: { offset: number } } {
  const notes: Array<{ note: string, offset: number }> = []
  let pos = 0
  while (pos < text.length) {
    const blank = text.indexOf('\n\n', pos)
    if (blank < 0) return { notes, torn: { offset: pos } }
    let end = blank + 2
    let sigs = 0
    while (end < text.length && text.startsWith(SIG_PREFIX, end)) {
      const nl = text.indexOf('\n', end)
      if (nl < 0) return { notes, torn: { offset: pos } }
      end = nl + 1
      sigs++
    }
    if (sigs === 0) return { notes, torn: { offset: pos } }
    notes.push({ note: text.slice(pos, end), offset: pos })
    pos = end
  }
  return { notes }
}

/** Most body lines a note may have (origin, size, root and extension lines). */
const MAX_BODY_LINES = 64

/**
 * The last complete note in the tail of a checkpoints file, given as latin1 text (so string
 * indexes are byte offsets). The note's body starts after the previous note's last signature
 * line (no body line starts with an em dash) or at the start of the tail. `start` and `end`
 * are byte offsets in `tail`; bytes after `end` are a torn note.
 */
export function lastNoteInTail (tail: string): { note: string, start: number, end: number } | undefined {
  const sigAt = tail.lastIndexOf('\n\n\u00e2\u0080\u0094 ') // "\n\n— " as UTF-8 bytes read as latin1
  if (sigAt < 0) return undefined
  // the first line of the body: walk back over body lines to the previous note's signature line
  let start = tail.lastIndexOf('\n', sigAt - 1) + 1
  for (let i = 0; i < MAX_BODY_LINES && start > 0; i++) {
    const prev = tail.lastIndexOf('\n', start - 2) + 1
    if (tail.startsWith('\u00e2\u0080\u0094 ', prev)) break
    start = prev
  }
  let end = tail.indexOf('\n', sigAt + 2)
  if (end < 0) {
    // the last note's first signature line is torn: fall back to the note before it
    const before = lastNoteInTail(tail.slice(0, start))
    return before
  }
  end++
  while (tail.startsWith('\u00e2\u0080\u0094 ', end)) {
    const nl = tail.indexOf('\n', end)
    if (nl < 0) break
    end = nl + 1
  }
  return { note: Buffer.from(tail.slice(start, end), 'latin1').toString('utf8'), start, end }
}

/**
 * The public keys that signed a log's earlier checkpoints, after a key rotation
 * (`checkpoint.previous_public_key_files`): each file an Ed25519 key in PEM (a public key, or a
 * private one whose public half is taken). Throws PORTCULLIS_AUDIT_INVALID naming the file.
 */
export async function loadPreviousPublicKeys (files: readonly string[]): Promise<Array<{ file: string, key: KeyObject }>> {
  const out: Array<{ file: string, key: KeyObject }> = []
  for (const file of files) {
    let pem: string
    try { pem = await readFile(file, 'utf8') } catch (err) {
      throw invalid(`cannot read the previous audit checkpoint public key ${file}: ${(err as Error).message}`, { file })
    }
    out.push({ file, key: parseCheckpointPublicKey(pem, `the previous audit checkpoint public key ${file}`) })
  }
  return out
}

/**
 * Loads the checkpoint signing key: the configured PKCS#8 PEM file, else
 * `<dir>/checkpoint-key.pem`, generated (0600, with its public half beside it) when missing.
 */
export async function loadCheckpointKey (dir: string, keyFile: string | undefined, logger: Logger): Promise<KeyObject> {
  let pem: string
  if (keyFile !== undefined) {
    try { pem = await readFile(keyFile, 'utf8') } catch (err) {
      throw invalid(`cannot read the audit checkpoint key ${keyFile}: ${(err as Error).message}`, { file: keyFile })
    }
  } else {
    const file = join(dir, 'checkpoint-key.pem')
    try {
      pem = await readFile(file, 'utf8')
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err
      const pair = generateCheckpointKey()
      try {
        await writeFile(file, pair.privateKeyPem, { mode: 0o600, flag: 'wx' })
        await writeFile(join(dir, 'checkpoint-key.pub.pem'), pair.publicKeyPem, { mode: 0o644 })
        logger.warn({ key: file, publicKey: join(dir, 'checkpoint-key.pub.pem') },
          'generated an audit checkpoint key: auditors must pin checkpoint-key.pub.pem (outside this host) — a key stored beside the log proves nothing by itself')
        pem = pair.privateKeyPem
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw e
        pem = await readFile(file, 'utf8') // another stream's writer generated it first
      }
    }
  }
  let key: KeyObject
  try { key = createPrivateKey(pem) } catch (err) {
    throw invalid(`audit checkpoint key is not a PEM private key: ${(err as Error).message}`, { file: keyFile })
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(`audit checkpoint key must be Ed25519, not ${String(key.asymmetricKeyType)}`, { file: keyFile })
  return key
}
