/**
 * Configuration schema: Envoy ext_authz (`envoy_ext_authz`: the gRPC and HTTP listeners).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Bool, Int, NonEmpty, Str, strict } from './common.js'

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
    max_concurrent_streams: Int('most calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); each buffers up to max_recv_msg_size', 1),
    receive_timeout_ms: Int('a call whose request message has not arrived whole this long after it started is ended (DEADLINE_EXCEEDED, PORTCULLIS_ENVOY_REQUEST_TIMEOUT)', 1),
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

export type EnvoyExtAuthzConfig = Static<typeof EnvoyExtAuthzSchema>
