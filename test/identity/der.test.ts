/**
 * der.ts: strict-DER field location. Anything not strict DER is undefined (the caller then
 * defers to PKI.js), never a guess.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { certificateLayout, oidToString, readExtensions, readTlv, readValidity } from '../../src/identity/der.js'
import { makeTrustDomain, T0, HOUR } from './support/pki.js'

let td: Awaited<ReturnType<typeof makeTrustDomain>>
before(async () => { td = await makeTrustDomain('example.org') })

test('readTlv: short and long lengths; indefinite, non-minimal, high-tag and overlong forms are refused', () => {
  assert.deepEqual(readTlv(Buffer.from([0x04, 0x01, 0xaa]), 0, 3), { tag: 0x04, start: 0, contentStart: 2, end: 3 })
  const long = Buffer.concat([Buffer.from([0x04, 0x81, 0x80]), Buffer.alloc(0x80)])
  assert.equal(readTlv(long, 0, long.length)?.end, long.length)
  assert.equal(readTlv(Buffer.from([0x30, 0x80, 0x00, 0x00]), 0, 4), undefined, 'indefinite length (BER)')
  assert.equal(readTlv(Buffer.from([0x04, 0x81, 0x01, 0xaa]), 0, 4), undefined, 'long form for a short length')
  assert.equal(readTlv(Buffer.concat([Buffer.from([0x04, 0x82, 0x00, 0x80]), Buffer.alloc(0x80)]), 0, 0x84), undefined, 'leading zero length byte')
  assert.equal(readTlv(Buffer.from([0x1f, 0x01, 0x00]), 0, 3), undefined, 'high tag number')
  assert.equal(readTlv(Buffer.from([0x04, 0x05, 0xaa]), 0, 3), undefined, 'content past the limit')
})

test('oidToString: dotted form; non-minimal subidentifiers refused', () => {
  assert.equal(oidToString(Buffer.from('551d11', 'hex')), '2.5.29.17')
  assert.equal(oidToString(Buffer.from('2a864886f70d01010b', 'hex')), '1.2.840.113549.1.1.11')
  assert.equal(oidToString(Buffer.from('0992268993f22c640119', 'hex')), '0.9.2342.19200300.100.1.25')
  assert.equal(oidToString(Buffer.from('55801d', 'hex')), undefined)
  assert.equal(oidToString(Buffer.from('5586', 'hex')), undefined, 'truncated subidentifier')
})

test('certificateLayout locates the fields node:crypto sees', () => {
  const layout = certificateLayout(td.leaf.der)
  assert.ok(layout !== undefined)
  const node = new X509Certificate(td.leaf.der)
  assert.equal(Buffer.from(layout.serial).toString('hex').toUpperCase().replace(/^0+/, ''), node.serialNumber.toUpperCase().replace(/^0+/, ''))
  assert.ok(node.verify(new X509Certificate(td.intermediate.der).publicKey))
  const v = readValidity(layout.validity)
  assert.deepEqual(v, { notBefore: T0.getTime() - HOUR, notAfter: T0.getTime() + HOUR })
  const exts = readExtensions(layout.extensions as Uint8Array)
  assert.deepEqual(exts?.map((e) => [e.oid, e.critical]), [['2.5.29.19', true], ['2.5.29.35', false], ['2.5.29.37', false], ['2.5.29.15', true], ['2.5.29.17', false]])
  assert.equal(certificateLayout(Buffer.concat([td.leaf.der, Buffer.from([0])])), undefined, 'trailing bytes')
  assert.equal(certificateLayout(td.leaf.der.subarray(0, 100)), undefined, 'truncated')
})
