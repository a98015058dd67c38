/**
 * THE decision pipeline. Every transport (the HTTP Data API and its batch route, Envoy ext_authz, portcullis eval) calls
 * `DecisionService.decide()`; nothing below this file knows about HTTP.
 *
 *   1. snapshot   take the active PolicySnapshot once: the decision finishes on the revision
 *                 it began with, whatever activates meanwhile
 *   2. identity   credentials -> verified identity document (identity plugins); a missing or
 *                 rejected credential is denied here unless the deployment lets the policy see it
 *   3. input      the caller's input plus `identity` (or `identity_error`); caller-supplied
 *                 values of those keys are removed always, identity plugins on or off
 *   4. cache      key = SHA-256 of the structured (generation, strict, bundle, revision, path,
 *                 SHA-256(canonical input)); skipped for policies that call non-deterministic
 *                 builtins and for requests that ask (skipCache); input paths a transport names
 *                 (cacheIgnorePaths, Envoy's volatile fields) are left out of the key only; an
 *                 answer is inserted only if no flush happened since the decision began
 *   5. evaluate   the owning bundle's wasm entrypoint
 *   6. result     Decision { decision_id, result?, bundles, cached }
 *   7. audit      every decision (cached ones too, with their own decision_id) and every failure,
 *                 before the answer: a hook's promise (sync durability) is awaited, and a
 *                 decision it cannot record fails closed (PORTCULLIS_AUDIT_UNAVAILABLE)
 *
 * Any failure is thrown as a PortcullisError; transports turn every error into a denial. Each
 * failure is logged here, once, with its decision_id and code (transports log only what fails
 * before a decision exists, see wasReported()); builtin errors that a non-strict evaluation
 * turned into undefined expressions are counted and logged with the builtin's name.
 */
import { randomUUID } from 'node:crypto'
import type { BundleManager } from '../bundles/activate.js'
import { isJsonObject } from '../canonical-json.js'
import { deepFreeze } from '../deep-freeze.js'
import { PolicyError, PortcullisError, toPortcullisError } from '../errors.js'
import { decisionCacheKeyOf, hashInput, withoutPaths } from '../cache/key.js'
import { silentLogger, type Logger } from '../log.js'
import { dataPath } from './path.js'
import { evaluateReasons, reasonsRuleFor } from './reasons.js'
import { inputJsonOf, type PolicySnapshot } from '../policy/snapshot.js'
import type { CachedDecision, DecisionCache } from '../cache/decision-cache.js'
import { outcomeOf, type CounterChild, type DecisionOutcome, type HistogramChild, type Metrics } from '../metrics/index.js'
import type { AuditHook, Decision, DecisionRecord, DecisionRequest, IdentityPolicy, Transport } from './types.js'

export type { Decision, DecisionRequest, CredentialContext, IdentityPolicy, AuditHook, DecisionRecord, Transport, TransportVerdict } from './types.js'
export { resultText } from './types.js'

export interface DecisionServiceOptions {
  manager: BundleManager
  identity?: IdentityPolicy
  cache?: DecisionCache
  metrics?: Metrics
  audit?: AuditHook
  strictBuiltinErrors?: boolean
  logger?: Logger
  /** Decision path -> reasons rule path (policy.reasons); bundles may also declare them in their manifest metadata. */
  reasons?: Readonly<Record<string, string>>
  /** Return a deny's reasons to the caller (policy.return_reasons; off by default). */
  returnReasons?: boolean
}

/**
 * A hook that could not record a decision: the decision is not answered as decided, it fails
 * closed with PORTCULLIS_AUDIT_UNAVAILABLE (503; every transport denies on an error).
 */
function auditUnavailable (err: unknown): never {
  if (err instanceof PortcullisError && err.code === 'PORTCULLIS_AUDIT_UNAVAILABLE') throw err
  throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', `the decision could not be recorded in the audit log: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err })
}

/** Keys of the input that only Portcullis may set. */
const RESERVED_INPUT_KEYS = ['identity', 'identity_error'] as const

// Failures decide() has logged (with their decision_id): a transport logs only the others.
const reported = new WeakSet<object>()

/** True when the decision pipeline has already logged this failure. */
export function wasReported (err: unknown): boolean {
  return typeof err === 'object' && err !== null && reported.has(err)
}

const now = (): bigint => process.hrtime.bigint()

/** The input's JSON text for the evaluation; undefined when there is no input. */
const textOf = (input: unknown): string | undefined => input === undefined ? undefined : inputJsonOf(input)

/** Decision paths whose reasons rule is remembered per snapshot (callers choose paths). */
const REASONS_RULES_MAX = 1024

interface DecisionSeries { count: CounterChild, duration: HistogramChild }

export class DecisionService {
  readonly #manager: BundleManager
  readonly #identity: IdentityPolicy | undefined
  readonly #cache: DecisionCache | undefined
  readonly #metrics: Metrics | undefined
  readonly #strict: boolean
  readonly #log: Logger
  readonly #reasons: Readonly<Record<string, string>> | undefined
  readonly #returnReasons: boolean
  #audit: AuditHook | undefined
  readonly #series = new Map<string, DecisionSeries>()
  readonly #sharedEntries = new Map<string, CachedDecision>()
  // snapshot -> decision path -> reasons rule (null: none named); see #reasonsRule
  readonly #reasonsRules = new WeakMap<PolicySnapshot, Map<string, string | null>>()

  constructor (opts: DecisionServiceOptions) {
    this.#manager = opts.manager
    this.#identity = opts.identity
    this.#cache = opts.cache
    this.#metrics = opts.metrics
    this.#audit = opts.audit
    this.#strict = opts.strictBuiltinErrors ?? false
    this.#log = opts.logger ?? silentLogger
    this.#reasons = opts.reasons !== undefined && Object.keys(opts.reasons).length > 0 ? opts.reasons : undefined
    this.#returnReasons = opts.returnReasons ?? false
    // Caches learn of activations by trigger (OPA style), never by polling.
    if (this.#cache !== undefined) {
      const cache = this.#cache
      this.#manager.on('activate', () => { cache.clear() })
    }
  }

  /**
   * True when every expected bundle has activated and the active snapshot answers `path` with a
   * compiled entrypoint or data document: what a transport's health check reports (the Envoy
   * gRPC health service, so Envoy stops routing Checks to an instance that can only deny).
   */
  canAnswer (path: string): boolean {
    if (!this.#manager.ready()) return false
    try {
      // the path as decide() reads it (dataPath folds `//`, refuses control characters)
      return this.#manager.snapshot.resolve(dataPath(path)).kind !== 'none'
    } catch {
      return false
    }
  }

  /** Calls `listener` after every activation or removal (readiness may have changed); returns the unsubscribe. */
  onActivation (listener: () => void): () => void {
    this.#manager.on('activate', listener)
    return () => { this.#manager.off('activate', listener) }
  }

  /**
   * The cache entry for a decision. Boolean and undefined answers (most of them) share one
   * frozen entry per bundle instead of one object per cached input.
   */
  #entryOf (defined: boolean, result: unknown, bundle: string, resultJson?: string): CachedDecision {
    if (resultJson !== undefined) return { defined, result: deepFreeze(result), bundle, resultJson }
    if (!defined || typeof result === 'boolean') {
      const k = `${bundle}\0${defined ? String(result) : 'undefined'}`
      let e = this.#sharedEntries.get(k)
      if (e === undefined) {
        e = Object.freeze(defined ? { defined, result, bundle } : { defined, bundle })
        this.#sharedEntries.set(k, e)
      }
      return e
    }
    return { defined, result: deepFreeze(result), bundle }
  }

  /** The metric series of one (transport, outcome, cached) combination, bound once. */
  #seriesOf (metrics: Metrics, transport: Transport, outcome: DecisionOutcome, cached: boolean): DecisionSeries {
    const key = `${transport}|${outcome}|${cached ? 1 : 0}`
    let s = this.#series.get(key)
    if (s === undefined) {
      const c = cached ? 'true' : 'false'
      s = { count: metrics.decisions.child({ outcome, transport, cached: c }), duration: metrics.decisionDuration.child({ transport, cached: c }) }
      this.#series.set(key, s)
    }
    return s
  }

  /** Installs the audit hook (the audit subsystem registers itself here). */
  setAuditHook (hook: AuditHook | undefined): void {
    this.#audit = hook
  }

  /** True while an audit hook is installed (every decision is being recorded). */
  get auditEnabled (): boolean {
    return this.#audit !== undefined
  }

  get identityEnabled (): boolean {
    return this.#identity !== undefined
  }

  async decide (req: DecisionRequest): Promise<Decision> {
    const started = now()
    const timestamp = new Date()
    const decisionId = randomUUID()
    const transport = req.transport ?? 'http'
    // 1. snapshot, once; and the cache's epoch before anything awaits
    const snapshot = this.#manager.snapshot
    const epoch = this.#cache?.epoch ?? 0
    let input: unknown = req.input
    try {
      const path = dataPath(req.path)
      if (snapshot.bundles.size === 0) {
        throw new PolicyError('PORTCULLIS_POLICY_NOT_READY', 'no policy bundle is active yet', { path })
      }
      // 2 + 3. identity into input; the reserved keys are the pipeline's whether or not
      // identity plugins are on, so a caller can never claim an identity in its input
      let identityNs = 0
      if (this.#identity !== undefined) {
        const t0 = now()
        input = await this.#attachIdentity(req, this.#identity)
        identityNs = Number(now() - t0)
      } else {
        input = this.#withoutReservedKeys(input)
      }
      // 4. cache
      const res = snapshot.resolve(path)
      const strict = req.strictBuiltinErrors ?? this.#strict
      const bundle = res.kind === 'none' ? undefined : res.bundle.compiled.bundle
      const cacheable = res.kind !== 'none' && this.#cache !== undefined && res.bundle.compiled.cacheable && req.explain !== true && req.skipCache !== true
      // With ignored paths the key hashes a pruned copy, so its JSON is not the policy's input.
      const ignored = req.cacheIgnorePaths !== undefined && req.cacheIgnorePaths.length > 0 ? req.cacheIgnorePaths : undefined
      const hashed = cacheable && bundle !== undefined ? hashInput(ignored !== undefined ? withoutPaths(input, ignored) : input) : undefined
      const key = hashed !== undefined && bundle !== undefined
        ? decisionCacheKeyOf({ generation: snapshot.generation, strict, bundle: bundle.name, revision: bundle.manifest.revision, path, inputSha: hashed.hash })
        : undefined
      const hit = key !== undefined ? this.#cache?.get(key) : undefined
      // The input's JSON text, made at most once per decision and shared by the evaluation, the
      // deny reasons and the audit record: the cache key's text when it is the whole input's
      // (no ignored paths), else serialized on first need (a cache hit without audit needs none).
      let inputJson = hashed?.json !== undefined && ignored === undefined ? hashed.json : undefined

      let defined: boolean
      let result: unknown
      let resultJson: string | undefined
      let evalNs = 0
      let explanation: string[] | undefined
      if (hit !== undefined) {
        defined = hit.defined
        result = hit.result
        resultJson = hit.resultJson
      } else {
        // 5. evaluate (a path no bundle owns is undefined, as in OPA)
        const t0 = now()
        if (res.kind === 'entrypoint') inputJson ??= textOf(input) // a data document needs no input
        const evaluation = snapshot.evaluate(path, input, inputJson !== undefined ? { strictBuiltinErrors: strict, inputJson } : { strictBuiltinErrors: strict })
        evalNs = Number(now() - t0)
        defined = evaluation.defined
        result = evaluation.result
        resultJson = evaluation.resultJson
        if (req.explain === true) explanation = evaluation.trace
        // A decision whose builtins raised errors (non-strict) is still answered, but not cached:
        // the error may be transient (e.g. time), and it must be visible every time.
        // Cached results are shared by every later hit: frozen, so no consumer (e.g. audit
        // masking) can change what the next caller is told.
        if (evaluation.builtinErrors.length > 0) this.#builtinErrors(decisionId, path, evaluation.builtinErrors)
        // Inserted only if the cache was not emptied since this decision began: an activation or
        // a trust change in between (each empties it) would otherwise receive a stale answer.
        else if (key !== undefined) this.#cache?.setIfCurrent(epoch, key, this.#entryOf(defined, result, evaluation.bundle, resultJson))
      }
      // 6. result
      const decision: Decision = {
        decision_id: decisionId,
        path,
        defined,
        bundles: snapshot.revisions(),
        bundle: bundle?.name ?? '',
        cached: hit !== undefined,
        input,
        timestamp,
        metrics: { timer_rego_query_eval_ns: evalNs, timer_portcullis_identity_ns: identityNs, timer_portcullis_decision_ns: Number(now() - started) },
      }
      if (defined) decision.result = result
      if (resultJson !== undefined) decision.resultJson = resultJson
      if (explanation !== undefined) decision.explanation = explanation
      // 7. audit, before the answer: a hook that returns a promise (sync durability) is awaited,
      // and one that cannot record the decision turns it into PORTCULLIS_AUDIT_UNAVAILABLE. With
      // nothing to wait for (no hook, or async/batched) no promise is made, so without identity
      // plugins decide() still runs to its end in one synchronous pass (fast-data.ts batches on it).
      const verdict = req.verdictOf?.(decision)
      // 6b. a deny's reasons: evaluated on every deny, cached or not (reasons are not cached:
      // only denies pay for them), on the same snapshot and input; never changes the decision.
      // Only when something reads them: the audit trail, or callers (policy.return_reasons).
      if ((this.#audit !== undefined || this.#returnReasons) && (verdict !== undefined ? verdict.outcome === 'deny' : outcomeOf(defined, result) === 'deny')) {
        const rule = this.#reasonsRule(snapshot, path)
        if (rule !== undefined) this.#attachReasons(decision, snapshot, rule, input, strict, inputJson ??= textOf(input))
      }
      if (this.#audit !== undefined) {
        const record: DecisionRecord = { decision, request: req, decision_id: decisionId, timestamp, bundles: decision.bundles, input, snapshot }
        if (verdict !== undefined) record.verdict = verdict
        inputJson ??= textOf(input)
        if (inputJson !== undefined) record.inputJson = inputJson
        const pending = this.#callAudit(this.#audit, record)
        if (pending !== undefined) await pending.catch(auditUnavailable)
      }
      if (this.#metrics !== undefined) {
        const series = this.#seriesOf(this.#metrics, transport, outcomeOf(defined, result), decision.cached)
        series.count.inc()
        series.duration.observe(decision.metrics.timer_portcullis_decision_ns / 1e9)
      }
      return decision
    } catch (err) {
      const error = toPortcullisError(err)
      if (this.#metrics !== undefined) this.#seriesOf(this.#metrics, transport, 'error', false).count.inc()
      const fields = { decision_id: decisionId, code: error.code, path: req.path, transport, request_id: req.requestId, details: error.details }
      if (error.status >= 500) this.#log.error({ ...fields, err: error.cause ?? error }, `decision failed: ${error.message}`)
      else this.#log.warn(fields, `decision refused: ${error.message}`)
      reported.add(error)
      // The failure is recorded too. If that fails, the caller gets PORTCULLIS_AUDIT_UNAVAILABLE
      // (the decision's error as its cause), never the decision's own error: transports answer
      // AUDIT_UNAVAILABLE as a refusal (Envoy: a denial), whereas an internal error becomes a
      // gRPC error / 5xx that Envoy's failure_mode_allow would let through unrecorded.
      const auditErr = await this.#recordFailure(error, req, decisionId, timestamp, snapshot, input)
      if (auditErr !== undefined) {
        this.#log.error({ decision_id: decisionId, code: 'PORTCULLIS_AUDIT_UNAVAILABLE', component: 'audit', decision_code: error.code, err: auditErr.err }, 'the audit hook failed to record a failed decision: answered PORTCULLIS_AUDIT_UNAVAILABLE')
        if (error.code === 'PORTCULLIS_AUDIT_UNAVAILABLE') throw error
        const unrecorded = new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', `the failed decision could not be recorded in the audit log: ${auditErr.err instanceof Error ? auditErr.err.message : String(auditErr.err)}`, { decision_code: error.code }, { cause: error })
        reported.add(unrecorded)
        throw unrecorded
      }
      throw error
    }
  }

  /**
   * The reasons rule for a path on a snapshot, looked up once per (snapshot, path): the
   * configured map and the owning bundle's manifest do not change within a snapshot. At most
   * REASONS_RULES_MAX paths are remembered per snapshot; a new snapshot starts a new map.
   */
  #reasonsRule (snapshot: PolicySnapshot, path: string): string | undefined {
    let rules = this.#reasonsRules.get(snapshot)
    if (rules === undefined) {
      rules = new Map()
      this.#reasonsRules.set(snapshot, rules)
    }
    const known = rules.get(path)
    if (known !== undefined) return known === null ? undefined : known
    const rule = reasonsRuleFor(snapshot, path, this.#reasons)
    if (rules.size < REASONS_RULES_MAX) rules.set(path, rule ?? null)
    return rule
  }

  /** Evaluates a deny's reasons rule into the decision (never throws; a failure is reasons_error, logged). */
  #attachReasons (decision: Decision, snapshot: PolicySnapshot, rule: string, input: unknown, strict: boolean, inputJson: string | undefined): void {
    const r = evaluateReasons(snapshot, rule, input, { strictBuiltinErrors: strict, ...(inputJson !== undefined ? { inputJson } : {}) })
    if (r.error !== undefined) {
      decision.reasons_error = r.error
      this.#log.warn({ decision_id: decision.decision_id, code: r.error.code, path: decision.path, rule }, `deny reasons rule ${rule} failed (the deny stands): ${r.error.message}`)
      return
    }
    decision.reasons = r.reasons as unknown[]
    if (r.truncated === true) decision.reasons_truncated = true
    if (this.#returnReasons) decision.returnReasons = true
  }

  /** Calls the audit hook; a hook that throws is treated as one that rejected. */
  #callAudit (hook: AuditHook, record: DecisionRecord): Promise<void> | undefined {
    try {
      // `void` in the hook's type lets plain callbacks be hooks; at run time it is undefined
      return hook(record) ?? undefined
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Builtin errors of a non-strict evaluation: OPA's semantics turn the failing expression
   * undefined (which can flip a `not deny` rule), so each one is counted by builtin and logged.
   */
  #builtinErrors (decisionId: string, path: string, errors: ReadonlyArray<{ builtin: string, message: string }>): void {
    for (const e of errors) {
      this.#metrics?.builtinErrors.inc({ builtin: e.builtin })
      this.#log.warn({ decision_id: decisionId, code: 'PORTCULLIS_POLICY_BUILTIN_ERROR', path, builtin: e.builtin, error: e.message }, `builtin ${e.builtin} failed (the expression is undefined): ${e.message}`)
    }
  }

  /** The caller's input without the keys only Portcullis may set (counted when present). */
  #withoutReservedKeys (input: unknown): unknown {
    if (!isJsonObject(input)) return input
    if (!Object.hasOwn(input, 'identity') && !Object.hasOwn(input, 'identity_error')) return input
    const out: Record<string, unknown> = { ...input }
    for (const k of RESERVED_INPUT_KEYS) {
      if (Object.hasOwn(out, k)) {
        delete out[k]
        this.#metrics?.reservedInputKeys.inc({ key: k })
      }
    }
    return out
  }

  async #attachIdentity (req: DecisionRequest, policy: IdentityPolicy): Promise<unknown> {
    const callerInput = req.input
    // an exact number (digits a double cannot hold) is a number, not an object to spread
    if (callerInput !== undefined && !isJsonObject(callerInput)) {
      throw new PolicyError('PORTCULLIS_INPUT_INVALID', 'input must be an object when identity verification is on (Portcullis adds input.identity)', { path: req.path })
    }
    // input.identity and input.identity_error belong to Portcullis: a caller cannot forge them.
    const base = { ...(this.#withoutReservedKeys(callerInput) as Record<string, unknown> | undefined) }

    let outcome
    try {
      outcome = await policy.verifier.verify(req.credentials ?? {})
    } catch (err) {
      // A verifier that fails is a rejection, never an anonymous pass.
      outcome = { kind: 'rejected' as const, error: toPortcullisError(err) }
    }
    switch (outcome.kind) {
      case 'verified':
        base.identity = outcome.identity
        return base
      case 'none':
        if (policy.onMissing === 'deny' && req.anonymousToPolicy !== true) {
          throw new PortcullisError('PORTCULLIS_IDENTITY_REQUIRED', 'the request carries no credential and anonymous callers are denied', { path: req.path })
        }
        base.identity_error = { code: 'PORTCULLIS_IDENTITY_REQUIRED', message: 'no credential presented' }
        return base
      case 'rejected':
        this.#metrics?.identityRejections.inc({ code: outcome.error.code })
        if (policy.onRejected === 'deny') throw outcome.error
        base.identity_error = { code: outcome.error.code, message: outcome.error.message }
        return base
    }
  }

  /**
   * Records a request that ended before it could become a decision (an Envoy CheckRequest
   * whose path or body cannot be parsed, a Check cancelled first): the audit hook sees it as a
   * failure with its own decision_id, so every Check is audited. Returns the decision_id.
   */
  async recordRefusal (req: DecisionRequest, error: PortcullisError): Promise<string> {
    const decisionId = randomUUID()
    // awaited as a decision's record is (sync durability): the refusal is answered after it
    const auditErr = await this.#recordFailure(error, req, decisionId, new Date(), this.#manager.snapshot, undefined)
    // the request is refused either way; the failure to record it is logged and counted by the trail
    if (auditErr !== undefined) this.#log.error({ decision_id: decisionId, code: 'PORTCULLIS_AUDIT_UNAVAILABLE', component: 'audit', err: auditErr.err }, 'the audit hook failed to record a refused request')
    return decisionId
  }

  /**
   * Records a failure — a decision that failed, or a request refused before it became one —
   * and waits for the hook as a decision's record is waited for. Resolves to the hook's error
   * when it could not record it (the caller decides what that means), else to undefined.
   */
  async #recordFailure (error: PortcullisError, req: DecisionRequest, decisionId: string, timestamp: Date, snapshot: PolicySnapshot, input: unknown): Promise<{ err: unknown } | undefined> {
    if (this.#audit === undefined) return undefined
    const record: DecisionRecord = { error, request: req, decision_id: decisionId, timestamp, bundles: snapshot.revisions(), snapshot }
    if (input !== undefined) record.input = input
    const pending = this.#callAudit(this.#audit, record)
    if (pending === undefined) return undefined
    try {
      await pending
      return undefined
    } catch (err) {
      return { err }
    }
  }

  /** Flushes the decision cache (admin endpoint). */
  flushCache (): number {
    return this.#cache?.clear() ?? 0
  }

  cacheStats (): ReturnType<DecisionCache['stats']> | undefined {
    return this.#cache?.stats()
  }
}
