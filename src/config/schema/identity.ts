/**
 * Configuration schema: identity verification (`identity`: trust domains, X.509-SVIDs,
 * JWT-SVIDs, OIDC, the credential cache) and the SPIFFE Workload API client (`workload_api`).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Bool, DAY_S, HeaderName, List, NonEmpty, Range, strict } from './common.js'

/** JWS algorithms the SPIFFE JWT-SVID standard allows (JWT-SVID §3): RS, ES, PS at 256/384/512. */
export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const
export type JwtAlgorithm = typeof JWT_SVID_ALGORITHMS[number]

const Algorithms = (description: string) => List(Type.Union(JWT_SVID_ALGORITHMS.map((a) => Type.Literal(a))), description, 1)

/** SPIFFE bundle endpoint, `https_web` profile (SPIFFE Trust Domain and Bundle §5.2.1). */
export const BundleEndpointSchema = Type.Object({
  url: NonEmpty('https:// URL of the endpoint (plain http only for loopback hosts, for tests)'),
  ca: Type.Optional(NonEmpty("PEM file of CA certificates for the endpoint's TLS server; default: Node's Web PKI roots")),
  timeout_ms: Range('request timeout', 1, 600_000),
  default_refresh_seconds: Range('refresh interval when the bundle carries no spiffe_refresh_hint', 1, 7 * DAY_S),
  min_refresh_seconds: Range('lower clamp of the refresh hint (a hostile hint cannot hammer us)', 1, 7 * DAY_S),
  max_refresh_seconds: Range('upper clamp of the refresh hint (a hostile hint cannot starve us)', 1, 7 * DAY_S),
  initial_backoff_seconds: Range('first retry delay after a failed fetch; doubles per failure', 1, DAY_S),
  max_backoff_seconds: Range('longest retry delay', 1, DAY_S),
}, strict)

export const TrustDomainSchema = Type.Object({
  x509_authorities: List(NonEmpty('file'), "PEM files holding the trust domain's X.509 authorities (CA certificates)"),
  spiffe_bundles: List(NonEmpty('file'), 'SPIFFE bundle JSON files (JWK Set with use x509-svid / jwt-svid)'),
  jwt_authorities: List(NonEmpty('file'), 'JWKS files holding JWT-SVID signing keys (use absent, sig or jwt-svid)'),
  bundle_endpoint: Type.Optional(BundleEndpointSchema),
}, strict)

export const X509SourceSchema = Type.Union([Type.Literal('mtls'), Type.Literal('ext_authz'), Type.Literal('xfcc')])
export type X509Source = Static<typeof X509SourceSchema>

export const XfccSchema = Type.Object({
  trusted_proxies: List(NonEmpty('address or CIDR'), 'addresses or CIDRs of the proxies (Envoy) allowed to set x-forwarded-client-cert'),
  element: Type.Union([Type.Literal('last'), Type.Literal('first')], { description: 'which XFCC element names the caller: Envoy appends the client it saw last (APPEND_FORWARD)' }),
  header: HeaderName('header name'),
}, strict)

export const ExtAuthzSourceSchema = Type.Object({
  trusted_callers: List(NonEmpty('address or CIDR'), "addresses or CIDRs of the ext_authz callers (Envoy) whose CheckRequest source.certificate is believed; unix-socket callers always are. Default: loopback"),
}, strict)

export const X509SvidSchema = Type.Object({
  enabled: Bool('verify X.509-SVIDs (default: true when the section or a trust domain is configured)'),
  sources: List(X509SourceSchema, 'sources checked, in this fixed precedence: mtls > ext_authz > xfcc'),
  xfcc: XfccSchema,
  ext_authz: ExtAuthzSourceSchema,
}, strict)

export const JwtSvidSchema = Type.Object({
  enabled: Bool('verify JWT-SVIDs (default: true when the section is present)'),
  audiences: List(NonEmpty('audience'), "audiences Portcullis accepts; a token's aud must contain at least one"),
  header: HeaderName('header carrying the token: authorization means "Bearer <token>"; any other header carries the bare token'),
  leeway_seconds: Range('clock skew tolerated for exp / nbf / iat', 0, 300),
  algorithms: Algorithms('JWS algorithms accepted'),
}, strict)

export const OidcIssuerSchema = Type.Object({
  issuer: NonEmpty('exact iss value, e.g. https://kubernetes.default.svc.cluster.local'),
  audiences: List(NonEmpty('audience'), 'audiences accepted (an OIDC token is only accepted for a named audience)', 1),
  algorithms: Algorithms('JWS algorithms accepted'),
  discovery: Bool('keys from {issuer}/.well-known/openid-configuration (exactly one of discovery, jwks_uri, jwks_file)'),
  jwks_uri: Type.Optional(NonEmpty('https:// URL of the JWK Set')),
  jwks_file: Type.Optional(NonEmpty('JWK Set file')),
  header: HeaderName('header carrying the token'),
  leeway_seconds: Range('clock skew tolerated for exp / nbf / iat', 0, 300),
  timeout_ms: Range('request timeout', 1, 600_000),
  cooldown_ms: Range('least time between two key fetches', 0, 86_400_000),
  max_cache_age_ms: Range('longest keys are used without a refetch', 1, 7 * 86_400_000),
  ca: Type.Optional(NonEmpty('PEM CA file for the discovery / JWKS https endpoints (default Web PKI roots)')),
}, strict)

export const IdentitySchema = Type.Object({
  on_missing: Type.Union([Type.Literal('deny'), Type.Literal('allow')], { description: 'no credential: deny before the policy, or let the policy decide' }),
  on_rejected: Type.Union([Type.Literal('deny'), Type.Literal('allow')], { description: 'rejected credential: deny before the policy, or let the policy see input.identity_error' }),
  // SPIFFE ID §2.1: a trust domain name is [a-z0-9.-_], at most 255 bytes (ASCII, so characters).
  trust_domains: Type.Record(Type.String(), TrustDomainSchema, {
    description: 'trust bundles by trust domain name',
    propertyNames: { pattern: '^[a-z0-9._-]+$', maxLength: 255 },
  }),
  x509_svid: X509SvidSchema,
  jwt_svid: JwtSvidSchema,
  oidc: Type.Object({ issuers: Type.Array(OidcIssuerSchema, { description: 'OIDC issuers (Kubernetes service-account tokens, …)' }) }, strict),
  cache: Type.Object({
    enabled: Bool('cache verified credentials'),
    max_entries: Range('most cached credentials', 1, 10_000_000),
    max_bytes: Range('bound on the estimated memory of the cached identity documents (see docs/identity.md)', 65_536, 2 ** 40),
    max_ttl_seconds: Range("upper bound of an entry's life; each entry also ends at its credential's expiry", 1, DAY_S),
  }, strict),
  watch: Type.Object({
    enabled: Bool('reload trust-bundle files when they change on disk'),
    debounce_ms: Range('quiet time after a change before reloading', 0, 60_000),
    use_polling: Bool('poll files instead of file-system events'),
  }, strict),
}, strict)

/** SPIFFE Workload API client (src/identity/workload-api/; docs/identity.md "Workload API"). */
export const WorkloadApiSchema = Type.Object({
  enabled: Bool('stream trust bundles and/or the serving X.509-SVID from the SPIFFE Workload API (a SPIRE agent)'),
  socket: Type.Optional(NonEmpty('Workload API endpoint: unix:///path (or unix:/path) or tcp://ip:port; default: SPIFFE_ENDPOINT_SOCKET')),
  trust_bundles: Bool("X.509 and JWT bundles from FetchX509Bundles / FetchJWTBundles as trust-bundle sources (per trust domain, federated ones included, unioned with the domain's configured sources); needs the identity section"),
  serving_svid: Bool("serve the Data API's TLS (and the Envoy gRPC listener's, on TCP) with the X.509-SVID from FetchX509SVID, rotated in place; server.tls cert_file/key_file are then not used"),
  svid_hint: Type.Optional(NonEmpty('with several SVIDs: serve the one with this hint')),
  spiffe_id: Type.Optional(NonEmpty('with several SVIDs: serve the one with this SPIFFE ID')),
  ready_requires_update: Bool('/health/ready answers 503 until every enabled stream has delivered its first good message'),
  envoy_grpc_client_auth: Type.Union([Type.Literal('require'), Type.Literal('none')], { description: "with serving_svid, the Envoy gRPC listener (TCP) requires a client X.509-SVID verified against its own trust domain's bundle from the SVID response and allowed by envoy_grpc_client_ids (require), or asks for none" }),
  envoy_grpc_client_ids: Type.Array(NonEmpty('a SPIFFE ID (spiffe://td/path) or a trust domain (spiffe://td: any of its workloads)'), { description: "with envoy_grpc_client_auth: require, who may call Check; empty (default): any workload of the serving SVID's own trust domain" }),
  backoff: Type.Object({
    initial_ms: Range('first retry delay after Unavailable / PermissionDenied; grows linearly per failure (go-spiffe: 1 s, 2 s, 3 s, …)', 1, 600_000),
    max_ms: Range('longest retry delay', 1, 3_600_000),
  }, strict),
}, strict)

export type IdentityConfig = Static<typeof IdentitySchema>
export type TrustDomainConfig = Static<typeof TrustDomainSchema>
export type BundleEndpointConfig = Static<typeof BundleEndpointSchema>
export type OidcIssuerConfig = Static<typeof OidcIssuerSchema>
export type WorkloadApiConfig = Static<typeof WorkloadApiSchema>
