/**
 * The one error registry. Every error a caller or operator can see carries a stable
 * `code` (PORTCULLIS_*), and each code maps to one HTTP status, one OPA API error code
 * and one gRPC status, here and nowhere else. Callers switch on `code`, never on text.
 */

/** OPA REST API error codes (v1/server/types/types.go). */
export type OpaErrorCode =
  | 'invalid_parameter'
  | 'internal_error'
  | 'evaluation_error'
  | 'resource_not_found'
  | 'unauthorized'
  | 'undefined_document'
  | 'bundle_error'

interface CodeSpec {
  /** HTTP status used by the Data API and every HTTP transport. */
  status: number
  /** The OPA-compatible `code` in `{code, message}` error bodies. */
  opa: OpaErrorCode
  /** gRPC status code number (google.rpc.Code) for gRPC transports. */
  grpc: number
}

// gRPC status numbers (google.rpc.Code)
const CANCELLED = 1
const DEADLINE_EXCEEDED = 4
const INVALID_ARGUMENT = 3
const NOT_FOUND = 5
const PERMISSION_DENIED = 7
const RESOURCE_EXHAUSTED = 8
const FAILED_PRECONDITION = 9
const UNIMPLEMENTED = 12
const INTERNAL = 13
const UNAVAILABLE = 14
const UNAUTHENTICATED = 16

const bundle: CodeSpec = { status: 500, opa: 'bundle_error', grpc: FAILED_PRECONDITION }

export const codes = {
  // --- configuration -------------------------------------------------------------------
  PORTCULLIS_CONFIG_INVALID: { status: 500, opa: 'internal_error', grpc: INTERNAL },

  // --- bundles: archive safety -----------------------------------------------------------
  PORTCULLIS_BUNDLE_NOT_FOUND: bundle,
  PORTCULLIS_BUNDLE_ARCHIVE_INVALID: bundle,
  PORTCULLIS_BUNDLE_UNSAFE_PATH: bundle,
  PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED: bundle,
  PORTCULLIS_BUNDLE_TOO_LARGE: bundle,
  PORTCULLIS_BUNDLE_DUPLICATE_FILE: bundle,
  PORTCULLIS_BUNDLE_DATA_INVALID: bundle,
  // --- bundles: OPA bundle-format rules --------------------------------------------------
  PORTCULLIS_BUNDLE_MANIFEST_INVALID: bundle,
  PORTCULLIS_BUNDLE_ROOTS_OVERLAP: bundle,
  PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS: bundle,
  PORTCULLIS_BUNDLE_WASM_MISSING: bundle,
  PORTCULLIS_BUNDLE_WASM_INVALID: bundle,
  PORTCULLIS_BUNDLE_ENTRYPOINT_OUTSIDE_ROOTS: bundle,
  PORTCULLIS_BUNDLE_NO_WASM: bundle,
  PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED: bundle,
  // --- bundles: signatures ---------------------------------------------------------------
  PORTCULLIS_BUNDLE_UNSIGNED: bundle,
  PORTCULLIS_BUNDLE_SIGNATURE_INVALID: bundle,
  PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN: bundle,
  PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH: bundle,
  PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH: bundle,
  PORTCULLIS_BUNDLE_SIGNATURE_SCOPE_MISMATCH: bundle,

  // --- policy evaluation -----------------------------------------------------------------
  /** No active bundle owns the requested path, or the path has no compiled entrypoint. */
  PORTCULLIS_POLICY_PATH_NOT_FOUND: { status: 404, opa: 'resource_not_found', grpc: NOT_FOUND },
  /** A complete rule or function produced two different values (OPA eval_conflict_error). */
  PORTCULLIS_POLICY_CONFLICT: { status: 500, opa: 'internal_error', grpc: INTERNAL },
  /** A builtin raised an error and strict builtin errors are on (OPA eval_builtin_error). */
  PORTCULLIS_POLICY_BUILTIN_ERROR: { status: 500, opa: 'internal_error', grpc: INTERNAL },
  /** The wasm module aborted (runtime error, out of memory, unknown builtin at run time). */
  PORTCULLIS_POLICY_EVAL_FAILED: { status: 500, opa: 'internal_error', grpc: INTERNAL },
  /** The decision is undefined where the API requires a value (v0 Data API, POST /). */
  PORTCULLIS_POLICY_UNDEFINED: { status: 404, opa: 'undefined_document', grpc: NOT_FOUND },
  /** No bundle is active yet. */
  PORTCULLIS_POLICY_NOT_READY: { status: 503, opa: 'internal_error', grpc: UNAVAILABLE },

  // --- deny reasons (src/decision/reasons.ts): recorded as reasons_error, never a decision's error ---
  /** The reasons rule named for a denied decision's path is undefined for its input (or not compiled). */
  PORTCULLIS_REASONS_UNDEFINED: { status: 500, opa: 'internal_error', grpc: INTERNAL },
  /** The reasons rule gave something other than an array or set of strings or objects. */
  PORTCULLIS_REASONS_INVALID: { status: 500, opa: 'internal_error', grpc: INTERNAL },

  // --- request input -------------------------------------------------------------------
  PORTCULLIS_INPUT_INVALID: { status: 400, opa: 'invalid_parameter', grpc: INVALID_ARGUMENT },
  PORTCULLIS_INPUT_TOO_LARGE: { status: 413, opa: 'invalid_parameter', grpc: RESOURCE_EXHAUSTED },
  /** A Data API path that cannot name a document: control characters, an encoded '/' inside a segment, invalid UTF-8. */
  PORTCULLIS_PATH_INVALID: { status: 400, opa: 'invalid_parameter', grpc: INVALID_ARGUMENT },
  /** A method the Data API route does not serve: OPA's write API (PUT/PATCH/DELETE /v1/data), GET on v0 (OPA: 405 too). */
  PORTCULLIS_METHOD_NOT_ALLOWED: { status: 405, opa: 'invalid_parameter', grpc: UNIMPLEMENTED },

  // --- identity (see src/identity/) ------------------------------------------------------
  PORTCULLIS_IDENTITY_REQUIRED: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  PORTCULLIS_IDENTITY_DENIED: { status: 403, opa: 'unauthorized', grpc: PERMISSION_DENIED },
  /** Not a parseable credential: garbage, bad PEM/DER, bad base64url, JWS JSON serialization, bad XFCC. */
  PORTCULLIS_IDENTITY_MALFORMED: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** The credential (or a certificate in its chain) is past its expiry at decision time. */
  PORTCULLIS_IDENTITY_EXPIRED: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** The credential (or a certificate in its chain) is not valid yet (notBefore / nbf). */
  PORTCULLIS_IDENTITY_NOT_YET_VALID: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** The chain does not lead to an X.509 authority of the leaf's trust domain. */
  PORTCULLIS_IDENTITY_UNTRUSTED: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** No trust bundle is configured (or loaded) for the credential's trust domain. */
  PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** A URI is not a valid SPIFFE ID, or names the trust domain root where a workload is required. */
  PORTCULLIS_IDENTITY_BAD_SPIFFE_ID: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** X509-SVID leaf: not exactly one URI SAN. */
  PORTCULLIS_IDENTITY_LEAF_SAN: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** X509-SVID leaf: basicConstraints cA=true. */
  PORTCULLIS_IDENTITY_LEAF_CA: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** X509-SVID leaf: keyUsage absent, without digitalSignature, or with keyCertSign / cRLSign. */
  PORTCULLIS_IDENTITY_LEAF_KEY_USAGE: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** A signing certificate in the chain is not a CA or lacks keyCertSign (or exceeds pathLen). */
  PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** A certificate carries a critical extension Portcullis does not understand (RFC 5280 §4.2). */
  PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** x-forwarded-client-cert arrived from an address that is not a configured trusted proxy. */
  PORTCULLIS_IDENTITY_UNTRUSTED_PROXY: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: algorithm not allowed, or it does not fit the key's type. */
  PORTCULLIS_IDENTITY_ALGORITHM: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: signature does not verify. */
  PORTCULLIS_IDENTITY_SIGNATURE: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: no key of the trust domain / issuer matches (unknown kid). */
  PORTCULLIS_IDENTITY_KEY_UNKNOWN: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: `aud` missing or does not contain an accepted audience. */
  PORTCULLIS_IDENTITY_AUDIENCE: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: `iss` is not the configured issuer. */
  PORTCULLIS_IDENTITY_ISSUER: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: a required claim (exp, sub, iss) is missing or has the wrong type. */
  PORTCULLIS_IDENTITY_CLAIM_MISSING: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: `typ` header is neither absent, JWT nor JOSE. */
  PORTCULLIS_IDENTITY_TOKEN_TYPE: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** JWT: `crit` names header parameters Portcullis does not understand. */
  PORTCULLIS_IDENTITY_UNSUPPORTED_CRIT: { status: 401, opa: 'unauthorized', grpc: UNAUTHENTICATED },
  /** OIDC keys could not be fetched (discovery / JWKS unreachable): fail closed, retryable. */
  PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE: { status: 503, opa: 'unauthorized', grpc: UNAVAILABLE },
  /** A trust bundle source (PEM, SPIFFE bundle, JWKS, bundle endpoint) could not be loaded. */
  PORTCULLIS_IDENTITY_BUNDLE_INVALID: { status: 500, opa: 'internal_error', grpc: INTERNAL },

  // --- Envoy ext_authz (see src/envoy/) -------------------------------------------------
  /** A CheckRequest (or a forwarded HTTP request) whose path, query or body cannot be parsed: Envoy is answered PERMISSION_DENIED with a 400 denied response, as opa-envoy-plugin does. */
  PORTCULLIS_ENVOY_REQUEST_INVALID: { status: 400, opa: 'invalid_parameter', grpc: INVALID_ARGUMENT },
  /** The policy's answer is not a boolean or an object of opa-envoy-plugin's shape (allowed, headers, body, http_status, ...). */
  PORTCULLIS_ENVOY_RESULT_INVALID: { status: 500, opa: 'internal_error', grpc: INTERNAL },
  /** The caller cancelled the Check before it was answered. */
  PORTCULLIS_ENVOY_CANCELLED: { status: 503, opa: 'internal_error', grpc: CANCELLED },
  /** The Check's deadline passed before it was answered. */
  PORTCULLIS_ENVOY_DEADLINE_EXCEEDED: { status: 504, opa: 'internal_error', grpc: DEADLINE_EXCEEDED },
  /** A Check's request message did not arrive whole within the gRPC listener's receive timeout (a stalled or hostile sender holding a buffer). */
  PORTCULLIS_ENVOY_REQUEST_TIMEOUT: { status: 408, opa: 'invalid_parameter', grpc: DEADLINE_EXCEEDED },
  /** A listener cannot bind its address: a unix socket path in use by another process, or not a socket (src/envoy/unix-socket.ts). */
  PORTCULLIS_LISTEN_FAILED: { status: 500, opa: 'internal_error', grpc: INTERNAL },

  // --- audit trail (see src/audit/) ---------------------------------------------------
  /** The audit log cannot take the decision's event (disk full or failing, writer backlog over its bound, log closed) and the deployment fails closed: the decision is denied. */
  PORTCULLIS_AUDIT_UNAVAILABLE: { status: 503, opa: 'internal_error', grpc: UNAVAILABLE },
  /** An audit directory, segment, checkpoint, proof request or export is malformed or does not verify (CLI and audit endpoints). */
  PORTCULLIS_AUDIT_INVALID: { status: 400, opa: 'invalid_parameter', grpc: INVALID_ARGUMENT },
  /** What an audit or console request names does not exist: a record (stream, seq) not in the log, a job that is not (or no longer) kept. */
  PORTCULLIS_AUDIT_NOT_FOUND: { status: 404, opa: 'resource_not_found', grpc: NOT_FOUND },
  /** A console job (verify, replay) was started while one of its kind runs: one at a time (docs/console.md). */
  PORTCULLIS_CONSOLE_BUSY: { status: 409, opa: 'invalid_parameter', grpc: RESOURCE_EXHAUSTED },
  /** A state-changing console request (POST) without the `x-portcullis-console: 1` header: a cross-site form or a page that rebound its name to this server cannot send it without a CORS preflight, which the console never grants. */
  PORTCULLIS_CONSOLE_CROSS_SITE: { status: 403, opa: 'unauthorized', grpc: PERMISSION_DENIED },
  /**
   * A request whose Host (or :authority, or absolute-form target) is not one of this server's own names or admin.allowed_hosts — on every console route, and on the admin guard's routes over loopback: a page on another domain rebound to this address (DNS rebinding). 421 Misdirected Request (RFC 9110 §15.5.20): this server does not answer for that origin — not 403, which says the caller lacks a permission the system policy could grant.
   */
  PORTCULLIS_HOST_REJECTED: { status: 421, opa: 'unauthorized', grpc: PERMISSION_DENIED },

  // --- bundle service (see src/bundles/) --------------------------------------------------
  /** A bundle download from a bundle server failed (network, status, TLS, credentials); the active bundle is kept. */
  PORTCULLIS_BUNDLE_DOWNLOAD_FAILED: bundle,
  /** A file in the bundles directory has the name of a configured remote bundle: refused, the remote bundle keeps its name. */
  PORTCULLIS_BUNDLE_NAME_CONFLICT: bundle,

  // --- SPIFFE Workload API (see src/identity/workload-api/) ---------------------------------
  /** The Workload API is unreachable or refuses this workload (no registration entry); the last good state is kept. */
  PORTCULLIS_WORKLOAD_API_UNAVAILABLE: { status: 503, opa: 'internal_error', grpc: UNAVAILABLE },

  // --- internal ----------------------------------------------------------------------
  PORTCULLIS_INTERNAL: { status: 500, opa: 'internal_error', grpc: INTERNAL },
} satisfies Record<string, CodeSpec>

export type ErrorCode = keyof typeof codes

/**
 * Base class of every Portcullis error.
 *
 * @example
 *   if (err instanceof PortcullisError && err.code === 'PORTCULLIS_BUNDLE_UNSIGNED') ...
 */
export class PortcullisError extends Error {
  readonly code: ErrorCode
  /** Structured details (file, key, rule, ...) that tests and logs may read. */
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PortcullisError'
    this.code = code
    this.details = details
  }

  get status (): number { return codes[this.code].status }
  get opaCode (): OpaErrorCode { return codes[this.code].opa }
  get grpcCode (): number { return codes[this.code].grpc }

  toJSON (): { code: ErrorCode, message: string, details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

/** Bundle load/verify/activate failures: always name the bundle and, where known, the file. */
export class BundleError extends PortcullisError {
  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options)
    this.name = 'BundleError'
  }
}

/** Policy evaluation failures. */
export class PolicyError extends PortcullisError {
  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options)
    this.name = 'PolicyError'
  }
}

/** Identity failures: a presented credential that did not verify, or a trust-bundle problem. */
export class IdentityError extends PortcullisError {
  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, message, details, options)
    this.name = 'IdentityError'
  }
}

export function isPortcullisError (err: unknown): err is PortcullisError {
  return err instanceof PortcullisError
}

/** Wraps anything thrown into a PortcullisError, keeping the original as `cause`. */
export function toPortcullisError (err: unknown, fallback: ErrorCode = 'PORTCULLIS_INTERNAL'): PortcullisError {
  if (err instanceof PortcullisError) return err
  const message = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err)
  return new PortcullisError(fallback, message, {}, { cause: err })
}
