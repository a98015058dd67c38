/**
 * Reference X.509-SVID verification (SPIFFE X509-SVID standard §4, §5; RFC 5280 §6): PKI.js's
 * CertificateChainValidationEngine against the X.509 authorities of the leaf's own trust domain
 * only, after the SPIFFE leaf rules and the dates and CA flags of the presented intermediates
 * (so each failure has its own code).
 *
 * This was the only verifier until the node:crypto path (x509-svid.ts) replaced it for the
 * shapes that path understands; it still decides every chain that path defers (unusual
 * extensions, ambiguous issuers, signature algorithms outside its table) and is the oracle of
 * the differential test (test/identity/x509-svid-differential.test.ts).
 */
import * as pkijs from 'pkijs'
import type { TrustBundle } from './bundle.js'
import type { CredentialSource } from './document.js'
import { readCertificate } from './certificate-tree.js'
import { certificateFacts, checkDates, checkLeafRules, checkPresentedEncoding, checkSigningCertificate, fail, x509BundleOf, x509Verification, openSslCertificate, parseChain, sha256, type ParsedCertificate, type X509Verification } from './x509-rules.js'

/** GeneralName tags (RFC 5280 §4.2.1.6) the leaf's names are checked against. */
const DNS_NAME = 2
const URI = 6

/**
 * Whether `host` is within a URI name constraint (RFC 5280 §4.2.1.10: the constraint applies to
 * the host; `.example.org` is any host below example.org, `example.org` that host only).
 */
function uriHostWithin (host: string, constraint: string): boolean {
  const c = constraint.toLowerCase()
  const h = host.toLowerCase()
  if (c === '') return true
  return c.startsWith('.') ? h.endsWith(c) && h.length > c.length : h === c
}

/** Whether a DNS name is within a dNSName constraint (RFC 5280 §4.2.1.10: labels added on the left; `.x` below x only). */
function dnsWithin (name: string, constraint: string): boolean {
  const c = constraint.toLowerCase().replace(/\.$/, '')
  const n = name.toLowerCase().replace(/\.$/, '')
  if (c === '') return true
  if (c.startsWith('.')) return n.endsWith(c) && n.length > c.length
  return n === c || n.endsWith(`.${c}`)
}

/**
 * The leaf's SPIFFE ID (the host of its URI SAN is its trust domain) and DNS SANs against the
 * name constraints of every CA certificate of the path, the trust anchor included, each CA on
 * its own (RFC 5280 §6.1.4 (g): the permitted subtrees of a path are the intersection of its
 * CAs', so a name must be permitted by every CA that permits any name of its type and excluded
 * by none). PKI.js's own check, which still runs, joins the permitted subtrees of the path (a
 * sub-CA could re-permit what its issuer's constraints left out) and skips the anchor's (Go's
 * crypto/x509, which go-spiffe uses, applies them): this check closes both for the names an
 * SVID carries. Other name forms (directoryName, e-mail, IP) are left to PKI.js.
 */
function checkNameConstraints (path: readonly pkijs.Certificate[], dnsNames: readonly string[], spiffeId: { id: string, trustDomain: string }): void {
  for (let i = 1; i < path.length; i++) {
    const ext = (path[i] as pkijs.Certificate).extensions?.find((e) => e.extnID === '2.5.29.30')
    if (ext === undefined) continue
    const nc = ext.parsedValue as pkijs.NameConstraints | undefined
    const refuse = (why: string): never => {
      throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate path of ${spiffeId.id}: the name constraints of path certificate ${i + 1} ${why}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
    }
    if (!(nc instanceof pkijs.NameConstraints)) refuse('cannot be read')
    const ofType = (subtrees: pkijs.GeneralSubtree[] | undefined, type: number): string[] | undefined => {
      const bases = (subtrees ?? []).map((t) => t.base).filter((b) => b.type === type)
      if (bases.length === 0) return undefined
      // a constraint of these types is a string; anything else cannot be matched: no name is within it
      return bases.map((b) => typeof b.value === 'string' ? b.value : '\u0000')
    }
    const names: Array<[number, string[], (n: string, c: string) => boolean, string]> = [
      [URI, [spiffeId.trustDomain], uriHostWithin, 'URI'],
      [DNS_NAME, [...dnsNames], dnsWithin, 'DNS'],
    ]
    for (const [type, values, within, label] of names) {
      const permitted = ofType(nc?.permittedSubtrees, type)
      const excluded = ofType(nc?.excludedSubtrees, type) ?? []
      for (const v of values) {
        if (permitted !== undefined && !permitted.some((c) => within(v, c))) refuse(`do not permit the ${label} name ${v}`)
        if (excluded.some((c) => within(v, c))) refuse(`exclude the ${label} name ${v}`)
      }
    }
  }
}

/**
 * Issuer lookups one path search may make (see verifyX509SvidReference): a linear chain of 16
 * certificates needs 16; the rest is room for cross-signed candidates.
 */
export const MAX_ISSUER_SEARCHES = 128

/**
 * Verifies an X509-SVID chain (DER, leaf first) at `now`.
 *
 * @param bundleOf returns the trust bundle of a trust domain, or undefined when unknown.
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
 */
export async function verifyX509SvidReference (chain: readonly Uint8Array[], bundleOf: (trustDomain: string) => TrustBundle | undefined, now: Date, source: CredentialSource): Promise<X509Verification> {
  const parsed = parseChain(chain)
  const leaf = parsed[0] as ParsedCertificate
  const { facts, spiffeId } = checkLeafRules(leaf.cert)
  // every presented certificate's encoding and signature algorithm (x509-rules.ts), after the leaf rules
  checkPresentedEncoding(parsed.map((p, i) => ({ tree: readCertificate(p.der), what: i === 0 ? 'leaf certificate' : `chain certificate ${i + 1}` })))

  const bundle = x509BundleOf(bundleOf, spiffeId)

  checkDates(leaf.cert, now, 'leaf certificate')
  for (const [i, c] of parsed.slice(1).entries()) {
    const what = `chain certificate ${i + 2}`
    checkDates(c.cert, now, what)
    checkSigningCertificate(c.cert, what)
  }

  // PKI.js validates the LAST certificate of `certs`: the leaf goes last, intermediates before it.
  // Its path search (sort → buildPath) follows every issuer candidate with no memory of the path,
  // so presented certificates that issue each other (X by Y, Y by X — anyone can make them) would
  // keep it searching forever. Each step of the search asks findIssuer once: a budget on those
  // calls ends any search a real chain never needs (≤ 16 certificates; a few candidates each).
  let issuerSearches = 0
  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: bundle.x509Authorities.map((a) => a.cert),
    certs: [...parsed.slice(1).map((c) => c.cert), leaf.cert],
    checkDate: now,
    findIssuer: async (cert, eng, crypto) => {
      if (++issuerSearches > MAX_ISSUER_SEARCHES) throw new Error(`certificate path search exceeded ${MAX_ISSUER_SEARCHES} issuer lookups (presented certificates that issue each other)`)
      return await eng.defaultFindIssuer(cert, eng, crypto)
    },
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
  checkNameConstraints(path, facts.dnsNames, spiffeId)
  // RFC 5280 §6.1.4 (l, m): pathLenConstraint caps the number of intermediates below a CA.
  for (let i = 1; i < path.length; i++) {
    const f = certificateFacts(path[i] as pkijs.Certificate, `path certificate ${i + 1}`)
    if (f.pathLen !== undefined && i - 1 > f.pathLen) {
      throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id} exceeds pathLenConstraint ${f.pathLen} of path certificate ${i + 1}`, { spiffe_id: spiffeId.id })
    }
  }

  const expiresAt = new Date(Math.min(...path.map((c) => c.notAfter.value.getTime())))
  const derOf = new Map<pkijs.Certificate, Uint8Array>([...parsed.map((p) => [p.cert, p.der] as const), ...bundle.x509Authorities.map((a) => [a.cert, a.der] as const)])
  const node = openSslCertificate(leaf.der, 'leaf certificate')
  return x509Verification(spiffeId, source, expiresAt, {
    fingerprint_sha256: sha256(leaf.der),
    serial: node.serialNumber.toUpperCase(),
    not_before: leaf.cert.notBefore.value.toISOString(),
    not_after: leaf.cert.notAfter.value.toISOString(),
    subject: node.subject.replace(/\n/g, ', '),
    issuer: node.issuer.replace(/\n/g, ', '),
    dns_sans: facts.dnsNames,
    chain_sha256: path.map((c) => sha256(derOf.get(c) ?? new Uint8Array(c.toSchema().toBER()))),
  })
}
