/**
 * Locates the fields of a DER certificate (RFC 5280 §4.1) without decoding them: tag, length
 * and offsets of each TLV, so that only what a rule reads is handed to asn1js / PKI.js, and the
 * exact bytes a signature covers (tbsCertificate) are at hand for node:crypto.
 *
 * Strict DER (X.690 §10.1): single-byte tags, definite lengths in their shortest form. Anything
 * else returns undefined and the caller falls back to the full PKI.js parse, which decides.
 */

export interface Tlv {
  tag: number
  /** Offset of the tag byte. */
  start: number
  contentStart: number
  /** Offset just past the content. */
  end: number
}

/** The TLV at `pos`, which must end by `limit`; undefined when it is not strict DER. */
export function readTlv (buf: Uint8Array, pos: number, limit: number): Tlv | undefined {
  if (pos + 2 > limit) return undefined
  const tag = buf[pos] as number
  // High-tag-number form (X.690 §8.1.2.4) never occurs in a certificate's structure.
  if ((tag & 0x1f) === 0x1f) return undefined
  let len = buf[pos + 1] as number
  let contentStart = pos + 2
  if (len >= 0x80) {
    const n = len & 0x7f
    // 0x80 is the indefinite form (BER only); more than 4 length bytes is no certificate.
    if (n === 0 || n > 4 || contentStart + n > limit) return undefined
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + (buf[contentStart + i] as number)
    contentStart += n
    // X.690 §10.1: the shortest form; no leading zero byte, long form only from 128 on.
    if (len < 0x80 || buf[pos + 2] === 0) return undefined
  }
  const end = contentStart + len
  if (end > limit) return undefined
  return { tag, start: pos, contentStart, end }
}

/** The children of a constructed TLV, in order; undefined when any is not strict DER. */
export function children (buf: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = []
  let pos = parent.contentStart
  while (pos < parent.end) {
    const t = readTlv(buf, pos, parent.end)
    if (t === undefined) return undefined
    out.push(t)
    pos = t.end
  }
  return out
}

export interface CertificateLayout {
  /** tbsCertificate, tag and length included: the bytes the issuer signed. */
  tbs: Uint8Array
  /** serialNumber INTEGER content. */
  serial: Uint8Array
  issuer: Uint8Array
  subject: Uint8Array
  validity: Uint8Array
  subjectPublicKeyInfo: Uint8Array
  /** The SEQUENCE OF Extension inside [3], when present. */
  extensions?: Uint8Array
  /** signatureAlgorithm (outer): OID content bytes in hex, and whether parameters follow. */
  signatureOid: string
  signatureParams?: Uint8Array
  /** signatureValue without the unused-bits byte. */
  signature: Uint8Array
}

const SEQUENCE = 0x30

function algorithm (buf: Uint8Array, t: Tlv): { oid: string, params?: Uint8Array } | undefined {
  const parts = children(buf, t)
  if (parts === undefined || parts.length < 1 || parts.length > 2 || parts[0]?.tag !== 0x06) return undefined
  const oid = Buffer.from(buf.subarray(parts[0].contentStart, parts[0].end)).toString('hex')
  const p = parts[1]
  return p === undefined ? { oid } : { oid, params: buf.subarray(p.start, p.end) }
}

/**
 * Splits a DER certificate into the fields the X.509-SVID checks read. Views share `der`'s
 * memory. Undefined when the bytes are not one strict-DER certificate with the v1–v3 layout.
 */
export function certificateLayout (der: Uint8Array): CertificateLayout | undefined {
  const cert = readTlv(der, 0, der.byteLength)
  if (cert === undefined || cert.tag !== SEQUENCE || cert.end !== der.byteLength) return undefined
  const top = children(der, cert)
  if (top === undefined || top.length !== 3) return undefined
  const [tbsTlv, algTlv, sigTlv] = top as [Tlv, Tlv, Tlv]
  if (tbsTlv.tag !== SEQUENCE || algTlv.tag !== SEQUENCE || sigTlv.tag !== 0x03) return undefined
  const alg = algorithm(der, algTlv)
  // A BIT STRING signature with unused bits is no signature a CA produces.
  if (alg === undefined || sigTlv.end - sigTlv.contentStart < 2 || der[sigTlv.contentStart] !== 0) return undefined
  const fields = children(der, tbsTlv)
  if (fields === undefined) return undefined
  let i = 0
  if (fields[0]?.tag === 0xa0) i++ // [0] version
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  const expected = [0x02, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE]
  if (fields.length < i + expected.length) return undefined
  for (const [k, tag] of expected.entries()) if (fields[i + k]?.tag !== tag) return undefined
  const at = (k: number): Uint8Array => { const f = fields[i + k] as Tlv; return der.subarray(f.start, f.end) }
  const layout: CertificateLayout = {
    tbs: der.subarray(tbsTlv.start, tbsTlv.end),
    serial: der.subarray((fields[i] as Tlv).contentStart, (fields[i] as Tlv).end),
    issuer: at(2),
    validity: at(3),
    subject: at(4),
    subjectPublicKeyInfo: at(5),
    signatureOid: alg.oid,
    signature: der.subarray(sigTlv.contentStart + 1, sigTlv.end),
  }
  if (alg.params !== undefined) layout.signatureParams = alg.params
  // Optional [1] issuerUniqueID, [2] subjectUniqueID (primitive or constructed), then [3] extensions.
  let rest = i + expected.length
  const optional = [[0x81, 0xa1], [0x82, 0xa2]]
  for (const tags of optional) if (fields[rest] !== undefined && tags.includes((fields[rest] as Tlv).tag)) rest++
  const ext = fields[rest]
  if (ext !== undefined) {
    if (ext.tag !== 0xa3) return undefined
    const inner = children(der, ext)
    if (inner === undefined || inner.length !== 1 || inner[0]?.tag !== SEQUENCE) return undefined
    layout.extensions = der.subarray(inner[0].start, inner[0].end)
    rest++
  }
  if (rest !== fields.length) return undefined
  return layout
}

/** Dotted form of an OBJECT IDENTIFIER's content (X.690 §8.19); undefined when not minimal DER. */
export function oidToString (content: Uint8Array): string | undefined {
  const arcs: number[] = []
  let v = 0
  let fresh = true
  for (const b of content) {
    // X.690 §8.19.2: no leading 0x80 octet in a subidentifier.
    if (fresh && b === 0x80) return undefined
    if (v > 2 ** 45) return undefined
    v = v * 128 + (b & 0x7f)
    fresh = (b & 0x80) === 0
    if (fresh) { arcs.push(v); v = 0 }
  }
  if (!fresh || arcs.length === 0) return undefined
  const first = arcs[0] as number
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80]
  return [...head, ...arcs.slice(1)].join('.')
}

/** One Extension (RFC 5280 §4.1): its OID, criticality and extnValue content. */
export interface RawExtension {
  oid: string
  critical: boolean
  value: Uint8Array
}

/**
 * The Extensions SEQUENCE as a list, in order; undefined when any entry is not the strict DER
 * shape SEQUENCE { OID, BOOLEAN (0x00 / 0xFF) optional, OCTET STRING }.
 */
export function readExtensions (buf: Uint8Array): RawExtension[] | undefined {
  const seq = readTlv(buf, 0, buf.byteLength)
  if (seq === undefined || seq.tag !== SEQUENCE || seq.end !== buf.byteLength) return undefined
  const items = children(buf, seq)
  if (items === undefined) return undefined
  const out: RawExtension[] = []
  for (const item of items) {
    if (item.tag !== SEQUENCE) return undefined
    const parts = children(buf, item)
    if (parts === undefined || parts.length < 2 || parts.length > 3 || parts[0]?.tag !== 0x06) return undefined
    const oid = oidToString(buf.subarray(parts[0].contentStart, parts[0].end))
    if (oid === undefined) return undefined
    let critical = false
    if (parts.length === 3) {
      const b = parts[1] as Tlv
      if (b.tag !== 0x01 || b.end - b.contentStart !== 1) return undefined
      const octet = buf[b.contentStart]
      if (octet !== 0x00 && octet !== 0xff) return undefined
      critical = octet === 0xff
    }
    const v = parts[parts.length - 1] as Tlv
    if (v.tag !== 0x04) return undefined
    out.push({ oid, critical, value: buf.subarray(v.contentStart, v.end) })
  }
  return out
}

/** UTCTime / GeneralizedTime in the RFC 5280 §4.1.2.5 forms (seconds, "Z"); undefined otherwise. */
export function readTime (buf: Uint8Array, t: Tlv): number | undefined {
  const s = Buffer.from(buf.subarray(t.contentStart, t.end)).toString('latin1')
  let m: RegExpExecArray | null
  let year: number
  if (t.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)) !== null) {
    const yy = Number(m[1])
    // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
    year = yy >= 50 ? 1900 + yy : 2000 + yy
  } else if (t.tag === 0x18 && (m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)) !== null) {
    year = Number(m[1])
  } else {
    return undefined
  }
  const [mo, d, h, mi, se] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])]
  // Date.UTC reads years 0–99 as 1900–1999; no certificate of interest is that old.
  if (year < 1950 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return undefined
  return Date.UTC(year, mo - 1, d, h, mi, se)
}

/** notBefore and notAfter of a Validity SEQUENCE. */
export function readValidity (validity: Uint8Array): { notBefore: number, notAfter: number } | undefined {
  const seq = readTlv(validity, 0, validity.byteLength)
  if (seq === undefined) return undefined
  const parts = children(validity, seq)
  if (parts === undefined || parts.length !== 2) return undefined
  const notBefore = readTime(validity, parts[0] as Tlv)
  const notAfter = readTime(validity, parts[1] as Tlv)
  return notBefore === undefined || notAfter === undefined ? undefined : { notBefore, notAfter }
}
