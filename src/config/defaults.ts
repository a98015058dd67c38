/** Every default, in one place. */
import { JWT_SVID_ALGORITHMS, type BundleEndpointConfig, type Config, type IdentityConfig, type OidcIssuerConfig, type TrustDomainConfig } from './schema.js'

/** Pointers erased from every audit event by default: credentials and peer certificates in Envoy's input (docs/audit.md). */
export const AUDIT_DEFAULT_ERASE: readonly string[] = Object.freeze([
  '/input/attributes/request/http/headers/authorization',
  '/input/attributes/request/http/headers/cookie',
  '/input/attributes/request/http/headers/proxy-authorization',
  '/input/attributes/request/http/headers/x-forwarded-client-cert',
  '/input/attributes/source/certificate',
  '/input/attributes/destination/certificate',
])

/**
 * Defaults of `decision_logs.reporting` (OPA's, v1/plugins/logs/plugin.go), applied when
 * shipping is configured. OPA requires min and max delay together; so does
 * config/decision-logs.ts.
 */
export const DECISION_LOGS_REPORTING_DEFAULTS = {
  min_delay_seconds: 300,
  max_delay_seconds: 600,
  upload_size_limit_bytes: 32_768,
  trigger: 'periodic',
} as const
/** Where events are POSTed under the service URL (OPA's default resource). */
export const DECISION_LOGS_DEFAULT_RESOURCE = '/logs'

export const DEFAULTS: Config = {
  server: {
    addr: '127.0.0.1:8181',
    body_limit_bytes: 1024 * 1024,
    max_json_depth: 64,
    request_timeout_ms: 10_000,
    keep_alive_timeout_ms: 72_000,
    default_decision: 'system/main',
    workers: 0,
    shutdown_grace_ms: 10_000,
    fast_data_route: true,
  },
  bundles: {
    dir: 'bundles',
    watch: true,
    debounce_ms: 250,
    stability_ms: 200,
    max_bytes: 256 * 1024 * 1024,
    max_files: 10_000,
    signing: { required: false, keys: {} },
  },
  policy: {
    strict_builtin_errors: false,
    max_memory_pages: 8192,
    builtin_switches: [],
    runtime_env: [],
    http_send: { timeout_ms: 5000, allowed_hosts: [] },
    reasons: {},
    return_reasons: false,
  },
  cache: {
    enabled: true,
    max_entries: 100_000,
    max_bytes: 64 * 1024 * 1024,
    max_entry_bytes: 1024 * 1024,
    ttl_ms: 60_000,
  },
  admin: {
    authz_path: 'system/authz/allow',
    allowed_hosts: [],
  },
  console: {
    grants_path: 'system/console/grants',
    cache_max_bytes: 64 * 1024 * 1024,
  },
  logging: {
    level: 'info',
  },
  envoy_ext_authz: {
    path: 'envoy/authz/allow',
    skip_request_body_parse: false,
    dry_run: false,
    error_response: false,
    grpc: { enabled: false, addr: '127.0.0.1:9191', enable_reflection: false, max_recv_msg_size: 4 * 1024 * 1024, max_concurrent_streams: 100, receive_timeout_ms: 10_000 },
    http: { enabled: false, addr: '127.0.0.1:9192', path_prefix: '', max_body_bytes: 4 * 1024 * 1024 },
    cache: { enabled: false, ignore_input_paths: [] },
  },
  // socket: from SPIFFE_ENDPOINT_SOCKET when not configured (config/load.ts)
  workload_api: {
    enabled: false,
    trust_bundles: true,
    serving_svid: false,
    ready_requires_update: true,
    envoy_grpc_client_auth: 'require',
    envoy_grpc_client_ids: [],
    // go-spiffe's Workload API client: linear 1 s, 2 s, … up to 30 s
    backoff: { initial_ms: 1000, max_ms: 30_000 },
  },
  audit: {
    enabled: false,
    dir: 'audit',
    durability: 'batched',
    batch_interval_ms: 50,
    sync_timeout_ms: 2000,
    segment: { max_bytes: 64 * 1024 * 1024, max_age_seconds: 86_400 },
    retention: {},
    checkpoint: { every_events: 10_000, every_seconds: 60 },
    max_pending_bytes: 64 * 1024 * 1024,
    on_full: 'deny',
    erase: [...AUDIT_DEFAULT_ERASE],
    labels: {},
  },
  decision_logs: {
    console: false,
    mask_decision: '/system/log/mask',
    drop_decision: '/system/log/drop',
    reporting: { ...DECISION_LOGS_REPORTING_DEFAULTS },
  },
  services: {},
  keys: {},
  persistence_directory: '.portcullis',
}

/** Defaults of a remote bundle (`bundles.<name>` with `service`) and of a service, as OPA's. */
export const BUNDLE_SERVICE_DEFAULTS = {
  polling: { min_delay_seconds: 60, max_delay_seconds: 120 },
  persist: false,
  response_header_timeout_seconds: 10,
}

/**
 * Defaults of the `identity` section, applied when the section is present (absent: identity
 * verification is off). Two depend on other keys and are set by config/identity.ts:
 * `x509_svid.enabled` (true when the section or a trust domain is configured),
 * `jwt_svid.enabled` (true when the section is present), and `x509_svid.sources` gains `xfcc`
 * when trusted proxies are named.
 */
export const IDENTITY_DEFAULTS = {
  section: {
    on_missing: 'deny',
    on_rejected: 'deny',
    trust_domains: {},
    oidc: { issuers: [] },
  } satisfies Partial<IdentityConfig>,
  // ext_authz is inert outside Envoy's Check (only envoy/ sets the certificate it reads).
  x509_svid: { sources: ['mtls', 'ext_authz'] } satisfies Partial<IdentityConfig['x509_svid']>,
  ext_authz: { trusted_callers: ['127.0.0.0/8', '::1'] } satisfies IdentityConfig['x509_svid']['ext_authz'],
  xfcc: { trusted_proxies: [], element: 'last', header: 'x-forwarded-client-cert' } satisfies IdentityConfig['x509_svid']['xfcc'],
  jwt_svid: { audiences: [], header: 'authorization', leeway_seconds: 30, algorithms: [...JWT_SVID_ALGORITHMS] } satisfies Omit<IdentityConfig['jwt_svid'], 'enabled'>,
  trust_domain: { x509_authorities: [], spiffe_bundles: [], jwt_authorities: [] } satisfies TrustDomainConfig,
  bundle_endpoint: { timeout_ms: 5000, default_refresh_seconds: 300, min_refresh_seconds: 10, max_refresh_seconds: 86400, initial_backoff_seconds: 1, max_backoff_seconds: 300 } satisfies Omit<BundleEndpointConfig, 'url'>,
  oidc_issuer: { discovery: false, header: 'authorization', leeway_seconds: 30, timeout_ms: 5000, cooldown_ms: 30_000, max_cache_age_ms: 600_000, algorithms: ['RS256'] } satisfies Partial<OidcIssuerConfig>,
  cache: { enabled: true, max_entries: 10_000, max_bytes: 64 * 1024 * 1024, max_ttl_seconds: 300 } satisfies IdentityConfig['cache'],
  watch: { enabled: true, debounce_ms: 200, use_polling: false } satisfies IdentityConfig['watch'],
}
