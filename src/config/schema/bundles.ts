/**
 * Configuration schema: bundles from a directory (`bundles`), from bundle servers
 * (`bundles.<name>`, `services`) and the keys that verify them (`keys`, `bundles.signing.keys`).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Bool, Int, Str, strict } from './common.js'

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

export type BundlesConfig = Static<typeof BundlesSchema>
export type RemoteBundleConfig = Static<typeof RemoteBundleSchema>
export type ServiceConfig = Static<typeof ServiceSchema>
