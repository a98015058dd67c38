/** PEM/DER decoding. The certificate is generated in setup with @peculiar/x509. */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { derToPem, parseCertificateDer, pemCertificates } from '../../src/identity/pem.js'
import { makeCa, type Issued } from './support/pki.js'

let ca: Issued
before(async () => { ca = await makeCa({ name: 'pem test' }) })

test('round trip DER → PEM → DER, with explanatory text around blocks', () => {
  const pem = `subject=CN=x\n${derToPem(ca.der)}trailing text\n${derToPem(ca.der)}`
  const ders = pemCertificates(pem, 'test')
  assert.equal(ders.length, 2)
  assert.ok(ders[0]?.equals(ca.der))
  assert.equal(parseCertificateDer(ca.der, 'test').serialNumber.valueBlock.valueHexView.length > 0, true)
})

test('malformed PEM and DER are MALFORMED', () => {
  const code = 'PORTCULLIS_IDENTITY_MALFORMED'
  for (const bad of ['', 'hello', '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\n' + ca.der.toString('base64'), '-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE REQUEST-----']) {
    assert.throws(() => pemCertificates(bad, 'test'), { code }, bad)
  }
  assert.throws(() => pemCertificates('-----BEGIN EC PRIVATE KEY-----\nQUJD\n-----END EC PRIVATE KEY-----\n', 'test'), { code })
  assert.throws(() => parseCertificateDer(Buffer.from([0x30, 0x00]), 'test'), { code })
  assert.throws(() => parseCertificateDer(Buffer.concat([ca.der, Buffer.from([0x00])]), 'test'), { code })
  assert.throws(() => parseCertificateDer(Buffer.from('garbage'), 'test', 'PORTCULLIS_IDENTITY_BUNDLE_INVALID'), { code: 'PORTCULLIS_IDENTITY_BUNDLE_INVALID' })
})
