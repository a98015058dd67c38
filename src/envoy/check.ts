/**
 * THE ext_authz adapter: one function from a CheckRequest (decoded by gRPC, or built from a
 * forwarded HTTP request) and the facts of the connection it came on to an outcome, through
 * DecisionService.decide(). grpc.ts and http.ts are only socket shells around it
 * (CONVENTIONS.md: one adapter per protocol).
 *
 *   request -> input (input.ts) -> decide() (identity, cache, evaluate, audit) -> verdict (response.ts)
 *
 * Fail closed: an unparseable request is a denial (400), an evaluation error, an undefined
 * decision or a malformed result is an error (Envoy's failure_mode_allow / status_on_error
 * decide; Portcullis never answers OK for it), a dry run answers OK but records the real decision.
 */
import { wasReported, type DecisionService } from '../decision/decide.js'
import type { CredentialContext, Decision, DecisionRequest, Transport, TransportVerdict } from '../decision/types.js'
import { PortcullisError, toPortcullisError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import { checkRequestToInput, headerLookup, type CheckRequest, type HeaderLookup } from './input.js'
import { verdictOf, type EnvoyVerdict } from './response.js'

/** The denied response's header carrying a deny's reasons (JSON; bounded by decision/reasons.ts to 4 KiB). */
export const REASONS_HEADER = 'x-portcullis-reasons'

/** JSON text with every non-ASCII character written as a `\u` escape of four hex digits: still JSON, and a value any HTTP header can carry. */
function asciiJson (v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export type EnvoyTransport = Extract<Transport, 'envoy-grpc' | 'envoy-http'>

export interface EnvoyCheckSettings {
  /** Decision path (default envoy/authz/allow). */
  path: string
  skipRequestBodyParse: boolean
  dryRun: boolean
  /** Input paths the decision-cache key leaves out (already split on '.'). */
  cacheIgnorePaths?: ReadonlyArray<readonly string[]>
  /** Checks do not use the decision cache (envoy_ext_authz.cache.enabled: false). */
  cacheBypass?: boolean
  /** Is this caller's address one whose `source.certificate` is believed? (unix sockets always are.) */
  trustedCaller: (remoteAddress: string | undefined) => boolean
}

/** What the shell knows about the connection the request came on. */
export interface ConnectionFacts {
  /** The ext_authz caller's address (Envoy); undefined on a unix socket. */
  remoteAddress?: string
  /** The request arrived on a unix-domain socket (only local processes with file access can connect). */
  unixSocket?: boolean
  /** DER client certificates on our own TLS listener (HTTP service mode), leaf first. */
  peerCertificates?: Buffer[]
  /** Fires when the caller cancelled or its deadline passed. */
  signal?: AbortSignal
}

export type CheckOutcome =
  /** The policy decided; `verdict` is what to answer (already OK for a dry run). */
  | { kind: 'decided', verdict: EnvoyVerdict, decisionId: string, structured: boolean, dryRun: boolean }
  /**
   * Denied before the policy: a request that cannot be parsed (400, as opa-envoy-plugin), or a
   * caller whose credential is missing or rejected (401/403, or 503 when the keys to verify it
   * cannot be fetched; identity.on_missing/on_rejected: deny). A denial, not an error: Envoy's failure_mode_allow must never turn it into an allow.
   */
  | { kind: 'refused', error: PortcullisError }
  /** Evaluation failed, was undefined or malformed: an error, never an allow. */
  | { kind: 'error', error: PortcullisError, decisionId?: string }

export class EnvoyCheck {
  readonly #decisions: DecisionService
  readonly #settings: EnvoyCheckSettings
  readonly #transport: EnvoyTransport
  readonly #metrics: Metrics | undefined
  readonly #log: Logger

  constructor (opts: { decisions: DecisionService, settings: EnvoyCheckSettings, transport: EnvoyTransport, metrics?: Metrics, logger?: Logger }) {
    this.#decisions = opts.decisions
    this.#settings = opts.settings
    this.#transport = opts.transport
    this.#metrics = opts.metrics
    this.#log = opts.logger ?? silentLogger
  }

  /** True when the decision path can be answered now (bundles active, path compiled): the health status. */
  ready (): boolean {
    return this.#decisions.canAnswer(this.#settings.path)
  }

  /** Calls `listener` whenever readiness may have changed (an activation or removal); returns the unsubscribe. */
  onReadinessChange (listener: () => void): () => void {
    return this.#decisions.onActivation(listener)
  }

  /** What the identity plugins read; built only when identity is on (nothing else reads it). */
  #credentials (req: CheckRequest, facts: ConnectionFacts, headers: HeaderLookup): CredentialContext {
    const ctx: CredentialContext = { headers: headers as Record<string, string | string[]> }
    if (facts.remoteAddress !== undefined) ctx.remoteAddress = facts.remoteAddress
    if (facts.peerCertificates !== undefined && facts.peerCertificates.length > 0) ctx.peerCertificates = facts.peerCertificates
    const cert = req.attributes?.source?.certificate
    if (cert !== undefined && cert !== '') {
      // A peer certificate is public: only the ext_authz caller (Envoy, which terminated the
      // downstream TLS) can vouch that the peer holds its key. Believed from trusted callers only.
      if (facts.unixSocket === true || this.#settings.trustedCaller(facts.remoteAddress)) {
        ctx.extAuthzPeerCertificate = cert
      } else {
        this.#metrics?.envoyPeerCertificatesIgnored.inc({ transport: this.#transport })
        this.#log.warn({ code: 'PORTCULLIS_IDENTITY_UNTRUSTED_PROXY', transport: this.#transport, remote_address: facts.remoteAddress ?? null }, 'ext_authz source.certificate from a caller that is not trusted: ignored')
      }
    }
    return ctx
  }

  #failed (error: PortcullisError): void {
    this.#metrics?.requestErrors.inc({ code: error.code })
  }

  /**
   * A Check that ends before a decision exists (unparseable, cancelled): counted, logged and
   * audited, so every Check leaves a record (awaited, as a decision's record is, so a `sync`
   * audit log holds it before the answer).
   */
  async #recordUndecided (req: CheckRequest, facts: ConnectionFacts, error: PortcullisError): Promise<void> {
    this.#failed(error)
    const record: DecisionRequest = { path: this.#settings.path, transport: this.#transport }
    this.#describe(record, req, facts)
    const decisionId = await this.#decisions.recordRefusal(record, error)
    this.#log.warn({ decision_id: decisionId, code: error.code, transport: this.#transport, request_id: record.requestId }, `ext_authz Check ended before a decision: ${error.message}`)
  }

  /** The audit facts of a Check: who asked, Envoy's request id (x-request-id), the traceparent header. */
  #describe (dr: DecisionRequest, req: CheckRequest, facts: ConnectionFacts): void {
    if (facts.remoteAddress !== undefined) dr.requestedBy = facts.remoteAddress
    const http = req.attributes?.request?.http
    const id = http?.id
    if (id !== undefined && id !== '') dr.requestId = id
    const traceparent = http?.headers?.traceparent
    if (typeof traceparent === 'string') dr.traceparent = traceparent
  }

  /**
   * How the adapter answers a decision (opa-envoy-plugin's reading of the result): an undefined
   * decision or a malformed result is an error, a dry run answers a denial with OK. Computed
   * once, inside decide() (DecisionRequest.verdictOf), so the audit event records this answer.
   */
  #judge (decision: Decision): Judgement {
    const dryRun = this.#settings.dryRun
    if (!decision.defined) {
      const error = new PortcullisError('PORTCULLIS_POLICY_UNDEFINED', `the decision at ${this.#settings.path} is undefined`, { path: this.#settings.path })
      return { error, audit: { outcome: 'error', error, dryRun } }
    }
    let verdict: EnvoyVerdict
    try {
      verdict = verdictOf(decision.result)
    } catch (err) {
      const error = toPortcullisError(err)
      return { error, audit: { outcome: 'error', error, dryRun } }
    }
    return { verdict, audit: { outcome: verdict.allowed ? 'allow' : 'deny', dryRun } }
  }

  /** Decides one Check. Never throws: every failure is an outcome (counted per transport). */
  async check (req: CheckRequest, facts: ConnectionFacts = {}): Promise<CheckOutcome> {
    return this.#counted(await this.#check(req, facts))
  }

  /**
   * A Check its shell refuses before check() can run (HTTP service mode: a body over
   * max_body_bytes or unreadable, a path without path_prefix): logged, audited and counted
   * exactly as a refusal inside check(), so the audit hook and the metric see every Check.
   */
  async refuse (req: CheckRequest, facts: ConnectionFacts, error: PortcullisError): Promise<CheckOutcome> {
    await this.#recordUndecided(req, facts, error)
    return this.#counted({ kind: 'refused', error })
  }

  #counted (outcome: CheckOutcome): CheckOutcome {
    const label = outcome.kind === 'decided' ? (outcome.dryRun ? 'dry_run' : outcome.verdict.allowed ? 'allow' : 'deny') : outcome.kind === 'refused' ? 'refused' : 'error'
    this.#metrics?.envoyChecks.inc({ transport: this.#transport, outcome: label })
    return outcome
  }

  async #check (req: CheckRequest, facts: ConnectionFacts): Promise<CheckOutcome> {
    // one header lookup (header_map folded in) for the body parse and the identity plugins;
    // a copy without prototype only when identity reads it or header_map must be folded in
    const headers = this.#decisions.identityEnabled ? headerLookup(req.attributes?.request?.http, true) : undefined
    let input: Record<string, unknown>
    try {
      // HTTP service mode cannot see a cut body unless Envoy forwards x-envoy-auth-partial-body (input.ts)
      input = await checkRequestToInput(req, { skipRequestBodyParse: this.#settings.skipRequestBodyParse, partialBodyHeaderRequired: this.#transport === 'envoy-http', ...(headers !== undefined ? { headers } : {}) })
    } catch (err) {
      const error = toPortcullisError(err, 'PORTCULLIS_ENVOY_REQUEST_INVALID')
      await this.#recordUndecided(req, facts, error)
      return { kind: 'refused', error }
    }
    const gone = this.#aborted(facts.signal)
    if (gone !== undefined) {
      await this.#recordUndecided(req, facts, gone)
      return { kind: 'error', error: gone }
    }
    const dr: DecisionRequest = { path: this.#settings.path, input, transport: this.#transport }
    // credentials (a copy of the headers, header_map folded in, the untrusted-certificate
    // counter and warning) only when an identity plugin will read them, as the Data API adapter
    if (headers !== undefined) dr.credentials = this.#credentials(req, facts, headers)
    this.#describe(dr, req, facts)
    if (this.#settings.cacheIgnorePaths !== undefined) dr.cacheIgnorePaths = this.#settings.cacheIgnorePaths
    if (this.#settings.cacheBypass === true) dr.skipCache = true
    let judged: Judgement | undefined
    dr.verdictOf = (d) => (judged = this.#judge(d)).audit
    let decisionId: string | undefined
    try {
      const decision = await this.#decisions.decide(dr)
      decisionId = decision.decision_id
      const j = judged ?? this.#judge(decision)
      if (j.verdict === undefined) throw j.error
      let verdict = j.verdict
      // a deny's headers no HTTP message can carry were left out (response.ts): said once, for both transports
      for (const d of verdict.dropped ?? []) {
        this.#log.warn({ code: 'PORTCULLIS_ENVOY_RESULT_INVALID', transport: this.#transport, decision_id: decisionId, field: d.field, header: d.key, problem: d.reason }, 'ext_authz denial header left out: no HTTP message can carry it')
      }
      let structured = typeof decision.result === 'object'
      // deny reasons, when the deployment returns them (policy.return_reasons): a header of the
      // denied response, so a boolean deny gets a denied response (403, as Envoy's default) to carry it
      if (!verdict.allowed && decision.returnReasons === true && decision.reasons !== undefined) {
        verdict = { ...verdict, headers: [...verdict.headers, { key: REASONS_HEADER, value: asciiJson(decision.reasons) }] }
        structured = true
      }
      if (this.#settings.dryRun && !verdict.allowed) {
        this.#log.info({ decision_id: decisionId, transport: this.#transport }, 'dry run: the policy denied, answering OK')
        return { kind: 'decided', verdict: { ...verdict, allowed: true, headers: [], headersToRemove: [], responseHeadersToAdd: [], queryParametersToSet: [], queryParametersToRemove: [] }, decisionId, structured, dryRun: true }
      }
      return { kind: 'decided', verdict, decisionId, structured, dryRun: false }
    } catch (err) {
      const error = toPortcullisError(err)
      this.#failed(error)
      if (isRefusal(error)) return { kind: 'refused', error }
      // decide() logs its own failures; the rest (undefined, malformed result) are logged here.
      if (!wasReported(error)) this.#log.warn({ decision_id: decisionId, code: error.code, transport: this.#transport, details: error.details }, `ext_authz decision failed: ${error.message}`)
      return decisionId !== undefined ? { kind: 'error', error, decisionId } : { kind: 'error', error }
    }
  }

  #aborted (signal: AbortSignal | undefined): PortcullisError | undefined {
    if (signal?.aborted !== true) return undefined
    const reason: unknown = signal.reason
    return reason instanceof PortcullisError ? reason : new PortcullisError('PORTCULLIS_ENVOY_CANCELLED', 'the caller cancelled the Check')
  }
}

/** How the adapter reads one decision: the verdict to answer, or the error; and what the audit event records. */
type Judgement = { verdict: EnvoyVerdict, error?: undefined, audit: TransportVerdict } | { verdict?: undefined, error: PortcullisError, audit: TransportVerdict }

/**
 * Denials before or instead of the policy's answer: identity (no credential, or a credential
 * rejected for any reason under on_rejected: deny — a 5xx one too: keys that cannot be fetched
 * (PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE) leave a forged token unverified, never verified), and
 * a decision the audit log could not record. A denial, never an error, so Envoy's
 * failure_mode_allow cannot let it through. Over gRPC the denied response keeps the error's
 * status (503 for unavailable keys); HTTP service mode answers a denial status (http.ts).
 */
function isRefusal (error: PortcullisError): boolean {
  return error.code.startsWith('PORTCULLIS_IDENTITY_') || error.code === 'PORTCULLIS_AUDIT_UNAVAILABLE'
}

/** `attributes.request.http.id` → `['attributes', 'request', 'http', 'id']`. */
export function inputPaths (paths: readonly string[]): string[][] {
  return paths.map((p) => p.split('.').filter((s) => s !== ''))
}
