/**
 * PEM certificate blocks to DER bytes, strictly (identity/pem.ts re-exports it). A module of its
 * own, without pkijs: the server's TLS setup reads CA files with it, and a server without
 * identity configured then never loads the ASN.1 libraries.
 */
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
