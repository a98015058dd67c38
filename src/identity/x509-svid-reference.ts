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
import { certificateFacts, checkDates, checkLeafRules, checkSigningCertificate, fail, x509BundleOf, x509Verification, openSslCertificate, parseChain, sha256, type ParsedCertificate, type X509Verification } from './x509-rules.js'

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

  const bundle = x509BundleOf(bundleOf, spiffeId)

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
