/**
 * X.509-SVID verification (SPIFFE X509-SVID standard §4, §5; RFC 5280 §6).
 *
 * Path validation is PKI.js's CertificateChainValidationEngine against the X.509 authorities
 * of the leaf's own trust domain only. The SPIFFE leaf rules, read from the certificate's
 * ASN.1 extensions, are checked before it; so are the dates and CA flags of the presented
 * intermediates, so each failure has its own code.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import * as pkijs from 'pkijs'
import { IdentityError } from '../errors.js'
import type { TrustBundle } from './bundle.js'
import type { CredentialSource, IdentityDocument } from './document.js'
import { parseCertificateDer } from './pem.js'
import { parseWorkloadSpiffeId } from './spiffe-id.js'

const OID = {
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
} as const

/** Extensions this verifier (or PKI.js's path validation) understands; RFC 5280 §4.2 says reject unknown critical ones. */
const KNOWN_EXTENSIONS = new Set([
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.30', // nameConstraints (PKI.js)
  '2.5.29.32', // certificatePolicies (PKI.js)
  '2.5.29.33', // policyMappings (PKI.js)
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.36', // policyConstraints (PKI.js)
  '2.5.29.37', // extKeyUsage
  '2.5.29.54', // inhibitAnyPolicy (PKI.js)
  '2.5.29.31', // cRLDistributionPoints
  '1.3.6.1.5.5.7.1.1', // authorityInfoAccess
])

/** KeyUsage bits as they sit in the first byte of the BIT STRING (RFC 5280 §4.2.1.3). */
const KU = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const

export interface ParsedCertificate {
  der: Buffer
  cert: pkijs.Certificate
}

export interface LeafFacts {
  uris: string[]
  dnsNames: string[]
  /** undefined when the extension is absent. */
  keyUsage?: number
  ca: boolean
  pathLen?: number
}

function fail (code: ConstructorParameters<typeof IdentityError>[0], message: string, details: Record<string, unknown> = {}): IdentityError {
  return new IdentityError(code, message, details)
}

function extension (cert: pkijs.Certificate, oid: string): pkijs.Extension | undefined {
  return cert.extensions?.find((e) => e.extnID === oid)
}

/** Reads SANs, keyUsage and basicConstraints from the certificate's ASN.1 (not Node's display strings). */
export function certificateFacts (cert: pkijs.Certificate, what: string): LeafFacts {
  const facts: LeafFacts = { uris: [], dnsNames: [], ca: false }
  const seen = new Set<string>()
  for (const e of cert.extensions ?? []) {
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(e.extnID)) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: duplicate extension ${e.extnID}`, { extension: e.extnID })
    seen.add(e.extnID)
    if (e.critical && !KNOWN_EXTENSIONS.has(e.extnID)) {
      throw fail('PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION', `${what}: unknown critical extension ${e.extnID}`, { extension: e.extnID })
    }
  }
  const san = extension(cert, OID.subjectAltName)
  if (san !== undefined) {
    if (!(san.parsedValue instanceof pkijs.AltName)) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: unparseable subjectAltName`)
    for (const name of san.parsedValue.altNames) {
      // GeneralName [6] uniformResourceIdentifier, [2] dNSName (IA5String).
      if (name.type === 6) facts.uris.push(String(name.value))
      else if (name.type === 2) facts.dnsNames.push(String(name.value))
    }
  }
  const ku = extension(cert, OID.keyUsage)
  if (ku !== undefined) {
    const bits = (ku.parsedValue as { valueBlock?: { valueHexView?: Uint8Array } } | undefined)?.valueBlock?.valueHexView
    if (bits === undefined) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: unparseable keyUsage`)
    facts.keyUsage = bits[0] ?? 0
  }
  const bc = extension(cert, OID.basicConstraints)
  if (bc !== undefined) {
    if (!(bc.parsedValue instanceof pkijs.BasicConstraints)) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: unparseable basicConstraints`)
    facts.ca = bc.parsedValue.cA === true
    const pl = bc.parsedValue.pathLenConstraint
    if (typeof pl === 'number') facts.pathLen = pl
  }
  return facts
}

/**
 * The X509-SVID leaf rules (X509-SVID §4.1–§4.3, §2): exactly one URI SAN holding a SPIFFE ID
 * with a non-root path; cA=false; keyUsage present with digitalSignature and without
 * keyCertSign and cRLSign. Returns the leaf's SPIFFE ID parts.
 */
export function checkLeafRules (cert: pkijs.Certificate): { facts: LeafFacts, spiffeId: ReturnType<typeof parseWorkloadSpiffeId> } {
  const facts = certificateFacts(cert, 'leaf certificate')
  // X509-SVID §2: an SVID contains exactly one URI SAN.
  if (facts.uris.length === 0) throw fail('PORTCULLIS_IDENTITY_LEAF_SAN', 'leaf certificate has no URI SAN (an X509-SVID carries exactly one)', { uri_sans: 0 })
  if (facts.uris.length > 1) throw fail('PORTCULLIS_IDENTITY_LEAF_SAN', `leaf certificate has ${facts.uris.length} URI SANs (an X509-SVID carries exactly one)`, { uri_sans: facts.uris.length })
  const spiffeId = parseWorkloadSpiffeId(facts.uris[0] as string)
  // X509-SVID §4.1: leaf certificates must set cA to false.
  if (facts.ca) throw fail('PORTCULLIS_IDENTITY_LEAF_CA', 'leaf certificate has basicConstraints cA=true', { spiffe_id: spiffeId.id })
  // X509-SVID §4.3: the key usage extension must be set, with digitalSignature, without keyCertSign / cRLSign.
  if (facts.keyUsage === undefined) throw fail('PORTCULLIS_IDENTITY_LEAF_KEY_USAGE', 'leaf certificate has no keyUsage extension', { spiffe_id: spiffeId.id })
  if ((facts.keyUsage & KU.keyCertSign) !== 0) throw fail('PORTCULLIS_IDENTITY_LEAF_KEY_USAGE', 'leaf certificate sets keyCertSign', { spiffe_id: spiffeId.id, key_usage: 'keyCertSign' })
  if ((facts.keyUsage & KU.cRLSign) !== 0) throw fail('PORTCULLIS_IDENTITY_LEAF_KEY_USAGE', 'leaf certificate sets cRLSign', { spiffe_id: spiffeId.id, key_usage: 'cRLSign' })
  if ((facts.keyUsage & KU.digitalSignature) === 0) throw fail('PORTCULLIS_IDENTITY_LEAF_KEY_USAGE', 'leaf certificate lacks digitalSignature', { spiffe_id: spiffeId.id, key_usage: 'digitalSignature' })
  return { facts, spiffeId }
}

function checkDates (cert: pkijs.Certificate, now: Date, what: string): void {
  if (cert.notBefore.value.getTime() > now.getTime()) {
    throw fail('PORTCULLIS_IDENTITY_NOT_YET_VALID', `${what} is not valid before ${cert.notBefore.value.toISOString()}`, { not_before: cert.notBefore.value.toISOString() })
  }
  if (cert.notAfter.value.getTime() < now.getTime()) {
    throw fail('PORTCULLIS_IDENTITY_EXPIRED', `${what} expired at ${cert.notAfter.value.toISOString()}`, { not_after: cert.notAfter.value.toISOString() })
  }
}

/** X509-SVID §4.1, RFC 5280 §6.1.4 (k, n): a certificate that signs others must be a CA with keyCertSign. */
function checkSigningCertificate (cert: pkijs.Certificate, what: string): LeafFacts {
  const facts = certificateFacts(cert, what)
  if (!facts.ca) throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `${what} is not a CA (basicConstraints cA is not true)`)
  if (facts.keyUsage === undefined || (facts.keyUsage & KU.keyCertSign) === 0) throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `${what} lacks keyUsage keyCertSign`)
  return facts
}

/**
 * Parsed intermediates, keyed by the SHA-256 of their DER. Many workloads share a few
 * intermediates, and ASN.1 parsing is a large part of a cold verification. Only parsing is
 * cached: every verification still validates the whole path.
 */
const parsedIntermediates = new LRUCache<string, pkijs.Certificate>({ max: 1024 })

export function parseChain (chain: readonly Uint8Array[]): ParsedCertificate[] {
  if (chain.length === 0) throw fail('PORTCULLIS_IDENTITY_MALFORMED', 'empty certificate chain')
  if (chain.length > 16) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `certificate chain of ${chain.length} certificates is longer than 16`)
  return chain.map((der, i) => {
    const buf = Buffer.from(der)
    if (i === 0) return { der: buf, cert: parseCertificateDer(der, 'leaf certificate') }
    const key = sha256(buf)
    let cert = parsedIntermediates.get(key)
    if (cert === undefined) {
      cert = parseCertificateDer(der, `chain certificate ${i + 1}`)
      parsedIntermediates.set(key, cert)
    }
    return { der: buf, cert }
  })
}

export interface X509Verification {
  identity: IdentityDocument
  expiresAt: Date
}

function sha256 (der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}

/**
 * Verifies an X509-SVID chain (DER, leaf first) at `now`.
 *
 * @param bundleOf returns the trust bundle of a trust domain, or undefined when unknown.
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
 */
export async function verifyX509Svid (chain: readonly Uint8Array[], bundleOf: (trustDomain: string) => TrustBundle | undefined, now: Date, source: CredentialSource): Promise<X509Verification> {
  const parsed = parseChain(chain)
  const leaf = parsed[0] as ParsedCertificate
  const { facts, spiffeId } = checkLeafRules(leaf.cert)

  const bundle = bundleOf(spiffeId.trustDomain)
  if (bundle === undefined) {
    throw fail('PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN', `no trust bundle for trust domain ${JSON.stringify(spiffeId.trustDomain)}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  if (bundle.x509Authorities.length === 0) {
    throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `trust domain ${spiffeId.trustDomain} has no X.509 authorities (its bundle trusts nothing)`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }

  checkDates(leaf.cert, now, 'leaf certificate')
  for (const [i, c] of parsed.slice(1).entries()) {
    const what = `chain certificate ${i + 2}`
    checkDates(c.cert, now, what)
    checkSigningCertificate(c.cert, what)
  }

  // PKI.js validates the LAST certificate of `certs`: the leaf goes last, intermediates before it.
  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: bundle.x509Authorities.map((a) => a.cert),
    certs: [...parsed.slice(1).map((c) => c.cert), leaf.cert],
    checkDate: now,
  })
  const result = await engine.verify()
  if (!result.result) {
    const details = { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id, engine_code: result.resultCode }
    switch (result.resultCode) {
      case 8: {
        // Only a trust anchor can still be out of date here (the presented certificates were checked above).
        const early = bundle.x509Authorities.some((a) => a.cert.notBefore.value.getTime() > now.getTime())
        throw fail(early ? 'PORTCULLIS_IDENTITY_NOT_YET_VALID' : 'PORTCULLIS_IDENTITY_EXPIRED', `certificate path of ${spiffeId.id} is not valid at ${now.toISOString()}: ${result.resultMessage}`, details)
      }
      case 14:
        throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id}: ${result.resultMessage}`, details)
      case 6:
        throw fail('PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION', `certificate path of ${spiffeId.id}: ${result.resultMessage}`, details)
      default:
        throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate of ${spiffeId.id} does not chain to an X.509 authority of trust domain ${spiffeId.trustDomain}: ${result.resultMessage}`, details)
    }
  }
  const path = result.certificatePath ?? []
  if (path.length < 2 || path[0] !== leaf.cert) {
    throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate path of ${spiffeId.id} does not start at the presented leaf`, { spiffe_id: spiffeId.id })
  }
  // RFC 5280 §6.1.4 (l, m): pathLenConstraint caps the number of intermediates below a CA.
  for (let i = 1; i < path.length; i++) {
    const f = certificateFacts(path[i] as pkijs.Certificate, `path certificate ${i + 1}`)
    if (f.pathLen !== undefined && i - 1 > f.pathLen) {
      throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id} exceeds pathLenConstraint ${f.pathLen} of path certificate ${i + 1}`, { spiffe_id: spiffeId.id })
    }
  }

  const expiresAt = new Date(Math.min(...path.map((c) => c.notAfter.value.getTime())))
  const derOf = new Map<pkijs.Certificate, Uint8Array>([...parsed.map((p) => [p.cert, p.der] as const), ...bundle.x509Authorities.map((a) => [a.cert, a.der] as const)])
  const node = new X509Certificate(leaf.der)
  const identity: IdentityDocument = {
    type: 'x509-svid',
    source,
    spiffe_id: spiffeId.id,
    trust_domain: spiffeId.trustDomain,
    path: spiffeId.path,
    subject: spiffeId.id,
    issuer: node.issuer.replace(/\n/g, ', '),
    expires_at: expiresAt.toISOString(),
    x509: {
      fingerprint_sha256: sha256(leaf.der),
      serial: node.serialNumber.toUpperCase(),
      not_before: leaf.cert.notBefore.value.toISOString(),
      not_after: leaf.cert.notAfter.value.toISOString(),
      subject: node.subject.replace(/\n/g, ', '),
      issuer: node.issuer.replace(/\n/g, ', '),
      dns_sans: facts.dnsNames,
      chain_sha256: path.map((c) => sha256(derOf.get(c) ?? new Uint8Array(c.toSchema().toBER()))),
    },
  }
  return { identity, expiresAt }
}
