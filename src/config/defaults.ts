/** Every default, in one place. */
import type { Config } from './schema.js'

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
  },
  cache: {
    enabled: true,
    max_entries: 100_000,
    ttl_ms: 60_000,
  },
  admin: {
    authz_path: 'system/authz/allow',
  },
  logging: {
    level: 'info',
  },
}
