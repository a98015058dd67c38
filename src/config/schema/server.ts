/**
 * Configuration schema: the process and its HTTP listener (`server`), the protected endpoints
 * (`admin`), the compliance console (`console`) and logging (`logging`).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Bool, Int, Str, strict } from './common.js'

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

export type ServerConfig = Static<typeof ServerSchema>
export type ConsoleConfig = Static<typeof ConsoleSchema>
