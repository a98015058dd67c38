/**
 * PEM and DER decoding for certificates. Strict: a PEM block must be well-formed base64,
 * and a DER certificate must be exactly one complete ASN.1 structure (no trailing bytes).
 */
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { IdentityError, type ErrorCode } from '../errors.js'

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g
const BASE64_BODY = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Returns the DER bytes of every `CERTIFICATE` block in `text`, in order. Text outside the
 * blocks is ignored (RFC 7468 §5.2 explanatory text); anything else malformed throws.
 */
export function pemCertificates (text: string, what: string, code: ErrorCode = 'PORTCULLIS_IDENTITY_MALFORMED'): Buffer[] {
  const out: Buffer[] = []
  let count = 0
  for (const m of text.matchAll(BLOCK)) {
    count++
    if (m[1] !== 'CERTIFICATE') throw new IdentityError(code, `${what}: PEM block "${m[1] ?? ''}" where a CERTIFICATE was expected`, { what })
    const body = (m[2] ?? '').replace(/\s+/g, '')
    if (body === '' || body.length % 4 !== 0 || !BASE64_BODY.test(body)) throw new IdentityError(code, `${what}: PEM block ${count} is not valid base64`, { what })
    out.push(Buffer.from(body, 'base64'))
  }
  const stray = text.replace(BLOCK, '')
  if (stray.includes('-----BEGIN') || stray.includes('-----END')) throw new IdentityError(code, `${what}: unterminated or mismatched PEM block`, { what })
  if (out.length === 0) throw new IdentityError(code, `${what}: no PEM CERTIFICATE block`, { what })
  return out
}

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
