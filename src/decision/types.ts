/**
 * Types the decision pipeline shares with its transports and with the identity plugins.
 * The identity types mirror src/identity/index.ts structurally, so the pipeline depends only
 * on the shape: verify(credentials) -> verified | none | rejected.
 */
import type { PortcullisError } from '../errors.js'
import type { PolicySnapshot } from '../policy/snapshot.js'

/** A request's credential context, as transports extract it. */
export interface CredentialContext {
  /** DER certificates from Portcullis's own TLS listener, leaf first. */
  peerCertificates?: Buffer[]
  /** Request headers, lowercase names. */
  headers?: Record<string, string | string[] | undefined>
  /** The immediate peer's address (for trusted-proxy checks). */
  remoteAddress?: string
  /**
   * The downstream peer certificate Envoy reported in an ext_authz CheckRequest
   * (`source.certificate`, URL-encoded PEM, set with `include_peer_certificate`). A certificate
   * is public: the envoy/ transport sets this only when the ext_authz caller is trusted.
   */
  extAuthzPeerCertificate?: string
}

export type IdentityOutcome<Doc = Record<string, unknown>> =
  | { kind: 'verified', identity: Doc }
  | { kind: 'none' }
  | { kind: 'rejected', error: PortcullisError }

export interface IdentityPort {
  verify: (ctx: CredentialContext) => Promise<IdentityOutcome<object>>
}

export interface IdentityPolicy {
  verifier: IdentityPort
  /** No credential: deny before the policy (default) or let the policy decide without identity. */
  onMissing: 'deny' | 'allow'
  /** Rejected credential: deny before the policy (default) or pass `input.identity_error`. */
  onRejected: 'deny' | 'allow'
}

/** The metric label of the transport that asked; one value per transport that exists (server/, cli/, envoy/). */
export type Transport = 'http' | 'batch' | 'cli' | 'envoy-grpc' | 'envoy-http'

export interface DecisionRequest {
  /** Data API path, e.g. `authz/allow`. */
  path: string
  /** The caller's input document; undefined means "no input". */
  input?: unknown
  credentials?: CredentialContext
  transport?: Transport
  strictBuiltinErrors?: boolean
  /** Who asked (remote address), for the audit record. */
  requestedBy?: string
  /** Transport request id, for the audit record. */
  requestId?: string
  /** The W3C `traceparent` header the request carried (validated by the audit trail, not here). */
  traceparent?: string
  /** The batch this decision is one item of (`POST /v1/batch/data`), for the audit record. */
  batchDecisionId?: string
  /**
   * How the transport reads the answer, for a transport that interprets the result itself
   * (Envoy: allowed or denied, or an error for an undefined or malformed result; dry run). The
   * pipeline calls it once per decision, before the audit hook, so the audit event records
   * what the caller was told. Must not throw.
   */
  verdictOf?: (decision: Decision) => TransportVerdict
  /** Collect the policy's trace() lines (bypasses the decision cache). */
  explain?: boolean
  /**
   * A caller without a credential reaches the policy (with `input.identity_error`) whatever
   * the deployment's `on_missing` says: for the system authorization policy, which decides
   * itself who may use protected endpoints (its loopback rule). A rejected credential is
   * still handled by `on_rejected`.
   */
  anonymousToPolicy?: boolean
  /**
   * Input paths the decision-cache key leaves out (Envoy ext_authz: request id, time, source
   * port). The key hashes a copy of the final input (identity included) without them; the
   * policy still sees the whole input. A policy that reads a left-out path gets stale answers.
   */
  cacheIgnorePaths?: ReadonlyArray<readonly string[]>
  /** Neither read nor fill the decision cache (Envoy Checks unless envoy_ext_authz.cache is on). */
  skipCache?: boolean
}

export interface Decision {
  decision_id: string
  /** Path without leading/trailing slashes. */
  path: string
  /** False when the policy's answer is undefined. */
  defined: boolean
  result?: unknown
  /**
   * The result as JSON text with the policy's exact digits, present only when `result` holds a
   * number a double cannot represent (integers beyond 2^53: `result` then has the nearest
   * doubles, for the cache, audit and adapters that read values). Answers are written from
   * it: `resultText(decision)`.
   */
  resultJson?: string
  /** `{name: {revision}}` of the bundles active when the decision began. */
  bundles: Record<string, { revision: string }>
  /** Bundle that answered ('' when no bundle owns the path). */
  bundle: string
  /** True when answered from the decision cache. */
  cached: boolean
  /** The input the policy saw (caller input plus verified identity). */
  input: unknown
  timestamp: Date
  /** trace() output of the evaluation, when the request asked to explain. */
  explanation?: string[]
  /**
   * A deny's reasons (decision/reasons.ts): set only on a deny whose path names a reasons rule,
   * bounded (at most 32 entries, 4 KiB of JSON). Recorded in the audit event always; returned to
   * the caller only when `returnReasons` says so (policy.return_reasons).
   */
  reasons?: unknown[]
  /** Entries of `reasons` were dropped to respect the bounds. */
  reasons_truncated?: boolean
  /** The reasons rule failed (error, undefined, malformed): the deny stands, this is recorded. */
  reasons_error?: { code: string, message: string }
  /** The deployment returns reasons to callers (policy.return_reasons): transports add them when set. */
  returnReasons?: boolean
  metrics: { timer_rego_query_eval_ns: number, timer_portcullis_identity_ns: number, timer_portcullis_decision_ns: number }
}

/** What a transport answered for a decision it interprets itself (DecisionRequest.verdictOf). */
export interface TransportVerdict {
  outcome: 'allow' | 'deny' | 'error'
  /** The answer could not be given (an undefined decision, a malformed result): the caller's error. */
  error?: PortcullisError
  /** Envoy dry run: answered OK whatever `outcome` says. */
  dryRun?: boolean
}

/** What the audit hook receives for every decision, cached or not, and for failures. */
export interface DecisionRecord {
  decision?: Decision
  error?: PortcullisError
  request: DecisionRequest
  decision_id: string
  timestamp: Date
  bundles: Record<string, { revision: string }>
  input?: unknown
  /** The transport's reading of the decision (DecisionRequest.verdictOf), when it has one. */
  verdict?: TransportVerdict
  /**
   * The input's JSON text, when the pipeline wrote it on the way (the decision cache's
   * canonical text when it is the whole input's, else the text the evaluation was given): the
   * audit event reuses it instead of writing the input again. Key order is not significant.
   */
  inputJson?: string
  /** The snapshot the decision ran on (the audit trail evaluates the bundle's mask and drop policies on it). */
  snapshot?: PolicySnapshot
}

/**
 * The audit hook. Returns undefined when there is nothing to wait for, or a promise the
 * pipeline awaits before answering (`sync` durability); a rejection turns the decision into
 * PORTCULLIS_AUDIT_UNAVAILABLE (503): nothing is answered that was not recorded.
 */
export type AuditHook = (record: DecisionRecord) => Promise<void> | undefined | void

/** The JSON text of a defined decision's result, exact (OPA answers integers beyond 2^53 digit for digit). */
export function resultText (d: Pick<Decision, 'result' | 'resultJson'>): string {
  return d.resultJson ?? JSON.stringify(d.result)
}
