/**
 * certificate-tree.ts: the node-forge reader (readCertificateFast) reads a certificate only
 * where PKI.js's parse (readCertificate: asn1js + PKI.js's Certificate schema) reads the very
 * same fields and OpenSSL (node's X509Certificate) parses it too; everything else it leaves to
 * readCertificate. x509-svid.ts skips OpenSSL's parse of a leaf the fast reader read, so these
 * properties are what makes that safe. Leaves are generated with @peculiar/x509, then mutated
 * (flips, insertions, truncations of the tbsCertificate) and signed again by their CA, so each
 * is a certificate a trusted CA really signed, whatever its structure.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, sign, X509Certificate } from 'node:crypto'
import * as asn1js from 'asn1js'
import fc from 'fast-check'
import { readCertificateFast } from '../../src/identity/certificate-fast.js'
import { oidString, readCertificate, type CertificateTree, type DerNode } from '../../src/identity/certificate-tree.js'
import { makeLeaf, makeTrustDomain, x509, type Issued } from './support/pki.js'

let intermediate: Issued
const leaves: Issued[] = []

before(async () => {
  const td = await makeTrustDomain('example.org')
  intermediate = td.intermediate
  leaves.push(td.leaf)
  leaves.push(await makeLeaf({ issuer: td.intermediate, dns: ['api.example.org'], ips: ['10.0.0.1'], uris: ['spiffe://example.org/w/1'] }))
  leaves.push(await makeLeaf({ issuer: td.intermediate, subject: 'CN=w1, O=SPIRE, C=US' }))
  leaves.push(await makeLeaf({ issuer: td.intermediate, extra: [new x509.Extension('1.3.6.1.4.1.99999.1', false, new Uint8Array([0x04, 0x02, 0x04, 0x00]))] }))
  leaves.push(await makeLeaf({ issuer: td.intermediate, subject: 'CN=Ünïcode, O=SPIRE' }))
})

/** A tree as comparable data: DER views as hex, the constructed elements' content left out (the readers differ only there). */
function comparable (t: CertificateTree): unknown {
  const node = (n: DerNode | undefined): unknown => n === undefined
    ? undefined
    : { tagClass: n.tagClass, tagNumber: n.tagNumber, constructed: n.constructed, definite: n.definite, content: n.constructed ? undefined : Buffer.from(n.content).toString('hex'), children: n.children?.map(node) }
  const hex = (v: Uint8Array | undefined): string | undefined => v === undefined ? undefined : Buffer.from(v).toString('hex')
  return {
    tbs: hex(t.tbs),
    serial: hex(t.serial),
    issuer: { der: hex(t.issuer.der), node: node(t.issuer.node) },
    subject: { der: hex(t.subject.der), node: node(t.subject.node) },
    notBefore: t.notBefore,
    notAfter: t.notAfter,
    spki: hex(t.subjectPublicKeyInfo),
    extensions: t.extensions.map((e) => ({ extnID: e.extnID, critical: e.critical, value: node(e.value) })),
    signatureOid: t.signatureOid,
    signatureParams: hex(t.signatureParams),
    signature: hex(t.signature),
  }
}

/** DER length octets (X.690 §8.1.3), for re-wrapping a mutated tbsCertificate. */
function tlv (tag: number, content: Uint8Array): Buffer {
  const n = content.byteLength
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
  return Buffer.concat([Buffer.from([tag, ...len]), content])
}

function mutate (der: Buffer, m: { kind: string, at: number, byte: number }): Buffer {
  const b = Buffer.from(der)
  const at = m.at % Math.max(b.length, 1)
  if (m.kind === 'flip') { b[at] = (b[at] as number) ^ (m.byte === 0 ? 1 : m.byte); return b }
  if (m.kind === 'truncate') return b.subarray(0, at)
  if (m.kind === 'insert') return Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)])
  return b
}

/** `leaf` with its tbsCertificate content mutated, re-wrapped and signed by the intermediate. */
function resigned (leaf: Issued, m: { kind: string, at: number, byte: number }): Buffer {
  const cert = asn1js.fromBER(new Uint8Array(leaf.der)).result as asn1js.Sequence
  const [tbs, algorithm] = cert.valueBlock.value as [asn1js.Sequence, asn1js.Sequence]
  const head = tbs.idBlock.blockLength + tbs.lenBlock.blockLength
  const newTbs = tlv(0x30, mutate(Buffer.from(tbs.valueBeforeDecodeView.subarray(head)), m))
  const signature = sign('sha256', newTbs, { key: KeyObject.from(intermediate.keys.privateKey), dsaEncoding: 'der' })
  return tlv(0x30, Buffer.concat([newTbs, Buffer.from(algorithm.valueBeforeDecodeView), tlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]))
}

function opensslParses (der: Uint8Array): boolean {
  try {
    void new X509Certificate(der)
    return true
  } catch {
    return false
  }
}

test('readCertificateFast reads generated SPIFFE leaves field for field as PKI.js\'s parse does', () => {
  for (const leaf of leaves.slice(0, 4)) {
    const fast = readCertificateFast(leaf.der)
    const reference = readCertificate(leaf.der)
    assert.ok(fast !== undefined && reference !== undefined)
    assert.deepEqual(comparable(fast), comparable(reference))
  }
})

test('readCertificateFast leaves a name that is not plain (a UTF8String beyond ASCII) to asn1js', () => {
  assert.equal(readCertificateFast((leaves[4] as Issued).der), undefined)
  assert.notEqual(readCertificate((leaves[4] as Issued).der), undefined)
})

test('readCertificateFast reads a mutated, re-signed leaf only where PKI.js reads the same fields and OpenSSL parses it', () => {
  let read = 0
  let left = 0
  fc.assert(fc.property(
    fc.nat(), fc.record({ kind: fc.constantFrom('flip', 'insert', 'truncate'), at: fc.nat(), byte: fc.nat({ max: 255 }) }),
    (i, m) => {
      const der = resigned(leaves[i % leaves.length] as Issued, m)
      const fast = readCertificateFast(der)
      if (fast === undefined) { left++; return }
      read++
      const reference = readCertificate(der)
      assert.ok(reference !== undefined, `PKI.js refuses what the fast reader read: ${JSON.stringify(m)}`)
      assert.deepEqual(comparable(fast), comparable(reference), JSON.stringify(m))
      assert.ok(opensslParses(der), `OpenSSL refuses what the fast reader read: ${JSON.stringify(m)}`)
    },
  ), { numRuns: 1500, seed: Number(process.env.FC_SEED ?? 20261130) })
  // Both kinds must be met: mutations that keep a readable certificate and ones that do not.
  assert.ok(read > 100, `${read} read`)
  assert.ok(left > 100, `${left} left to asn1js`)
})

test('readCertificateFast leaves non-canonical DER to asn1js: a long-form length where the short form fits', () => {
  const der = Buffer.from((leaves[0] as Issued).der)
  // The outer SEQUENCE's length octets re-encoded with one more octet than needed (0x82 → 0x83 0x00 …).
  assert.equal(der[1], 0x82)
  const padded = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)])
  assert.equal(readCertificateFast(padded), undefined)
})

test('nested OCTET STRINGs in an extension: never a thrown error; past the depth limit the nesting is charged, not followed; too deep for the budget goes to asn1js', async () => {
  const nested = (depth: number): Buffer => {
    let v: Buffer = Buffer.alloc(0)
    for (let i = 0; i < depth; i++) v = tlv(0x04, v)
    return v
  }
  // 40 levels: past the 32-level limit the rest is charged to the node budget unread; what is read equals PKI.js's parse
  const mid = await makeLeaf({ issuer: intermediate, extra: [new x509.Extension('1.2.3.4', false, new Uint8Array(nested(40)))] })
  const fast = readCertificateFast(mid.der)
  const slow = readCertificate(mid.der)
  assert.ok(fast !== undefined && slow !== undefined)
  assert.deepEqual(comparable(fast), comparable(slow))
  // 5000 levels (it overflowed the stack before the limit held across embedded parses): asn1js reads it
  const deep = await makeLeaf({ issuer: intermediate, extra: [new x509.Extension('1.2.3.4', false, new Uint8Array(nested(5000)))] })
  assert.equal(readCertificateFast(deep.der), undefined)
  assert.notEqual(readCertificate(deep.der), undefined)
})

test('a primitive element with tag number 30 of any class (node-forge reads it as a BMPString) leaves the leaf to asn1js', async () => {
  const uri = Buffer.from('spiffe://example.org/zz')
  for (const tag of [0x1e, 0x9e]) { // universal BMPString, context-specific [30]
    const value = tlv(0x30, Buffer.concat([tlv(tag, Buffer.from('AAAABBBB')), tlv(0x86, uri)]))
    const leaf = await makeLeaf({ issuer: intermediate, extra: [new x509.Extension('1.2.3.5', false, new Uint8Array(value))] })
    assert.equal(readCertificateFast(leaf.der), undefined, tag.toString(16))
    assert.notEqual(readCertificate(leaf.der), undefined, tag.toString(16))
  }
})

test('oidString refuses what OpenSSL refuses (empty, unterminated, 0x80-padded subidentifiers) and what node-forge cannot print exactly', () => {
  assert.equal(oidString(Buffer.from([0x55, 0x1d, 0x11])), '2.5.29.17')
  assert.equal(oidString(Buffer.from([0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01])), '1.3.6.1.4.1.99999.1')
  assert.equal(oidString(Buffer.from([0x55, 0x80, 0x1d])), undefined)
  assert.equal(oidString(Buffer.from([0x80, 0x01])), undefined)
  assert.equal(oidString(Buffer.from([0x55, 0x9d])), undefined)
  assert.equal(oidString(Buffer.from([])), undefined)
  // a subidentifier of 8 octets (56 bits) is past what node-forge prints exactly
  assert.equal(oidString(Buffer.from([0x2a, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x01])), undefined)
  assert.equal(oidString(Buffer.from([0x2a, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x01])), '1.2.' + String(((((((1 * 128 + 2) * 128 + 3) * 128 + 4) * 128 + 5) * 128 + 6) * 128) + 1))
})
