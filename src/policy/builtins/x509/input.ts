/**
 * crypto.x509.* inputs: strict base64, PEM blocks, and OPA's getX509CertsFromString (PEM, or
 * base64 of DER or of PEM) into parsed certificates.
 */
import { BuiltinError } from '../types.js'
import { readTlv } from '../der.js'
import { pemDecode } from '../pem.js'
import { parseCertificate, type ParsedCert } from './certificate.js'

/** Go x509.ParseCertificates over concatenated DER. */
function parseCertificates (b: string, der: Buffer): ParsedCert[] {
  const out: ParsedCert[] = []
  let pos = 0
  try {
    while (pos < der.length) {
      const [t, next] = readTlv(der, pos)
      out.push(parseCertificate(t.raw))
      pos = next
    }
  } catch (err) {
    throw new BuiltinError(b, `x509: malformed certificate (${(err as Error).message})`)
  }
  return out
}

export function strictBase64 (b: string, s: string): Buffer {
  const clean = s.replace(/[\r\n]/g, '')
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new BuiltinError(b, 'illegal base64 data')
  return Buffer.from(clean, 'base64')
}

function pemBlocksDer (input: string): Buffer {
  const parts: Buffer[] = []
  let rest = input
  for (;;) {
    const blk = pemDecode(rest)
    if (blk === undefined) break
    parts.push(blk.bytes)
    rest = blk.rest
  }
  return Buffer.concat(parts)
}

/** OPA getX509CertsFromString: PEM, or base64 of DER or of PEM. */
export function certsFromString (b: string, s: string): ParsedCert[] {
  if (s.startsWith('-----BEGIN')) return parseCertificates(b, pemBlocksDer(s))
  const raw = strictBase64(b, s)
  if (raw.subarray(0, 10).toString('latin1') === '-----BEGIN') return parseCertificates(b, pemBlocksDer(raw.toString('latin1')))
  return parseCertificates(b, raw)
}
