/**
 * The configuration schema: the source of both the TypeScript types and the validation.
 * Every key is documented in docs/configuration.md; unknown keys are rejected.
 */
import { Type, type Static } from '@sinclair/typebox'

const Str = (description: string) => Type.String({ description })
const Int = (description: string, min = 0) => Type.Integer({ description, minimum: min })
const Bool = (description: string) => Type.Boolean({ description })
const strict = { additionalProperties: false }

export const ServerTlsSchema = Type.Object({
  cert_file: Str('PEM server certificate (chain) file; reloaded when it changes'),
  key_file: Str('PEM private key file; reloaded when it changes'),
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
}, strict)

export const CacheSchema = Type.Object({
  enabled: Bool('cache decisions (automatically off for policies calling non-deterministic builtins)'),
  max_entries: Int('most cached decisions', 1),
  ttl_ms: Int('longest a cached decision is reused', 1),
}, strict)

export const AdminSchema = Type.Object({
  authz_path: Str('system policy that authorizes protected endpoints (input: method, path, identity, remote_addr); when no bundle defines it, only loopback callers are allowed'),
}, strict)

export const LoggingSchema = Type.Object({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { description: 'log level' }),
}, strict)

export const ConfigSchema = Type.Object({
  server: ServerSchema,
  bundles: BundlesSchema,
  policy: PolicySchema,
  cache: CacheSchema,
  admin: AdminSchema,
  logging: LoggingSchema,
  identity: Type.Optional(Type.Unknown({ description: 'identity plugins (see docs/identity.md); absent: identity verification off' })),
}, strict)

export type Config = Static<typeof ConfigSchema>
export type ServerConfig = Static<typeof ServerSchema>
export type BundlesConfig = Static<typeof BundlesSchema>
