/**
 * crypto.x509.* and crypto.parse_private_keys (OPA v1/topdown/crypto.go). Certificates are
 * parsed from DER here, field by field, into the JSON Go's encoding/json makes of an
 * x509.Certificate (plus OPA's URIStrings), so policies see exactly the shapes `opa eval` prints.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import type { BuiltinSpec, EvalContext } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { ExactNumber, stringifyExact } from './exact-json.js'
import { isNum, isObj, str } from './args.js'
import { bigIntOf, children, DerError, parseOid, readTlv, stringOf, timeOf, unsignedOf, type Tlv } from './der.js'
import { formatAddr } from './net.js'
import { pemDecode } from './pem.js'
import { parseUrl } from './uri.js'

const oidStr = (o: number[]): string => o.join('.')
const b64 = (b: Buffer): string => b.toString('base64')
const b64url2big = (s: string): bigint => BigInt('0x' + (Buffer.from(s, 'base64url').toString('hex') || '0'))

const SIG_ALGS: Record<string, number> = {
  '1.2.840.113549.1.1.2': 1, '1.2.840.113549.1.1.4': 2, '1.2.840.113549.1.1.5': 3, '1.3.14.3.2.29': 3, '1.2.840.113549.1.1.11': 4, '1.2.840.113549.1.1.12': 5,
  '1.2.840.113549.1.1.13': 6, '1.2.840.10040.4.3': 7, '2.16.840.1.101.3.4.3.2': 8, '1.2.840.10045.4.1': 9, '1.2.840.10045.4.3.2': 10, '1.2.840.10045.4.3.3': 11,
  '1.2.840.10045.4.3.4': 12, '1.3.101.112': 16,
}
const PSS_HASH: Record<string, number> = { '2.16.840.1.101.3.4.2.1': 13, '2.16.840.1.101.3.4.2.2': 14, '2.16.840.1.101.3.4.2.3': 15 }
const PK_ALGS: Record<string, number> = { '1.2.840.113549.1.1.1': 1, '1.2.840.10040.4.1': 2, '1.2.840.10045.2.1': 3, '1.3.101.112': 4 }
const EKU: Record<string, number> = {
  '2.5.29.37.0': 0, '1.3.6.1.5.5.7.3.1': 1, '1.3.6.1.5.5.7.3.2': 2, '1.3.6.1.5.5.7.3.3': 3, '1.3.6.1.5.5.7.3.4': 4, '1.3.6.1.5.5.7.3.5': 5,
  '1.3.6.1.5.5.7.3.6': 6, '1.3.6.1.5.5.7.3.7': 7, '1.3.6.1.5.5.7.3.8': 8, '1.3.6.1.5.5.7.3.9': 9, '1.3.6.1.4.1.311.10.3.3': 10,
  '2.16.840.1.113730.4.1': 11, '1.3.6.1.4.1.311.2.1.22': 12, '1.3.6.1.4.1.311.61.1.1': 13,
}
const EKU_NAMES: Record<string, number> = {
  KeyUsageAny: 0, KeyUsageServerAuth: 1, KeyUsageClientAuth: 2, KeyUsageCodeSigning: 3, KeyUsageEmailProtection: 4, KeyUsageIPSECEndSystem: 5,
  KeyUsageIPSECTunnel: 6, KeyUsageIPSECUser: 7, KeyUsageTimeStamping: 8, KeyUsageOCSPSigning: 9, KeyUsageMicrosoftServerGatedCrypto: 10,
  KeyUsageNetscapeServerGatedCrypto: 11, KeyUsageMicrosoftCommercialCodeSigning: 12, KeyUsageMicrosoftKernelCodeSigning: 13,
}
const HANDLED_EXT = new Set(['2.5.29.15', '2.5.29.19', '2.5.29.17', '2.5.29.30', '2.5.29.31', '2.5.29.32', '2.5.29.35', '2.5.29.14', '2.5.29.37', '1.3.6.1.5.5.7.1.1', '2.5.29.33', '2.5.29.36', '2.5.29.54'])

function expect (t: Tlv, tag: number): Tlv {
  if (t.tag !== tag) throw new DerError(`unexpected tag ${t.tag}`)
  return t
}

function sigAlg (algId: Tlv): number {
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
function pkixName (rdns: Tlv): Record<string, unknown> {
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
function publicKeyJson (alg: number, spki: Tlv): unknown {
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
function nameConstraints (v: Tlv, critical: boolean, out: Record<string, unknown>): void {
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

function generalNames (body: Tlv, out: { dns: string[], email: string[], ip: string[], uri: string[] }): void {
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

export interface ParsedCert { json: Record<string, unknown>, der: Buffer, tbs: Buffer, subject: Buffer, issuer: Buffer, isCA: boolean, basicValid: boolean, maxPathLen: number, ekus: number[], hasEku: boolean, notBefore: string, notAfter: string, dns: string[] }

/** Go x509.ParseCertificate, as JSON. */
export function parseCertificate (der: Buffer): ParsedCert {
  const [cert] = readTlv(der)
  const [tbs, sigAlgId, sigVal] = children(expect(cert, 0x30)) as [Tlv, Tlv, Tlv]
  const f = children(expect(tbs, 0x30))
  let i = 0
  let version = 1
  if (f[0]?.tag === 0xa0) { version = Number(bigIntOf((children(f[0])[0] as Tlv).body)) + 1; i++ }
  const serial = bigIntOf(expect(f[i++] as Tlv, 0x02).body)
  i++ // signature algorithm inside TBS
  const issuer = f[i++] as Tlv
  const validity = children(f[i++] as Tlv) as [Tlv, Tlv]
  const subject = f[i++] as Tlv
  const spki = f[i++] as Tlv
  const [pkAlgId] = children(spki) as [Tlv]
  const pkOid = oidStr(parseOid((children(pkAlgId)[0] as Tlv).body))
  const pkAlg = PK_ALGS[pkOid] ?? 0
  const out: Record<string, unknown> = {
    Raw: b64(cert.raw), RawTBSCertificate: b64(tbs.raw), RawSubjectPublicKeyInfo: b64(spki.raw), RawSubject: b64(subject.raw), RawIssuer: b64(issuer.raw),
    Signature: b64(sigVal.body.subarray(1)), SignatureAlgorithm: sigAlg(sigAlgId), PublicKeyAlgorithm: pkAlg, PublicKey: publicKeyJson(pkAlg, spki),
    Version: version, SerialNumber: serial, Issuer: pkixName(issuer), Subject: pkixName(subject), NotBefore: timeOf(validity[0]), NotAfter: timeOf(validity[1]),
    KeyUsage: 0, Extensions: null, ExtraExtensions: null, UnhandledCriticalExtensions: null, ExtKeyUsage: null, UnknownExtKeyUsage: null,
    BasicConstraintsValid: false, IsCA: false, MaxPathLen: 0, MaxPathLenZero: false, SubjectKeyId: null, AuthorityKeyId: null, OCSPServer: null, IssuingCertificateURL: null,
    DNSNames: null, EmailAddresses: null, IPAddresses: null, URIs: null, URIStrings: null,
    PermittedDNSDomainsCritical: false, PermittedDNSDomains: null, ExcludedDNSDomains: null, PermittedIPRanges: null, ExcludedIPRanges: null,
    PermittedEmailAddresses: null, ExcludedEmailAddresses: null, PermittedURIDomains: null, ExcludedURIDomains: null, CRLDistributionPoints: null,
    PolicyIdentifiers: null, Policies: null, InhibitAnyPolicy: 0, InhibitAnyPolicyZero: false, InhibitPolicyMapping: 0, InhibitPolicyMappingZero: false,
    RequireExplicitPolicy: 0, RequireExplicitPolicyZero: false, PolicyMappings: null,
  }
  const ekus: number[] = []
  let hasEku = false
  const names = { dns: [] as string[], email: [] as string[], ip: [] as string[], uri: [] as string[] }
  const extWrap = f.slice(i).find((t) => t.tag === 0xa3)
  if (extWrap !== undefined) {
    const exts: unknown[] = []
    const unhandled: number[][] = []
    for (const ext of children(children(extWrap)[0] as Tlv)) {
      const parts = children(ext)
      const id = parseOid((parts[0] as Tlv).body)
      const critical = parts.length === 3 && (parts[1] as Tlv).body[0] !== 0
      const value = (parts[parts.length - 1] as Tlv).body
      exts.push({ Id: id, Critical: critical, Value: b64(value) })
      const o = oidStr(id)
      if (critical && !HANDLED_EXT.has(o)) unhandled.push(id)
      const [v] = readTlv(value)
      switch (o) {
        case '2.5.29.15': {
          let usage = 0
          const bits = v.body.subarray(1)
          for (let bi = 0; bi < 9; bi++) if (((bits[bi >> 3] ?? 0) & (0x80 >> (bi & 7))) !== 0) usage |= 1 << bi
          out.KeyUsage = usage
          break
        }
        case '2.5.29.19': {
          out.BasicConstraintsValid = true
          const c = children(v)
          out.IsCA = c[0]?.tag === 0x01 && c[0].body[0] !== 0
          const pl = c.find((x) => x.tag === 0x02)
          if (pl !== undefined) { out.MaxPathLen = Number(bigIntOf(pl.body)); out.MaxPathLenZero = out.MaxPathLen === 0 } else out.MaxPathLen = -1
          break
        }
        case '2.5.29.17': generalNames(v, names); break
        case '2.5.29.37': {
          hasEku = true
          const unknown: number[][] = []
          for (const e of children(v)) {
            const eo = parseOid(e.body)
            const k = EKU[oidStr(eo)]
            if (k !== undefined) ekus.push(k); else unknown.push(eo)
          }
          out.ExtKeyUsage = ekus.length > 0 ? ekus : null
          out.UnknownExtKeyUsage = unknown.length > 0 ? unknown : null
          break
        }
        case '2.5.29.14': out.SubjectKeyId = b64(v.body); break
        case '2.5.29.35': {
          const k = children(v).find((x) => x.tag === 0x80)
          if (k !== undefined) out.AuthorityKeyId = b64(k.body)
          break
        }
        case '1.3.6.1.5.5.7.1.1': {
          const ocsp: string[] = []; const ca: string[] = []
          for (const ad of children(v)) {
            const [m, loc] = children(ad) as [Tlv, Tlv]
            if (loc.tag !== 0x86) continue
            const mo = oidStr(parseOid(m.body))
            if (mo === '1.3.6.1.5.5.7.48.1') ocsp.push(loc.body.toString('latin1'))
            else if (mo === '1.3.6.1.5.5.7.48.2') ca.push(loc.body.toString('latin1'))
          }
          if (ocsp.length > 0) out.OCSPServer = ocsp
          if (ca.length > 0) out.IssuingCertificateURL = ca
          break
        }
        case '2.5.29.31': {
          const urls: string[] = []
          for (const dp of children(v)) {
            const dpn = children(dp).find((x) => x.tag === 0xa0)
            if (dpn === undefined) continue
            for (const full of children(dpn)) if (full.tag === 0xa0) for (const gn of children(full)) if (gn.tag === 0x86) urls.push(gn.body.toString('latin1'))
          }
          if (urls.length > 0) out.CRLDistributionPoints = urls
          break
        }
        case '2.5.29.30': nameConstraints(v, critical, out); break
        case '2.5.29.32': {
          const ids = children(v).map((p) => parseOid((children(p)[0] as Tlv).body))
          out.PolicyIdentifiers = ids
          out.Policies = ids.map(oidStr)
          break
        }
      }
    }
    out.Extensions = exts.length > 0 ? exts : null
    out.UnhandledCriticalExtensions = unhandled.length > 0 ? unhandled : null
  }
  if (names.dns.length > 0) out.DNSNames = names.dns
  if (names.email.length > 0) out.EmailAddresses = names.email
  if (names.ip.length > 0) out.IPAddresses = names.ip
  if (names.uri.length > 0) { out.URIs = names.uri.map(goUrl); out.URIStrings = names.uri }
  return {
    json: out, der: cert.raw, tbs: tbs.raw, subject: subject.raw, issuer: issuer.raw, isCA: out.IsCA as boolean, basicValid: out.BasicConstraintsValid as boolean,
    maxPathLen: out.MaxPathLen as number, ekus, hasEku, notBefore: out.NotBefore as string, notAfter: out.NotAfter as string, dns: names.dns,
  }
}

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

function strictBase64 (b: string, s: string): Buffer {
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
function certsFromString (b: string, s: string): ParsedCert[] {
  if (s.startsWith('-----BEGIN')) return parseCertificates(b, pemBlocksDer(s))
  const raw = strictBase64(b, s)
  if (raw.subarray(0, 10).toString('latin1') === '-----BEGIN') return parseCertificates(b, pemBlocksDer(raw.toString('latin1')))
  return parseCertificates(b, raw)
}

/** The plain Go certificate JSON (OPA adds URIStrings only in parse_certificates). */
const goCert = (c: ParsedCert): Record<string, unknown> => {
  const { URIStrings: _omit, ...rest } = c.json
  return rest
}

const certsJson = (certs: ParsedCert[]): RawJson => new RawJson(stringifyExact(certs.map((c) => c.json)))

// ---- chain verification (Go x509.Certificate.Verify, the parts OPA's callers meet) ----

interface VerifyOpts { dnsName: string, timeMs: number, keyUsages: number[] }

function verifyChain (certs: ParsedCert[], opts: VerifyOpts): ParsedCert[] | undefined {
  if (certs.length < 2) return undefined
  const root = certs[0] as ParsedCert
  const leaf = certs[certs.length - 1] as ParsedCert
  const pool = [root, ...certs.slice(1, -1)]
  const valid = (c: ParsedCert): boolean => opts.timeMs >= Date.parse(c.notBefore) && opts.timeMs <= Date.parse(c.notAfter)
  const x = new Map<ParsedCert, X509Certificate>()
  const xc = (c: ParsedCert): X509Certificate => { let v = x.get(c); if (v === undefined) { v = new X509Certificate(c.der); x.set(c, v) } return v }
  const signedBy = (c: ParsedCert, issuer: ParsedCert): boolean => {
    if (!c.issuer.equals(issuer.subject)) return false
    try { return xc(c).verify(xc(issuer).publicKey) } catch { return false }
  }
  if (!valid(leaf)) return undefined
  if (opts.dnsName !== '' && !leaf.dns.some((d) => d.toLowerCase() === opts.dnsName.toLowerCase() || (d.startsWith('*.') && opts.dnsName.toLowerCase().endsWith(d.slice(1).toLowerCase()) && !opts.dnsName.slice(0, opts.dnsName.length - d.length + 1).includes('.')))) return undefined
  const ekuOk = (chain: ParsedCert[]): boolean => {
    if (opts.keyUsages.includes(0)) return true
    let usages = [...opts.keyUsages]
    for (const c of chain) {
      if (!c.hasEku || c.ekus.includes(0)) continue
      usages = usages.filter((u) => c.ekus.includes(u))
      if (usages.length === 0) return false
    }
    return usages.length > 0
  }
  const search = (chain: ParsedCert[]): ParsedCert[] | undefined => {
    const cur = chain[chain.length - 1] as ParsedCert
    if (cur === root || (cur.subject.equals(root.subject) && cur.der.equals(root.der))) return ekuOk(chain) ? chain : undefined
    for (const cand of pool) {
      if (chain.includes(cand) || !valid(cand)) continue
      if (cand !== root && (!cand.basicValid || !cand.isCA)) continue
      if (cand === root && cand.basicValid && !cand.isCA) continue
      if (cand.basicValid && cand.maxPathLen >= 0 && chain.length - 1 > cand.maxPathLen && cand !== root) continue
      if (cand.basicValid && cand.maxPathLen >= 0 && chain.length - 1 > cand.maxPathLen) continue
      if (!signedBy(cur, cand)) continue
      const r = search([...chain, cand])
      if (r !== undefined) return r
    }
    return undefined
  }
  return search([leaf])
}

function verifyBuiltin (ctx: EvalContext, b: string, input: unknown, options: unknown, withUriStrings: boolean): unknown {
  const s = str(b, input, 1)
  const opts: VerifyOpts = { dnsName: '', timeMs: Number(ctx.nowNs() / 1_000_000n), keyUsages: [1] }
  if (options !== undefined) {
    if (!isObj(options)) throw new BuiltinError(b, 'operand 2 must be object')
    for (const [k, v] of Object.entries(options)) {
      switch (k) {
        case 'DNSName': opts.dnsName = str(b, v, 2); break
        case 'CurrentTime':
          if (!isNum(v)) throw new BuiltinError(b, "'CurrentTime' should be a number")
          opts.timeMs = (typeof v === 'number' ? v : Number((v as ExactNumber).text)) / 1e6
          break
        case 'KeyUsages':
          if (!Array.isArray(v)) throw new BuiltinError(b, "'KeyUsages' should be an Array or Set")
          opts.keyUsages = v.map((u) => {
            const n = typeof u === 'string' ? EKU_NAMES[u] : undefined
            if (n === undefined) throw new BuiltinError(b, `invalid entries for 'KeyUsages' found: ${String(u)}`)
            return n
          })
          break
        case 'MaxConstraintComparisions': if (!isNum(v)) throw new BuiltinError(b, "'MaxConstraintComparisions' should be a number"); break
        default: throw new BuiltinError(b, `invalid key option: ${k}`)
      }
    }
  }
  let certs: ParsedCert[]
  try {
    certs = certsFromString(b, s)
  } catch {
    return [false, []]
  }
  const chain = verifyChain(certs, opts)
  if (chain === undefined) return [false, []]
  return new RawJson(stringifyExact([true, chain.map((c) => withUriStrings ? c.json : goCert(c))]))
}

// ---- private keys ----

function keyJson (k: KeyObject): unknown {
  const jwk = k.export({ format: 'jwk' })
  if (jwk.kty === 'RSA') {
    const p = b64url2big(jwk.p as string); const q = b64url2big(jwk.q as string)
    return {
      N: b64url2big(jwk.n as string), E: Number(b64url2big(jwk.e as string)), D: b64url2big(jwk.d as string), Primes: [p, q],
      Precomputed: { Dp: b64url2big(jwk.dp as string), Dq: b64url2big(jwk.dq as string), Qinv: b64url2big(jwk.qi as string), CRTValues: [] },
    }
  }
  if (jwk.kty === 'EC') return { Curve: {}, X: b64url2big(jwk.x as string), Y: b64url2big(jwk.y as string), D: b64url2big(jwk.d as string) }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return b64(Buffer.concat([Buffer.from(jwk.d as string, 'base64url'), Buffer.from(jwk.x as string, 'base64url')]))
  return null
}

function privateKeyFromBlock (type: string, bytes: Buffer): KeyObject | undefined {
  try {
    if (type === 'RSA PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' })
    if (type === 'EC PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'sec1' })
    if (type === 'PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' })
  } catch {
    return undefined
  }
  return undefined
}

export const x509Builtins: BuiltinSpec[] = [
  {
    name: 'crypto.x509.parse_certificates',
    impl: (_ctx, [x]) => certsJson(certsFromString('crypto.x509.parse_certificates', str('crypto.x509.parse_certificates', x, 1))),
  },
  {
    name: 'crypto.x509.parse_and_verify_certificates',
    nondeterministic: true, // validity is checked against the clock
    impl: (ctx, [x]) => verifyBuiltin(ctx, 'crypto.x509.parse_and_verify_certificates', x, undefined, true),
  },
  {
    name: 'crypto.x509.parse_and_verify_certificates_with_options',
    nondeterministic: true,
    impl: (ctx, [x, o]) => verifyBuiltin(ctx, 'crypto.x509.parse_and_verify_certificates_with_options', x, o ?? {}, false),
  },
  {
    name: 'crypto.x509.parse_certificate_request',
    impl: (_ctx, [x]) => {
      const b = 'crypto.x509.parse_certificate_request'
      const s = str(b, x, 1)
      let der: Buffer
      if (s.startsWith('-----BEGIN')) {
        const blk = pemDecode(s)
        if (blk === undefined) throw new BuiltinError(b, 'invalid PEM-encoded certificate signing request')
        der = blk.bytes
      } else {
        const raw = strictBase64(b, s)
        const blk = raw.subarray(0, 10).toString('latin1') === '-----BEGIN' ? pemDecode(raw.toString('latin1')) : undefined
        der = blk?.bytes ?? raw
      }
      try {
        return new RawJson(stringifyExact(parseCsr(der)))
      } catch (err) {
        if (err instanceof BuiltinError) throw err
        throw new BuiltinError(b, `x509: malformed certificate request (${(err as Error).message})`)
      }
    },
  },
  {
    name: 'crypto.x509.parse_rsa_private_key',
    impl: (_ctx, [x]) => {
      const b = 'crypto.x509.parse_rsa_private_key'
      const s = str(b, x, 1)
      const raw = s.startsWith('-----BEGIN') ? s : strictBase64(b, s).toString('latin1')
      const blk = pemDecode(raw)
      if (blk === undefined) throw new BuiltinError(b, 'failed to parse PEM block containing the key')
      // OPA hands the PEM block to a JWK parser, which takes any private key type.
      const k = privateKeyFromBlock(blk.type, blk.bytes)
      if (k === undefined) throw new BuiltinError(b, 'x509: failed to parse private key')
      return k.export({ format: 'jwk' })
    },
  },
  {
    name: 'crypto.parse_private_keys',
    impl: (_ctx, [x]) => {
      const b = 'crypto.parse_private_keys'
      const s = str(b, x, 1)
      if (s === '') return null
      let raw = s
      if (!s.startsWith('-----BEGIN')) {
        try { raw = strictBase64(b, s).toString('latin1') } catch { raw = s }
      }
      const out: unknown[] = []
      let rest = raw
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (!blk.type.endsWith('PRIVATE KEY')) continue
        const k = privateKeyFromBlock(blk.type, blk.bytes)
        if (k === undefined) throw new BuiltinError(b, `failed to parse ${blk.type}`)
        out.push(keyJson(k))
      }
      return new RawJson(stringifyExact(out))
    },
  },
  {
    name: 'crypto.x509.parse_keypair',
    impl: (_ctx, [c, k]) => {
      const b = 'crypto.x509.parse_keypair'
      const decode = (v: unknown, pos: number): string => {
        const s = str(b, v, pos)
        return s.startsWith('-----BEGIN') ? s : strictBase64(b, s).toString('latin1')
      }
      const certPem = decode(c, 1); const keyPem = decode(k, 2)
      const certs: Buffer[] = []
      let rest = certPem
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (blk.type === 'CERTIFICATE') certs.push(blk.bytes)
      }
      if (certs.length === 0) throw new BuiltinError(b, 'tls: failed to find any PEM data in certificate input')
      let key: KeyObject | undefined
      rest = keyPem
      for (;;) {
        const blk = pemDecode(rest)
        if (blk === undefined) break
        rest = blk.rest
        if (blk.type === 'PRIVATE KEY' || blk.type.endsWith(' PRIVATE KEY')) { key = privateKeyFromBlock(blk.type, blk.bytes); break }
      }
      if (key === undefined) throw new BuiltinError(b, 'tls: failed to find any PEM data in key input')
      let leaf: ParsedCert
      try {
        leaf = parseCertificate(certs[0] as Buffer)
      } catch {
        throw new BuiltinError(b, 'tls: failed to parse certificate')
      }
      // tls.X509KeyPair: the private key must match the leaf's public key.
      const spkiLeaf = new X509Certificate(certs[0] as Buffer).publicKey.export({ type: 'spki', format: 'der' })
      if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(spkiLeaf)) throw new BuiltinError(b, 'tls: private key does not match public key')
      return new RawJson(stringifyExact({
        Certificate: certs.map(b64), PrivateKey: keyJson(key), SupportedSignatureAlgorithms: null, OCSPStaple: null, SignedCertificateTimestamps: null, Leaf: goCert(leaf),
      }))
    },
  },
]

/** Go x509.ParseCertificateRequest, as JSON. */
function parseCsr (der: Buffer): Record<string, unknown> {
  const [csr] = readTlv(der)
  const [info, sigAlgId, sigVal] = children(expect(csr, 0x30)) as [Tlv, Tlv, Tlv]
  const [ver, subject, spki, attrs] = children(info) as [Tlv, Tlv, Tlv, Tlv | undefined]
  const [pkAlgId] = children(spki) as [Tlv]
  const pkAlg = PK_ALGS[oidStr(parseOid((children(pkAlgId)[0] as Tlv).body))] ?? 0
  const out: Record<string, unknown> = {
    Raw: b64(csr.raw), RawTBSCertificateRequest: b64(info.raw), RawSubjectPublicKeyInfo: b64(spki.raw), RawSubject: b64(subject.raw),
    Version: Number(bigIntOf(ver.body)), Signature: b64(sigVal.body.subarray(1)), SignatureAlgorithm: sigAlg(sigAlgId), PublicKeyAlgorithm: pkAlg,
    PublicKey: publicKeyJson(pkAlg, spki), Subject: pkixName(subject), Attributes: null, Extensions: null, ExtraExtensions: null,
    DNSNames: null, EmailAddresses: null, IPAddresses: null, URIs: null,
  }
  if (attrs !== undefined && attrs.tag === 0xa0) {
    const names = { dns: [] as string[], email: [] as string[], ip: [] as string[], uri: [] as string[] }
    const exts: unknown[] = []
    const attributes: unknown[] = []
    for (const a of children(attrs)) {
      const [t, set] = children(a) as [Tlv, Tlv]
      const type = parseOid(t.body)
      if (oidStr(type) !== '1.2.840.113549.1.9.14') continue
      const values: unknown[] = []
      for (const extSeq of children(set)) {
        const group: unknown[] = []
        for (const ext of children(extSeq)) {
          const parts = children(ext)
          const id = parseOid((parts[0] as Tlv).body)
          const value = (parts[parts.length - 1] as Tlv).body
          const critical = parts.length === 3 && (parts[1] as Tlv).body[0] !== 0
          exts.push({ Id: id, Critical: critical, Value: b64(value) })
          group.push({ Type: id, Value: b64(value) })
          if (oidStr(id) === '2.5.29.17') generalNames(readTlv(value)[0], names)
        }
        values.push(group)
      }
      attributes.push({ Type: type, Value: values })
    }
    if (attributes.length > 0) out.Attributes = attributes
    if (exts.length > 0) out.Extensions = exts
    if (names.dns.length > 0) out.DNSNames = names.dns
    if (names.email.length > 0) out.EmailAddresses = names.email
    if (names.ip.length > 0) out.IPAddresses = names.ip
    if (names.uri.length > 0) out.URIs = names.uri.map(goUrl)
  }
  return out
}
