/**
 * The console's browser-side verifier (ui/src/verify.ts, WebCrypto) against the server's own
 * tree and checkpoint code (src/audit/log/tree.ts, checkpoint.ts): the same records, proofs and
 * signed notes must verify in both, and every tampering the server rejects the browser rejects.
 * Node's WebCrypto stands in for the browser's here; test/console/browser.test.ts runs it in Chromium.
 */
import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { describe, it } from 'node:test'
import { formatCheckpoint, generateCheckpointKey, keyHash, signCheckpoint, verifyCheckpoint } from '../../src/audit/log/checkpoint.js'
import { CompactRange, inclusionProof, leafHash as serverLeafHash, memoryHashReader, verifyInclusion } from '../../src/audit/log/tree.js'
import { recordText } from '../../src/audit/log/layout.js'
import { b64encode, hex, leafHash, noteKeyHash, parseNote, pemToDer, rootFromInclusionProof, verifyDecisionEvidence, verifyNoteSignature, type DecisionEvidence } from '../../ui/src/verify.js'

/** A tree of `n` audit records the way the writer stores them: stored hashes in tlog order. */
function tree (n: number): { records: string[], stored: Buffer[], range: CompactRange } {
  const records: string[] = []
  const stored: Buffer[] = []
  const range = new CompactRange()
  for (let seq = 0; seq < n; seq++) {
    const rec = recordText(seq, JSON.stringify({ decision_id: `d-${seq}`, path: 'authz/allow', result: seq % 3 === 0, note: 'ünïcode ✓' }))
    records.push(rec)
    stored.push(...range.append(serverLeafHash(Buffer.from(rec, 'utf8'))))
  }
  return { records, stored, range }
}

const key = generateCheckpointKey()

function evidence (n: number, index: number, name = 'portcullis-test'): DecisionEvidence & { t: ReturnType<typeof tree> } {
  const t = tree(n)
  const root = t.range.root()
  const note = signCheckpoint(formatCheckpoint('portcullis.test/audit/main', n, root), key.privateKeyPem, name)
  const proof = inclusionProof(index, n, memoryHashReader(t.stored))
  return {
    t,
    record: t.records[index] as string,
    proof: { tree_size: n, leaf_index: index, hashes: proof.map((h) => h.toString('base64')) },
    checkpoint: { note, size: n, root: root.toString('base64'), origin: 'portcullis.test/audit/main' },
    public_key: { pem: key.publicKeyPem, name },
  }
}

describe('ui verify module agrees with the server', () => {
  it('leaf hashes equal the server leaf hashes', async () => {
    for (const rec of tree(5).records) {
      assert.equal(hex(await leafHash(new TextEncoder().encode(rec))), serverLeafHash(Buffer.from(rec, 'utf8')).toString('hex'))
    }
  })

  it('folds every inclusion proof of trees of size 1..33 to the server root', async () => {
    for (let n = 1; n <= 33; n++) {
      const t = tree(n)
      const root = t.range.root()
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(m, n, memoryHashReader(t.stored))
        const leaf = serverLeafHash(Buffer.from(t.records[m] as string, 'utf8'))
        assert.equal(verifyInclusion(m, n, leaf, proof, root), true)
        const got = await rootFromInclusionProof(m, n, new Uint8Array(leaf), proof.map((p) => new Uint8Array(p)))
        assert.ok(got !== undefined, `n=${n} m=${m}`)
        assert.equal(hex(got), root.toString('hex'), `n=${n} m=${m}`)
      }
    }
  })

  it('rejects proofs with the wrong shape', async () => {
    const t = tree(6)
    const proof = inclusionProof(2, 6, memoryHashReader(t.stored)).map((p) => new Uint8Array(p))
    const leaf = new Uint8Array(serverLeafHash(Buffer.from(t.records[2] as string)))
    assert.equal(await rootFromInclusionProof(2, 6, leaf, proof.slice(1)), undefined)
    assert.equal(await rootFromInclusionProof(6, 6, leaf, proof), undefined)
    assert.equal(await rootFromInclusionProof(-1, 6, leaf, proof), undefined)
  })

  it('parses the server note and computes the same key hash', async () => {
    const e = evidence(7, 3)
    const note = parseNote(e.checkpoint!.note)
    assert.equal(note.size, 7)
    assert.equal(note.origin, 'portcullis.test/audit/main')
    assert.equal(b64encode(note.root), e.checkpoint!.root)
    const raw = pemToDer(key.publicKeyPem).subarray(12)
    assert.equal(hex(await noteKeyHash('portcullis-test', raw)), keyHash('portcullis-test', createPublicKey(key.publicKeyPem)).toString('hex'))
    assert.equal(await verifyNoteSignature(note, key.publicKeyPem), 'portcullis-test')
  })

  it('verifies a real record, proof and signed note end to end', async () => {
    for (const [n, m] of [[1, 0], [4, 3], [13, 6], [33, 32]] as const) {
      const r = await verifyDecisionEvidence(evidence(n, m))
      assert.equal(r.ok, true, r.detail)
      assert.equal(r.size, n)
      assert.equal(r.keyName, 'portcullis-test')
    }
  })

  it('fails at the root step when one byte of the record changes', async () => {
    const e = evidence(9, 4)
    const rec = e.record.replace('"result":false', '"result":true ')
    assert.notEqual(rec, e.record)
    const r = await verifyDecisionEvidence({ ...e, record: rec })
    assert.equal(r.ok, false)
    assert.equal(r.failed, 'root')
  })

  it('fails at the root step when a proof hash changes', async () => {
    const e = evidence(9, 4)
    const h = Buffer.from(e.proof!.hashes[0] as string, 'base64')
    h[0] = (h[0] as number) ^ 1
    const r = await verifyDecisionEvidence({ ...e, proof: { ...e.proof!, hashes: [h.toString('base64'), ...e.proof!.hashes.slice(1)] } })
    assert.equal(r.failed, 'root')
  })

  it('fails at the signature step for another key, a forged signature or a renamed key', async () => {
    const e = evidence(5, 1)
    const other = generateCheckpointKey()
    assert.equal((await verifyDecisionEvidence({ ...e, public_key: { pem: other.publicKeyPem } })).failed, 'signature')
    // the note re-signed by another key: the server rejects it with our key, so must the browser
    const body = parseNote(e.checkpoint!.note).body
    const forged = signCheckpoint(body, other.privateKeyPem, 'portcullis-test')
    assert.equal(verifyCheckpoint(forged, key.publicKeyPem), false)
    assert.equal((await verifyDecisionEvidence({ ...e, checkpoint: { ...e.checkpoint!, note: forged } })).failed, 'signature')
    // same signature bytes, another key name: the key hash no longer matches
    const renamed = e.checkpoint!.note.replace('\u2014 portcullis-test ', '\u2014 someone-else ')
    assert.equal(verifyCheckpoint(renamed, key.publicKeyPem), false)
    assert.equal((await verifyDecisionEvidence({ ...e, checkpoint: { ...e.checkpoint!, note: renamed } })).failed, 'signature')
  })

  it('fails when the note body is altered after signing (a different root)', async () => {
    const e = evidence(5, 1)
    const other = tree(6).range.root().toString('base64')
    const note = e.checkpoint!.note.replace(e.checkpoint!.root, other)
    assert.equal(verifyCheckpoint(note, key.publicKeyPem), false)
    assert.equal((await verifyDecisionEvidence({ ...e, checkpoint: { ...e.checkpoint!, note } })).failed, 'root')
  })

  it('reports unsealed events, size mismatches, malformed notes and a missing key', async () => {
    const e = evidence(5, 1)
    assert.equal((await verifyDecisionEvidence({ ...e, proof: null, checkpoint: null })).failed, 'unsealed')
    assert.equal((await verifyDecisionEvidence({ ...e, proof: { ...e.proof!, tree_size: 6 } })).failed, 'size')
    assert.equal((await verifyDecisionEvidence({ ...e, checkpoint: { ...e.checkpoint!, note: 'garbage' } })).failed, 'note')
    assert.equal((await verifyDecisionEvidence({ ...e, public_key: null })).failed, 'no-key')
  })
})
