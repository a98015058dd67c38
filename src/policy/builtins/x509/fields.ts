/**
 * crypto.x509.* DER/ASN.1 field readers shared by certificate and CSR parsing: OID and algorithm
 * tables, AlgorithmIdentifier, pkix.Name, SubjectPublicKeyInfo, general names (SANs), name
 * constraints, and Go url.URL for URI SANs, each as Go's encoding/json marshals it.
 */
import { children, DerError, parseOid, readTlv, stringOf, unsignedOf, type Tlv } from '../der.js'
import { formatAddr } from '../net.js'
import { parseUrl } from '../uri.js'

export const oidStr = (o: number[]): string => o.join('.')
export const b64 = (b: Buffer): string => b.toString('base64')

const SIG_ALGS: Record<string, number> = {
  '1.2.840.113549.1.1.2': 1, '1.2.840.113549.1.1.4': 2, '1.2.840.113549.1.1.5': 3, '1.3.14.3.2.29': 3, '1.2.840.113549.1.1.11': 4, '1.2.840.113549.1.1.12': 5,
  '1.2.840.113549.1.1.13': 6, '1.2.840.10040.4.3': 7, '2.16.840.1.101.3.4.3.2': 8, '1.2.840.10045.4.1': 9, '1.2.840.10045.4.3.2': 10, '1.2.840.10045.4.3.3': 11,
  '1.2.840.10045.4.3.4': 12, '1.3.101.112': 16,
}
const PSS_HASH: Record<string, number> = { '2.16.840.1.101.3.4.2.1': 13, '2.16.840.1.101.3.4.2.2': 14, '2.16.840.1.101.3.4.2.3': 15 }
export const PK_ALGS: Record<string, number> = { '1.2.840.113549.1.1.1': 1, '1.2.840.10040.4.1': 2, '1.2.840.10045.2.1': 3, '1.3.101.112': 4 }
export const EKU: Record<string, number> = {
  '2.5.29.37.0': 0, '1.3.6.1.5.5.7.3.1': 1, '1.3.6.1.5.5.7.3.2': 2, '1.3.6.1.5.5.7.3.3': 3, '1.3.6.1.5.5.7.3.4': 4, '1.3.6.1.5.5.7.3.5': 5,
  '1.3.6.1.5.5.7.3.6': 6, '1.3.6.1.5.5.7.3.7': 7, '1.3.6.1.5.5.7.3.8': 8, '1.3.6.1.5.5.7.3.9': 9, '1.3.6.1.4.1.311.10.3.3': 10,
  '2.16.840.1.113730.4.1': 11, '1.3.6.1.4.1.311.2.1.22': 12, '1.3.6.1.4.1.311.61.1.1': 13,
}
export const HANDLED_EXT = new Set(['2.5.29.15', '2.5.29.19', '2.5.29.17', '2.5.29.30', '2.5.29.31', '2.5.29.32', '2.5.29.35', '2.5.29.14', '2.5.29.37', '1.3.6.1.5.5.7.1.1', '2.5.29.33', '2.5.29.36', '2.5.29.54'])

export function expect (t: Tlv, tag: number): Tlv {
  if (t.tag !== tag) throw new DerError(`unexpected tag ${t.tag}`)
  return t
}

export function sigAlg (algId: Tlv): number {
  const [o, params] = children(algId)
  const oid = oidStr(parseOid(expect(o as Tlv, 6).body))
  if (oid === '1.2.840.113549.1.1.10' && params !== undefined) {
    const hashAlg = children(params).find((c) => c.tag === 0xa0)
    const h = hashAlg !== undefined ? oidStr(parseOid((children(children(hashAlg)[0] as Tlv)[0] as Tlv).body)) : ''
    return PSS_HASH[h] ?? 0
  }
  return SIG_ALGS[oid] ?? 0
}

/** pkix.Name from an RDNSequence (Go FillFromRDNSequence). */
export function pkixName (rdns: Tlv): Record<string, unknown> {
  const name: Record<string, unknown> = {
    Country: null, Organization: null, OrganizationalUnit: null, Locality: null, Province: null, StreetAddress: null, PostalCode: null,
    SerialNumber: '', CommonName: '', Names: [], ExtraNames: null,
  }
  const names: unknown[] = []
  const push = (k: string, v: string): void => { (name[k] = (name[k] as string[] | null) ?? []); (name[k] as string[]).push(v) }
  for (const set of children(rdns)) {
    for (const atv of children(set)) {
      const [t, v] = children(atv) as [Tlv, Tlv]
      const type = parseOid(t.body)
      const value = stringOf(v)
      names.push({ Type: type, Value: value ?? null })
      if (value === undefined) continue
      const o = oidStr(type)
      switch (o) {
        case '2.5.4.3': name.CommonName = value; break
        case '2.5.4.5': name.SerialNumber = value; break
        case '2.5.4.6': push('Country', value); break
        case '2.5.4.7': push('Locality', value); break
        case '2.5.4.8': push('Province', value); break
        case '2.5.4.9': push('StreetAddress', value); break
        case '2.5.4.10': push('Organization', value); break
        case '2.5.4.11': push('OrganizationalUnit', value); break
        case '2.5.4.17': push('PostalCode', value); break
      }
    }
  }
  name.Names = names.length > 0 ? names : null
  return name
}

const CURVE_BYTES: Record<string, number> = { '1.2.840.10045.3.1.7': 32, '1.3.132.0.34': 48, '1.3.132.0.35': 66 }

/** The public key as Go's *rsa.PublicKey / *ecdsa.PublicKey / ed25519.PublicKey marshal, read straight from the SPKI. */
export function publicKeyJson (alg: number, spki: Tlv): unknown {
  try {
    const [algId, bits] = children(spki) as [Tlv, Tlv]
    const key = bits.body.subarray(1)
    if (alg === 1) {
      const [n, e] = children(readTlv(key)[0]) as [Tlv, Tlv]
      return { N: unsignedOf(n.body), E: Number(unsignedOf(e.body)) }
    }
    if (alg === 3) {
      const curve = oidStr(parseOid((children(algId)[1] as Tlv).body))
      const size = CURVE_BYTES[curve]
      if (size === undefined || key[0] !== 4 || key.length !== 1 + 2 * size) return null
      return { Curve: {}, X: unsignedOf(key.subarray(1, 1 + size)), Y: unsignedOf(key.subarray(1 + size)) }
    }
    if (alg === 4) return b64(key)
  } catch {
    return null
  }
  return null
}

/** Go url.Parse of a URI SAN, as url.URL marshals (a SAN Go cannot parse makes the certificate invalid). */
export function goUrl (s: string): Record<string, unknown> {
  const u = parseUrl(s)
  return {
    Scheme: u.scheme, Opaque: u.opaque, User: u.user ? {} : null, Host: u.host, Path: u.path, RawPath: u.rawPath, OmitHost: u.omitHost,
    ForceQuery: u.forceQuery, RawQuery: u.rawQuery, Fragment: u.fragment, RawFragment: u.rawFragment,
  }
}

function ipNet (b: Buffer): Record<string, unknown> | undefined {
  if (b.length === 8) return { IP: formatAddr({ v: 4, n: unsignedOf(b.subarray(0, 4)) }), Mask: b64(b.subarray(4)) }
  if (b.length === 32) return { IP: formatAddr({ v: 6, n: unsignedOf(b.subarray(0, 16)) }), Mask: b64(b.subarray(16)) }
  return undefined
}

/** Name constraints (RFC 5280 4.2.1.10) into Go's Permitted... and Excluded... fields. */
export function nameConstraints (v: Tlv, critical: boolean, out: Record<string, unknown>): void {
  out.PermittedDNSDomainsCritical = critical
  for (const part of children(v)) {
    const kind = part.tag === 0xa0 ? 'Permitted' : part.tag === 0xa1 ? 'Excluded' : undefined
    if (kind === undefined) continue
    const dns: string[] = []; const ips: unknown[] = []; const emails: string[] = []; const uris: string[] = []
    for (const subtree of children(part)) {
      const base = children(subtree)[0]
      if (base === undefined) continue
      if (base.tag === 0x82) dns.push(base.body.toString('latin1'))
      else if (base.tag === 0x87) { const n = ipNet(base.body); if (n !== undefined) ips.push(n) } else if (base.tag === 0x81) emails.push(base.body.toString('latin1'))
      else if (base.tag === 0x86) uris.push(base.body.toString('latin1'))
    }
    if (dns.length > 0) out[`${kind}DNSDomains`] = dns
    if (ips.length > 0) out[`${kind}IPRanges`] = ips
    if (emails.length > 0) out[`${kind}EmailAddresses`] = emails
    if (uris.length > 0) out[`${kind}URIDomains`] = uris
  }
}

export function generalNames (body: Tlv, out: { dns: string[], email: string[], ip: string[], uri: string[] }): void {
  for (const gn of children(body)) {
    switch (gn.tag) {
      case 0x82: out.dns.push(gn.body.toString('latin1')); break
      case 0x81: out.email.push(gn.body.toString('latin1')); break
      case 0x86: out.uri.push(gn.body.toString('latin1')); break
      case 0x87:
        if (gn.body.length === 4) out.ip.push(formatAddr({ v: 4, n: unsignedOf(gn.body) }))
        else if (gn.body.length === 16) out.ip.push(formatAddr({ v: 6, n: unsignedOf(gn.body) }))
        break
    }
  }
}
