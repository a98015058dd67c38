/**
 * crypto.x509.parse_certificate_request: Go x509.ParseCertificateRequest from DER, as JSON.
 */
import { bigIntOf, children, parseOid, readTlv, type Tlv } from '../der.js'
import { b64, expect, generalNames, goUrl, oidStr, PK_ALGS, pkixName, publicKeyJson, sigAlg } from './fields.js'

/** Go x509.ParseCertificateRequest, as JSON. */
export function parseCsr (der: Buffer): Record<string, unknown> {
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
