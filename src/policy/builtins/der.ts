/** A minimal strict DER reader: enough of X.509 to reproduce Go's crypto/x509 field by field. */
export interface Tlv {
  tag: number
  /** Constructed encoding. */
  cons: boolean
  cls: number
  /** Tag number within its class. */
  num: number
  /** Whole element (header + content) and content only. */
  raw: Buffer
  body: Buffer
}

export class DerError extends Error {}

export function readTlv (buf: Buffer, pos = 0): [Tlv, number] {
  if (pos + 2 > buf.length) throw new DerError('truncated')
  const tag = buf[pos] as number
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported')
  let len = buf[pos + 1] as number
  let hdr = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4) throw new DerError('bad length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos + 2 + i] as number)
    if (len < 0x80 || (n > 1 && buf[pos + 2] === 0)) throw new DerError('non-minimal length')
    hdr += n
  }
  const end = pos + hdr + len
  if (end > buf.length) throw new DerError('truncated')
  return [{ tag, cons: (tag & 0x20) !== 0, cls: tag >> 6, num: tag & 0x1f, raw: buf.subarray(pos, end), body: buf.subarray(pos + hdr, end) }, end]
}

export function children (t: Tlv): Tlv[] {
  const out: Tlv[] = []
  let pos = 0
  while (pos < t.body.length) {
    const [c, next] = readTlv(t.body, pos)
    out.push(c)
    pos = next
  }
  return out
}

export function parseOid (body: Buffer): number[] {
  const out: number[] = []
  let v = 0
  for (let i = 0; i < body.length; i++) {
    const b = body[i] as number
    v = v * 128 + (b & 0x7f)
    if ((b & 0x80) === 0) {
      if (out.length === 0) {
        if (v < 40) out.push(0, v); else if (v < 80) out.push(1, v - 40); else out.push(2, v - 80)
      } else out.push(v)
      v = 0
    }
  }
  return out
}

export function bigIntOf (body: Buffer): bigint {
  if (body.length === 0) return 0n
  let v = BigInt('0x' + body.toString('hex'))
  if (((body[0] as number) & 0x80) !== 0) v -= 1n << BigInt(body.length * 8)
  return v
}

export function unsignedOf (body: Buffer): bigint {
  return body.length === 0 ? 0n : BigInt('0x' + body.toString('hex'))
}

/** ASN.1 string types Go reads into Go strings. */
export function stringOf (t: Tlv): string | undefined {
  switch (t.tag) {
    case 0x0c: case 0x13: case 0x16: case 0x12: case 0x1a: case 0x14: return t.body.toString(t.tag === 0x0c ? 'utf8' : 'latin1')
    case 0x1e: {
      let s = ''
      for (let i = 0; i + 1 < t.body.length; i += 2) s += String.fromCharCode(t.body.readUInt16BE(i))
      return s
    }
  }
  return undefined
}

/** UTCTime / GeneralizedTime as RFC 3339 (UTC), the way Go's time.Time marshals. */
export function timeOf (t: Tlv): string {
  const s = t.body.toString('latin1')
  let m: RegExpExecArray | null
  let year: number; let rest: string
  if (t.tag === 0x17) {
    m = /^(\d\d)(\d{10})Z$/.exec(s)
    if (m === null) throw new DerError('bad UTCTime')
    const yy = Number(m[1])
    year = yy >= 50 ? 1900 + yy : 2000 + yy
    rest = m[2] as string
  } else if (t.tag === 0x18) {
    m = /^(\d{4})(\d{10})(\.\d+)?Z$/.exec(s)
    if (m === null) throw new DerError('bad GeneralizedTime')
    year = Number(m[1])
    rest = (m[2] as string)
  } else throw new DerError('not a time')
  const f = (i: number): string => rest.slice(i, i + 2)
  const frac = t.tag === 0x18 && m[3] !== undefined ? m[3].replace(/0+$/, '') : ''
  return `${String(year).padStart(4, '0')}-${f(0)}-${f(2)}T${f(4)}:${f(6)}:${f(8)}${frac === '.' ? '' : frac}Z`
}
