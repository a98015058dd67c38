import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { formatCheckpoint, generateCheckpointKey, keyHash, parseCheckpoint, signCheckpoint, splitCheckpointNotes, verifyCheckpoint } from '../../../src/audit/log/checkpoint.js'
import { rootFromLeaves } from '../../../src/audit/log/tree.js'

const root = rootFromLeaves([Buffer.from('a'), Buffer.from('b')])

test('a signed checkpoint is a C2SP signed note: body, blank line, "— name base64(keyhash ‖ sig)"', () => {
  const { privateKeyPem, publicKeyPem } = generateCheckpointKey()
  const body = formatCheckpoint('portcullis/host/main', 2, root)
  assert.equal(body, `portcullis/host/main\n2\n${root.toString('base64')}\n`)
  const note = signCheckpoint(body, privateKeyPem, 'portcullis/host/main')
  const [head, sigLine] = note.split('\n\n')
  assert.equal(head + '\n', body)
  const m = /^\u2014 (\S+) (\S+)\n$/.exec(sigLine ?? '')
  assert.ok(m !== null)
  const sig = Buffer.from(m[2] as string, 'base64')
  assert.equal(sig.length, 68)
  // key hash = SHA-256(name ‖ "\n" ‖ 0x01 ‖ raw Ed25519 key)[:4], computed here independently
  const raw = createPublicKey(publicKeyPem).export({ format: 'jwk' }).x as string
  const expected = createHash('sha256').update('portcullis/host/main\n').update(Buffer.from([1])).update(Buffer.from(raw, 'base64url')).digest().subarray(0, 4)
  assert.deepEqual(sig.subarray(0, 4), expected)
  assert.deepEqual(keyHash('portcullis/host/main', createPublicKey(publicKeyPem)), expected)
  assert.ok(verifyCheckpoint(note, publicKeyPem))
  const parsed = parseCheckpoint(note)
  assert.equal(parsed.size, 2)
  assert.deepEqual(parsed.root, root)
})

test('a changed body, another key or a non-Ed25519 key does not verify', () => {
  const { privateKeyPem, publicKeyPem } = generateCheckpointKey()
  const note = signCheckpoint(formatCheckpoint('o', 2, root), privateKeyPem, 'o')
  assert.equal(verifyCheckpoint(note.replace('\n2\n', '\n3\n'), publicKeyPem), false)
  assert.equal(verifyCheckpoint(note, generateCheckpointKey().publicKeyPem), false)
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  assert.equal(verifyCheckpoint(note, ec.publicKey), false)
  assert.throws(() => signCheckpoint('o\n1\nx\n', ec.privateKey, 'o'), { code: 'PORTCULLIS_AUDIT_INVALID' })
  assert.throws(() => parseCheckpoint('o\n1\n' + root.toString('base64') + '\n'), { code: 'PORTCULLIS_AUDIT_INVALID' })
  assert.throws(() => parseCheckpoint(`o\n01\n${root.toString('base64')}\n\n\u2014 o AAAAAAA=\n`), { code: 'PORTCULLIS_AUDIT_INVALID' })
})

test('notes appended to one file split back, and a torn last note is reported', () => {
  const { privateKeyPem } = generateCheckpointKey()
  const a = signCheckpoint(formatCheckpoint('o', 1, root), privateKeyPem, 'o')
  const b = signCheckpoint(formatCheckpoint('o', 2, root), privateKeyPem, 'o')
  assert.deepEqual(splitCheckpointNotes(a + b).notes.map((n) => n.note), [a, b])
  const torn = splitCheckpointNotes(a + b.slice(0, b.length - 10))
  assert.deepEqual(torn.notes.map((n) => n.note), [a])
  assert.equal(torn.torn?.offset, a.length)
})
