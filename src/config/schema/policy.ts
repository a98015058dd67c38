/**
 * Configuration schema: policy evaluation (`policy`) and the decision cache (`cache`).
 */
import { Type } from '@sinclair/typebox'
import { Bool, Int, strict } from './common.js'

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
  max_bytes: Int('bound on the estimated memory of the cached decisions (keys and results)', 65_536),
  max_entry_bytes: Int('a decision whose key and result are estimated above this is not cached', 1024),
  ttl_ms: Int('longest a cached decision is reused', 1),
}, strict)
