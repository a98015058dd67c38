/**
 * The configuration schema: the source of both the TypeScript types and the validation.
 * Every key is documented in docs/configuration.md; unknown keys are rejected.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const Str = (description: string) => Type.String({ description })
const Int = (description: string, min = 0) => Type.Integer({ description, minimum: min })
const Bool = (description: string) => Type.Boolean({ description })
const strict = { additionalProperties: false }

export const ServerTlsSchema = Type.Object({
  // Optional only for workload_api.serving_svid (the certificate then comes from the agent); config/load.ts requires them otherwise.
  cert_file: Type.Optional(Str('PEM server certificate (chain) file; reloaded when it changes (not used with workload_api.serving_svid)')),
  key_file: Type.Optional(Str('PEM private key file; reloaded when it changes (not used with workload_api.serving_svid)')),
  client_auth: Type.Union([Type.Literal('none'), Type.Literal('request'), Type.Literal('require')], {
    description: 'none: no client certificates; request: a presented certificate must verify (else the request is refused); require: refuse requests without a verified client certificate. Verified against client_ca_file, else as an X.509-SVID against identity.trust_domains; with neither, request/require refuse to start',
  }),
  client_ca_file: Type.Optional(Str('PEM CA certificates client certificates must chain to, checked by the TLS layer; absent: client certificates are verified as X.509-SVIDs against identity.trust_domains')),
}, strict)

export const ServerSchema = Type.Object({
  addr: Str('listen address host:port (loopback by default)'),
  tls: Type.Optional(ServerTlsSchema),
  body_limit_bytes: Int('largest request body (after gzip decompression); larger bodies get 413', 1),
  max_json_depth: Int('deepest nesting of arrays/objects accepted in a request body', 1),
  request_timeout_ms: Int('time allowed for a whole request; 0 disables', 0),
  keep_alive_timeout_ms: Int('idle keep-alive connection timeout', 1),
  default_decision: Str('Data API path evaluated by POST / (OPA default: system/main)'),
  workers: Int('worker processes (node:cluster); 0 = number of cores', 0),
  shutdown_grace_ms: Int('on SIGTERM/SIGINT, how long in-flight requests may take before exit', 0),
  fast_data_route: Type.Boolean({ description: 'answer plain POST /v1/data/{path} requests ahead of fastify (same answers, less overhead); false sends every request through fastify' }),
}, strict)

export const VerificationKeySchema = Type.Object({
  key: Type.Optional(Str('PEM public key / certificate, or HMAC secret (prefer key_file or an env override)')),
  key_file: Type.Optional(Str('file holding the key')),
  algorithm: Type.Optional(Str('JWS algorithm this key verifies (default RS256)')),
  scope: Type.Optional(Str('scope signatures verified by this key must carry')),
}, strict)

/**
 * A bundle from a bundle server, configured with OPA's own keys (OPA `bundles.<name>`), so an
 * OPA configuration's bundle section works unchanged. Any object-valued key of `bundles` other
 * than Portcullis's own settings is one (config/bundle-service.ts fills the defaults).
 */
export const RemoteBundleSchema = Type.Object({
  service: Type.String({ description: 'name of the entry in services to download from (default: the first configured service)', minLength: 1 }),
  resource: Type.String({ description: 'path under the service URL (default bundles/<name>)', minLength: 1 }),
  polling: Type.Object({
    min_delay_seconds: Type.Integer({ description: 'least wait between two polls (jittered uniformly up to max_delay_seconds)', minimum: 0, maximum: 86_400 }),
    max_delay_seconds: Type.Integer({ description: 'longest wait between two polls; also the cap of the error backoff', minimum: 1, maximum: 86_400 }),
    long_polling_timeout_seconds: Type.Optional(Type.Integer({ description: 'ask the server to hold the request this long (Prefer: wait=N); used only while the server answers Content-Type application/vnd.openpolicyagent.bundles', minimum: 1, maximum: 3600 })),
  }, strict),
  signing: Type.Optional(Type.Object({
    keyid: Type.Optional(Type.String({ description: 'key (in keys or bundles.signing.keys) that verifies this bundle, whatever the signature names' })),
    scope: Type.Optional(Type.String({ description: 'scope the signature must carry' })),
    exclude_files: Type.Optional(Type.Array(Type.String(), { description: 'files left out of verification (Go filepath.Match patterns)' })),
  }, strict)),
  persist: Type.Boolean({ description: 'keep the last good download under persistence_directory and load it at start' }),
  size_limit_bytes: Type.Optional(Type.Integer({ description: 'largest decompressed size of any one file in the bundle, as in OPA (default: only bundles.max_bytes, the total, applies)', minimum: 1 })),
  trigger: Type.Optional(Type.Literal('periodic', { description: "OPA's trigger mode; only periodic is supported" })),
}, strict)

export const BundlesSchema = Type.Object({
  dir: Str('directory of bundles (name.tar.gz files and unpacked name/ directories), watched for changes'),
  watch: Bool('hot-reload bundles when the directory changes'),
  debounce_ms: Int('quiet time after a change before a bundle is reloaded'),
  stability_ms: Int('time a file size must stay unchanged before it is read'),
  max_bytes: Int('largest decompressed bundle (gzip-bomb guard)', 1),
  max_files: Int('most files in one bundle', 1),
  signing: Type.Object({
    required: Bool('reject bundles without .signatures.json'),
    keys: Type.Record(Type.String(), VerificationKeySchema, { description: 'verification keys by key id' }),
    key_id: Type.Optional(Str('key id to use regardless of the signature kid')),
    scope: Type.Optional(Str('scope every signature must carry')),
  }, strict),
}, { additionalProperties: RemoteBundleSchema })

/** A bundle server (OPA `services[_]`): where remote bundles come from and how to authenticate. */
export const ServiceSchema = Type.Object({
  name: Type.Optional(Type.String({ description: 'service name (the map key; required in the list form)', minLength: 1 })),
  url: Type.String({ description: 'base URL, http:// or https://', pattern: '^[hH][tT][tT][pP][sS]?://.+' }),
  headers: Type.Optional(Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$" }), Type.String(), { description: 'headers sent with every request' })),
  credentials: Type.Optional(Type.Object({
    bearer: Type.Optional(Type.Object({
      token: Type.Optional(Type.String({ description: 'the token (prefer token_path)' })),
      token_path: Type.Optional(Type.String({ description: 'file holding the token; read again for every request', minLength: 1 })),
      scheme: Type.Optional(Type.String({ description: 'Authorization scheme (default Bearer)', minLength: 1, pattern: "^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$" })),
    }, strict)),
    client_tls: Type.Optional(Type.Object({
      cert: Type.String({ description: 'PEM client certificate (chain) file; read again for every request', minLength: 1 }),
      private_key: Type.String({ description: 'PEM private key file; read again for every request', minLength: 1 }),
      private_key_passphrase: Type.Optional(Type.String({ description: 'passphrase of an encrypted private key' })),
    }, strict)),
  }, strict)),
  tls: Type.Optional(Type.Object({
    ca_cert: Type.Optional(Type.String({ description: "PEM CA file the server's certificate must chain to (instead of the system roots)", minLength: 1 })),
    system_ca_required: Type.Optional(Type.Boolean({ description: 'trust the system roots as well as ca_cert' })),
  }, strict)),
  response_header_timeout_seconds: Type.Optional(Type.Integer({ description: 'how long to wait for response headers (OPA default 10; 0: no limit beyond the download deadline)', minimum: 0, maximum: 3600 })),
}, strict)

export const PolicySchema = Type.Object({
  strict_builtin_errors: Bool('a builtin error fails the decision (OPA strict mode) instead of making the expression undefined'),
  max_memory_pages: Int('wasm linear memory limit per policy instance, in 64 KiB pages', 16),
  builtin_switches: Type.Array(Type.String(), { description: 'builtins that reach outside the process, switched on by name (http_send, net_lookup_ip_addr, rand_intn); none by default' }),
  runtime_env: Type.Array(Type.String(), { description: 'environment variables opa.runtime().env exposes to policies (none by default; OPA exposes all)' }),
  http_send: Type.Object({
    timeout_ms: Int('default and largest timeout of one http.send call', 1),
    allowed_hosts: Type.Array(Type.String(), { description: 'hosts http.send may reach; empty = any (only matters when the http_send switch is on)' }),
  }, strict),
  reasons: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { description: 'decision path -> the rule evaluated on a deny for its reasons, e.g. {"authz/allow": "authz/reasons"} (wins over a bundle manifest\'s metadata.portcullis.reasons)' }),
  return_reasons: Bool('return a deny\'s reasons to the caller: Data API `reasons` beside `result`, Envoy header x-portcullis-reasons (always recorded in the audit event)'),
}, strict)

export const CacheSchema = Type.Object({
  enabled: Bool('cache decisions (automatically off for policies calling non-deterministic builtins)'),
  max_entries: Int('most cached decisions', 1),
  ttl_ms: Int('longest a cached decision is reused', 1),
}, strict)

export const AdminSchema = Type.Object({
  authz_path: Str('system policy that authorizes protected endpoints (input: method, path, identity, remote_addr); when no bundle defines it, only loopback callers are allowed'),
  allowed_hosts: Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: 256, description: 'host names the console (always) and the protected endpoints (on loopback connections) answer for besides this server\'s own (loopback names on loopback, the listen address): `name` (any port) or `name:port`; any other Host is refused (PORTCULLIS_HOST_REJECTED, DNS-rebinding defence)' }),
}, strict)

/** The compliance console (docs/console.md): its API under /v1/console/* and the web UI under /ui/. */
export const ConsoleSchema = Type.Object({
  enabled: Type.Optional(Type.Boolean({ description: 'serve the compliance console (/v1/console/*, /ui/), behind admin.authz_path; default: on only when server.addr is a loopback address' })),
  grants_path: Str('policy entrypoint listing the permissions the policy grants ([{caller, path, method}], `*` for any), evaluated with empty input for the access review\'s unused grants'),
  cache_max_bytes: Type.Integer({ minimum: 65_536, maximum: 2 ** 40, description: 'bound on the estimated memory of the console\'s caches (segment index and overview partials, half each), in bytes' }),
}, strict)

export const LoggingSchema = Type.Object({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { description: 'log level' }),
}, strict)

/** JWS algorithms the SPIFFE JWT-SVID standard allows (JWT-SVID §3): RS, ES, PS at 256/384/512. */
export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const
export type JwtAlgorithm = typeof JWT_SVID_ALGORITHMS[number]

const Range = (description: string, minimum: number, maximum: number) => Type.Integer({ description, minimum, maximum })
const NonEmpty = (description: string) => Type.String({ description, minLength: 1 })
/**
 * A list of strings where the file may also give one string (`x509_authorities: ca.pem`).
 * `x-single-is-list` marks it for config/identity.ts, which wraps a lone string before validation.
 */
const List = <T extends TSchema>(items: T, description: string, minItems = 0) => Type.Array(items, { description, minItems, 'x-single-is-list': true })
/** RFC 9110 field-name token; stored lowercase. */
const HeaderName = (description: string) => Type.String({ description, pattern: "^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$" })
const Algorithms = (description: string) => List(Type.Union(JWT_SVID_ALGORITHMS.map((a) => Type.Literal(a))), description, 1)
const DAY_S = 86_400

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

export const EnvoyExtAuthzSchema = Type.Object({
  path: NonEmpty('decision path evaluated for every Check (opa-envoy-plugin default: envoy/authz/allow)'),
  skip_request_body_parse: Bool('leave out input.parsed_body and input.truncated_body'),
  dry_run: Bool('answer OK whatever the policy decides; the real decision is recorded (metrics, logs, audit)'),
  error_response: Bool('gRPC: an evaluation error is answered with CheckResponse.error_response (field 5) instead of a gRPC error status; either way Envoy applies failure_mode_allow / status_on_error'),
  grpc: Type.Object({
    enabled: Bool('serve envoy.service.auth.v3.Authorization/Check over gRPC'),
    addr: Type.String({ description: 'listen address host:port, or unix:/path/to.sock', pattern: '^(unix:.+|.+:[0-9]+)$' }),
    enable_reflection: Bool('serve gRPC server reflection'),
    max_recv_msg_size: Int('largest CheckRequest accepted, in bytes', 1),
  }, strict),
  http: Type.Object({
    enabled: Bool("serve Envoy's http_service mode"),
    addr: Type.String({ description: 'listen address host:port', pattern: '^.+:[0-9]+$' }),
    path_prefix: Str("Envoy's http_service path_prefix, removed from the path before the input is built"),
    max_body_bytes: Int('largest forwarded request body', 1),
  }, strict),
  cache: Type.Object({
    enabled: Bool('use the decision cache (cache.enabled must be on) for Checks; off by default: every CheckRequest differs'),
    ignore_input_paths: Type.Array(Type.String({ description: 'dotted input path', pattern: '^[^.]+(\\.[^.]+)*$' }), { description: 'input paths the cache key leaves out, e.g. attributes.request.http.id; a policy that reads one of them gets answers cached for other values' }),
  }, strict),
}, strict)


/**
 * Decision-log shipping (src/audit/ship/) with OPA's `decision_logs` keys, so an OPA
 * configuration's section works unchanged (docs/audit.md, "Shipping"). Events are read from the
 * durable audit log, so shipping needs `audit.enabled`. Keys OPA uses for its in-memory buffer
 * are accepted and have no effect: the durable log is the buffer and nothing is dropped.
 */
export const DecisionLogsReportingSchema = Type.Object({
  min_delay_seconds: Range('least time between two periodic uploads (OPA default 300); set together with max_delay_seconds', 0, 86_400),
  max_delay_seconds: Range('most time between two periodic uploads (OPA default 600), and the cap of the retry backoff', 1, 86_400),
  upload_size_limit_bytes: Range('largest gzip-compressed upload body (OPA default 32768); a single event larger than this is sent alone and counted', 1, 2 ** 31),
  trigger: Type.Union([Type.Literal('periodic'), Type.Literal('manual')], { description: 'periodic: upload every uniformly random [min, max] delay; manual: only when asked (Shipper.trigger())' }),
  buffer_size_limit_events: Type.Optional(Range('upload early, before the period ends, once this many events wait (checked every second)', 1, 2 ** 31)),
  buffer_type: Type.Optional(Type.Union([Type.Literal('size'), Type.Literal('event')], { description: "OPA's in-memory buffer type: accepted, no effect (the durable log is the buffer)" })),
  buffer_size_limit_bytes: Type.Optional(Range("OPA's in-memory buffer bound: accepted, no effect (nothing is dropped; the log's retention bounds the disk)", 1, 2 ** 53 - 1)),
  max_decisions_per_second: Type.Optional(Type.Number({ description: "OPA's rate limit that drops events: accepted, no effect (Portcullis never drops an event it logged)", exclusiveMinimum: 0 })),
}, strict)

export const DecisionLogsShippingSchema = {
  service: Type.Optional(NonEmpty('name of the service in `services` events are uploaded to (OPA: default the first service unless console is on)')),
  resource: Type.Optional(NonEmpty('path under the service URL events are POSTed to (default /logs)')),
  partition_name: Type.Optional(Type.String({ description: 'uploads go to /logs/<partition_name> (overrides resource, as in OPA)', minLength: 1, pattern: '^[^/?#]+$' })),
  reporting: DecisionLogsReportingSchema,
}

const Durability = Type.Union([Type.Literal('sync'), Type.Literal('batched'), Type.Literal('async')], {
  description: 'sync: a decision is answered only after its event is on disk (fdatasync, group commit); batched: synced at most every batch_interval_ms (the loss window on a crash); async: written, synced by the OS',
})

export const AuditSchema = Type.Object({
  enabled: Bool('record every decision in the durable audit log (docs/audit.md); --audit-dir turns it on'),
  dir: NonEmpty('directory of the audit log (segments, tree, checkpoints); one stream per worker process'),
  durability: Durability,
  batch_interval_ms: Range('batched: longest time between two syncs', 1, 60_000),
  sync_timeout_ms: Range('sync: a decision waits at most this long for its event to be on disk, then is denied (503); set it below the ext_authz timeout of Envoy. The event may still be written later', 1, 600_000),
  segment: Type.Object({
    max_bytes: Range('a segment is closed and a new one begun at this size', 4096, 2 ** 40),
    max_age_seconds: Range('... or at this age', 1, 365 * DAY_S),
  }, strict),
  retention: Type.Object({
    max_age_seconds: Type.Optional(Range('closed segments older than this are removed (reported by verify as retention, not tampering)', 1, 100 * 365 * DAY_S)),
    max_bytes: Type.Optional(Range('oldest closed segments are removed while the log is larger than this', 4096, 2 ** 50)),
    protect_unshipped: Type.Optional(Bool('with decision-log shipping on, retention never removes a segment holding events the collector has not acknowledged (default true)')),
  }, strict),
  checkpoint: Type.Object({
    every_events: Range('a signed checkpoint every this many events', 1, 1e9),
    every_seconds: Range('... and at least this often while events arrive', 1, DAY_S),
    key_file: Type.Optional(NonEmpty('Ed25519 private key (PKCS#8 PEM) that signs checkpoints; without it one is generated in the audit directory (its public half beside it: pin that copy elsewhere)')),
    origin: Type.Optional(NonEmpty('checkpoint origin line (C2SP tlog-checkpoint); default derived from the host name')),
  }, strict),
  max_pending_bytes: Range('bound on events accepted but not yet written; beyond it on_full applies', 65_536, 2 ** 40),
  on_full: Type.Union([Type.Literal('deny'), Type.Literal('shed')], { description: 'the log cannot take an event (disk full or slow past max_pending_bytes): deny fails the decision closed (503, counted); shed answers and counts the lost event' }),
  erase: Type.Array(Type.String({ pattern: '^/(input|result|nd_builtin_cache|reasons)(/.*)?$' }), { description: 'JSON pointers (OPA mask syntax, plus /reasons for a deny\'s reasons) erased from every event before it is written, listed in its erased field; replaces the default list (credential headers and peer certificates of Envoy input)' }),
  labels: Type.Record(Type.String(), Type.String(), { description: 'labels added to every event (id, version and hostname are always set)' }),
}, strict)

/**
 * OPA's `decision_logs` section: the keys that apply to the local trail (console, mask, drop)
 * and the shipping keys (src/audit/ship/, DecisionLogsShippingSchema above).
 */
export const DecisionLogsSchema = Type.Object({
  console: Bool('also log every event as a structured log line ("Decision Log", as OPA does)'),
  mask_decision: NonEmpty('the bundle policy that masks events (OPA default /system/log/mask); evaluated only when a bundle defines it'),
  drop_decision: NonEmpty('the bundle policy that drops events (OPA default /system/log/drop); evaluated only when a bundle defines it'),
  ...DecisionLogsShippingSchema,
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

export const ConfigSchema = Type.Object({
  server: ServerSchema,
  bundles: BundlesSchema,
  policy: PolicySchema,
  cache: CacheSchema,
  admin: AdminSchema,
  console: ConsoleSchema,
  logging: LoggingSchema,
  identity: Type.Optional(IdentitySchema),
  envoy_ext_authz: EnvoyExtAuthzSchema,
  // OPA's top-level keys for bundle servers (config/bundle-service.ts normalizes the list form of services).
  services: Type.Record(Type.String({ minLength: 1 }), ServiceSchema, { description: 'bundle servers by name (OPA services; a list with name is accepted too)' }),
  keys: Type.Record(Type.String({ minLength: 1 }), VerificationKeySchema, { description: 'bundle verification keys by key id (OPA keys), beside bundles.signing.keys' }),
  persistence_directory: Str('where persisted bundles are kept (<dir>/bundles/<name>/bundle.tar.gz); OPA default .opa, ours .portcullis'),
  audit: AuditSchema,
  decision_logs: DecisionLogsSchema,
  workload_api: WorkloadApiSchema,
}, strict)

export type Config = Static<typeof ConfigSchema>
export type ServerConfig = Static<typeof ServerSchema>
export type BundlesConfig = Static<typeof BundlesSchema>
export type IdentityConfig = Static<typeof IdentitySchema>
export type TrustDomainConfig = Static<typeof TrustDomainSchema>
export type BundleEndpointConfig = Static<typeof BundleEndpointSchema>
export type OidcIssuerConfig = Static<typeof OidcIssuerSchema>
export type EnvoyExtAuthzConfig = Static<typeof EnvoyExtAuthzSchema>
export type RemoteBundleConfig = Static<typeof RemoteBundleSchema>
export type ServiceConfig = Static<typeof ServiceSchema>
export type AuditConfig = Static<typeof AuditSchema>
export type ConsoleConfig = Static<typeof ConsoleSchema>
export type DecisionLogsConfig = Static<typeof DecisionLogsSchema>
export type WorkloadApiConfig = Static<typeof WorkloadApiSchema>
export type DecisionLogsReportingConfig = Static<typeof DecisionLogsReportingSchema>
