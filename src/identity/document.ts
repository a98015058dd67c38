/**
 * The identity document: one shape for every plugin, placed in `input.identity`. Only
 * verified facts go in it: nothing is copied from a credential before it has verified.
 */

export type IdentityType = 'x509-svid' | 'jwt-svid' | 'oidc'
/** Where the credential came from. */
/** `ext_authz`: the peer certificate Envoy reported in a CheckRequest (`source.certificate`). */
export type CredentialSource = 'mtls' | 'ext_authz' | 'xfcc' | 'header'

export interface X509Details {
  /** SHA-256 of the leaf certificate's DER, lowercase hex. */
  fingerprint_sha256: string
  /** Serial number of the leaf, uppercase hex. */
  serial: string
  not_before: string
  not_after: string
  /** Subject and issuer distinguished names of the leaf (display form). */
  subject: string
  issuer: string
  /** DNS SANs of the leaf. */
  dns_sans: string[]
  /** SHA-256 fingerprints of the validated path, leaf first, trust anchor last. */
  chain_sha256: string[]
}

export interface KubernetesDetails {
  namespace: string
  service_account: { name: string, uid?: string }
  pod?: { name: string, uid?: string }
  node?: { name: string, uid?: string }
}

export interface IdentityDocument {
  type: IdentityType
  source: CredentialSource
  /** The verified SPIFFE ID (X.509-SVID, JWT-SVID; OIDC only when `sub` is a SPIFFE ID). */
  spiffe_id?: string
  trust_domain?: string
  /** SPIFFE ID path, e.g. `/ns/prod/sa/api`. */
  path?: string
  /** The principal: the SPIFFE ID, or the token's `sub`. */
  subject: string
  /** JWT `iss`, or the X.509 leaf's issuer DN. */
  issuer?: string
  /** JWT `aud` as a list. */
  audience?: string[]
  /** When the credential stops being valid (RFC 3339); for X.509 the earliest notAfter of the path. */
  expires_at: string
  issued_at?: string
  x509?: X509Details
  kubernetes?: KubernetesDetails
  /** The verified JWT claims set (JWT-SVID, OIDC). */
  claims?: Record<string, unknown>
}

/** Documents are frozen whole, so a cached document cannot be altered by a caller. */
export { deepFreeze } from '../deep-freeze.js'
