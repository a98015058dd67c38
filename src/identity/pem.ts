/**
 * PEM and DER decoding for certificates. Strict: a PEM block must be well-formed base64,
 * and a DER certificate must be exactly one complete ASN.1 structure (no trailing bytes).
 */
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { IdentityError, type ErrorCode } from '../errors.js'

export { pemCertificates } from './pem-blocks.js'

/** Parses one DER certificate with PKI.js; throws `code` when it is not exactly one certificate. */
export function parseCertificateDer (der: Uint8Array, what: string, code: ErrorCode = 'PORTCULLIS_IDENTITY_MALFORMED'): pkijs.Certificate {
  const bytes = new Uint8Array(der.buffer, der.byteOffset, der.byteLength)
  const asn = asn1js.fromBER(bytes)
  if (asn.offset === -1 || asn.offset !== bytes.byteLength) {
    throw new IdentityError(code, `${what}: not a DER certificate${asn.offset === -1 ? '' : ' (trailing bytes)'}`, { what })
  }
  try {
    return new pkijs.Certificate({ schema: asn.result })
  } catch (err) {
    throw new IdentityError(code, `${what}: not an X.509 certificate (${(err as Error).message})`, { what }, { cause: err })
  }
}

/** Encodes DER as a PEM CERTIFICATE block. */
export function derToPem (der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`
}
