/**
 * crypto.x509.* certificates: Go x509.ParseCertificate from DER into the JSON Go's encoding/json
 * makes of an x509.Certificate (plus OPA's URIStrings), and the plain Go form without it.
 */
import { RawJson } from '../types.js'
import { stringifyExact } from '../exact-json.js'
import { bigIntOf, children, parseOid, readTlv, timeOf, type Tlv } from '../der.js'
import { b64, EKU, expect, generalNames, goUrl, HANDLED_EXT, nameConstraints, oidStr, PK_ALGS, pkixName, publicKeyJson, sigAlg } from './fields.js'

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

/** The plain Go certificate JSON (OPA adds URIStrings only in parse_certificates). */
export const goCert = (c: ParsedCert): Record<string, unknown> => {
  const { URIStrings: _omit, ...rest } = c.json
  return rest
}

export const certsJson = (certs: ParsedCert[]): RawJson => new RawJson(stringifyExact(certs.map((c) => c.json)))
