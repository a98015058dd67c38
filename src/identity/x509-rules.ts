/**
 * The X.509-SVID rules both verifiers share (SPIFFE X509-SVID standard §4, §5; RFC 5280 §4.2,
 * §6.1.4): extension facts read from ASN.1, the SPIFFE leaf rules, validity dates and the CA
 * checks of presented intermediates. x509-svid.ts (node:crypto path) and
 * x509-svid-reference.ts (PKI.js path validation) both call these, so a rule has one text.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import * as pkijs from 'pkijs'
import { IdentityError } from '../errors.js'
import type { TrustBundle } from './bundle.js'
import type { CredentialSource, IdentityDocument, X509Details } from './document.js'
import { parseCertificateDer } from './pem.js'
import { parseWorkloadSpiffeId, type SpiffeId } from './spiffe-id.js'

export const OID = {
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
} as const

/** Extensions this verifier (or PKI.js's path validation) understands; RFC 5280 §4.2 says reject unknown critical ones. */
export const KNOWN_EXTENSIONS = new Set([
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
  // cRLDistributionPoints and authorityInfoAccess are read by no one here (no revocation, no
  // fetching): ignored when non-critical, as RFC 5280 asks them to be (AIA MUST be, CRLDP
  // SHOULD be); marked critical they carry what this verifier cannot process, so §4.2 says reject.
])

/** Signature algorithms whose hash is broken (MD2, MD5, SHA-1): a certificate they sign is not trusted (Go's crypto/x509 refuses them too). */
const WEAK_SIGNATURE_ALGORITHMS = new Map([
  ['1.2.840.113549.1.1.2', 'md2WithRSAEncryption'],
  ['1.2.840.113549.1.1.4', 'md5WithRSAEncryption'],
  ['1.2.840.113549.1.1.5', 'sha1WithRSAEncryption'],
  ['1.2.840.10045.4.1', 'ecdsa-with-SHA1'],
  ['1.2.840.10040.4.3', 'dsa-with-sha1'],
  ['1.3.14.3.2.29', 'sha1WithRSASignature'],
])

/**
 * What both verifiers require of every presented certificate (leaf first, then the chain's),
 * before any other rule: DER as RFC 5280 fixes it where a lax reading changes the meaning —
 * the inner and outer signature algorithms the same (§4.1.1.2), validity times in Zulu with
 * seconds (§4.1.2.5; PORTCULLIS_IDENTITY_MALFORMED) — and a signature algorithm whose hash is not
 * broken (PORTCULLIS_IDENTITY_UNTRUSTED).
 */
export function checkPresentedEncoding (certs: ReadonlyArray<{ tree: { signatureOid: string, strict: { signatureAlgorithmsMatch: boolean, canonicalTimes: boolean } } | undefined, what: string }>): void {
  for (const { tree, what } of certs) {
    if (tree === undefined) continue
    if (!tree.strict.signatureAlgorithmsMatch) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: its tbsCertificate names another signature algorithm than the certificate (RFC 5280 §4.1.1.2)`)
    if (!tree.strict.canonicalTimes) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: a validity time is not in the form RFC 5280 §4.1.2.5 requires (Zulu, with seconds, no fraction)`)
  }
  for (const { tree, what } of certs) {
    const weak = tree === undefined ? undefined : WEAK_SIGNATURE_ALGORITHMS.get(tree.signatureOid)
    if (weak !== undefined) throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `${what} is signed with ${weak}, a broken hash: not trusted`, { algorithm: weak })
  }
}

/** KeyUsage bits as they sit in the first byte of the BIT STRING (RFC 5280 §4.2.1.3). */
export const KU = { digitalSignature: 0x80, keyCertSign: 0x04, cRLSign: 0x02 } as const

/** What the extension rules read: a PKI.js certificate (x509-svid.ts reads a leaf's extensions itself, leafFacts). */
export interface ExtensionHolder {
  extensions?: pkijs.Extension[]
}

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

export function fail (code: ConstructorParameters<typeof IdentityError>[0], message: string, details: Record<string, unknown> = {}): IdentityError {
  return new IdentityError(code, message, details)
}

export function extension (cert: ExtensionHolder, oid: string): pkijs.Extension | undefined {
  return cert.extensions?.find((e) => e.extnID === oid)
}

/** Reads SANs, keyUsage and basicConstraints from the certificate's ASN.1 (not Node's display strings). */
export function certificateFacts (cert: ExtensionHolder, what: string): LeafFacts {
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
export function checkLeafRules (cert: ExtensionHolder): { facts: LeafFacts, spiffeId: ReturnType<typeof parseWorkloadSpiffeId> } {
  return checkLeafFacts(certificateFacts(cert, 'leaf certificate'))
}

/** checkLeafRules over facts already read (x509-svid.ts reads the leaf's extensions itself). */
export function checkLeafFacts (facts: LeafFacts): { facts: LeafFacts, spiffeId: ReturnType<typeof parseWorkloadSpiffeId> } {
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

/**
 * The trust bundle that judges an X.509-SVID: its own trust domain's, never another's (SPIFFE
 * X509-SVID §5.2), and one that holds X.509 authorities (an empty bundle trusts nothing).
 */
export function x509BundleOf (bundleOf: (trustDomain: string) => TrustBundle | undefined, spiffeId: { trustDomain: string, id: string }): TrustBundle {
  const bundle = bundleOf(spiffeId.trustDomain)
  if (bundle === undefined) {
    throw fail('PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN', `no trust bundle for trust domain ${JSON.stringify(spiffeId.trustDomain)}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  if (bundle.x509Authorities.length === 0) {
    throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `trust domain ${spiffeId.trustDomain} has no X.509 authorities (its bundle trusts nothing)`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  return bundle
}

export function checkDates (cert: { notBefore: { value: Date }, notAfter: { value: Date } }, now: Date, what: string): void {
  if (cert.notBefore.value.getTime() > now.getTime()) {
    throw fail('PORTCULLIS_IDENTITY_NOT_YET_VALID', `${what} is not valid before ${cert.notBefore.value.toISOString()}`, { not_before: cert.notBefore.value.toISOString() })
  }
  if (cert.notAfter.value.getTime() < now.getTime()) {
    throw fail('PORTCULLIS_IDENTITY_EXPIRED', `${what} expired at ${cert.notAfter.value.toISOString()}`, { not_after: cert.notAfter.value.toISOString() })
  }
}

/** X509-SVID §4.1, RFC 5280 §6.1.4 (k, n): a certificate that signs others must be a CA with keyCertSign. */
export function checkSigningCertificate (cert: pkijs.Certificate, what: string): LeafFacts {
  return checkSigningFacts(certificateFacts(cert, what), what)
}

/** checkSigningCertificate over facts already read (x509-svid.ts caches them per CA certificate). */
export function checkSigningFacts (facts: LeafFacts, what: string): LeafFacts {
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

/** A presented chain certificate (not the leaf), parsed once per distinct DER. */
export function parseIntermediate (der: Uint8Array, hash: string, what: string): pkijs.Certificate {
  let cert = parsedIntermediates.get(hash)
  if (cert === undefined) {
    cert = parseCertificateDer(der, what)
    parsedIntermediates.set(hash, cert)
  }
  return cert
}

export function parseChain (chain: readonly Uint8Array[]): ParsedCertificate[] {
  if (chain.length === 0) throw fail('PORTCULLIS_IDENTITY_MALFORMED', 'empty certificate chain')
  if (chain.length > 16) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `certificate chain of ${chain.length} certificates is longer than 16`)
  const parsed = chain.map((der, i) => {
    const buf = Buffer.from(der)
    if (i === 0) return { der: buf, cert: parseCertificateDer(der, 'leaf certificate') }
    return { der: buf, cert: parseIntermediate(buf, sha256(buf), `chain certificate ${i + 1}`) }
  })
  return parsed
}

export interface X509Verification {
  identity: IdentityDocument
  expiresAt: Date
}

/**
 * What both verifiers answer for a verified X509-SVID: the SPIFFE ID is the subject, the leaf's
 * issuer DN the issuer, and the path's earliest notAfter (`expiresAt`) the expiry.
 */
export function x509Verification (spiffeId: SpiffeId, source: CredentialSource, expiresAt: Date, x509: X509Details): X509Verification {
  const identity: IdentityDocument = {
    type: 'x509-svid',
    source,
    spiffe_id: spiffeId.id,
    trust_domain: spiffeId.trustDomain,
    path: spiffeId.path,
    subject: spiffeId.id,
    issuer: x509.issuer,
    expires_at: expiresAt.toISOString(),
    x509,
  }
  return { identity, expiresAt }
}

export function sha256 (der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}


/**
 * OpenSSL's parse of a certificate (node's X509Certificate), where the identity document's
 * subject, issuer and serial are printed from. OpenSSL is stricter than PKI.js about some
 * structures (e.g. bytes after the extensions inside tbsCertificate): such a certificate is
 * MALFORMED, never an unexpected error.
 */
export function openSslCertificate (der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch (err) {
    throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: not a certificate OpenSSL reads (${(err as Error).message})`, { what })
  }
}
