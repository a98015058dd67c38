/**
 * THE decision pipeline. Every transport (the HTTP Data API and its batch route) calls
 * `DecisionService.decide()`; nothing below this file knows about HTTP.
 *
 *   1. snapshot   take the active PolicySnapshot once: the decision finishes on the revision
 *                 it began with, whatever activates meanwhile
 *   2. identity   credentials -> verified identity document (identity plugins); a missing or
 *                 rejected credential is denied here unless the deployment lets the policy see it
 *   3. input      the caller's input plus `identity` (or `identity_error`); caller-supplied
 *                 values of those keys are never trusted
 *   4. cache      key = SHA-256(bundle, revision, path, SHA-256(canonical input)); skipped for policies
 *                 that call non-deterministic builtins
 *   5. evaluate   the owning bundle's wasm entrypoint
 *   6. result     Decision { decision_id, result?, bundles, cached }
 *   7. audit      every decision (cached ones too, with their own decision_id) and every failure
 *
 * Any failure is thrown as a PortcullisError; transports turn every error into a denial.
 */
import { randomUUID } from 'node:crypto'
import type { BundleManager } from '../bundles/activate.js'
import { deepFreeze } from '../deep-freeze.js'
import { PolicyError, PortcullisError, toPortcullisError } from '../errors.js'
import { decisionCacheKeyOf, hashInput } from '../cache/key.js'
import type { CachedDecision, DecisionCache } from '../cache/decision-cache.js'
import { outcomeOf, type CounterChild, type DecisionOutcome, type HistogramChild, type Metrics } from '../metrics/index.js'
import type { AuditHook, Decision, DecisionRequest, IdentityPolicy, Transport } from './types.js'

export type { Decision, DecisionRequest, CredentialContext, IdentityPolicy, AuditHook, DecisionRecord, Transport } from './types.js'

export interface DecisionServiceOptions {
  manager: BundleManager
  identity?: IdentityPolicy
  cache?: DecisionCache
  metrics?: Metrics
  audit?: AuditHook
  strictBuiltinErrors?: boolean
}

const now = (): bigint => process.hrtime.bigint()

/** Trims leading and trailing slashes (without a regular expression in the common case). */
function trimSlashes (p: string): string {
  if (p.length === 0 || (p.charCodeAt(0) !== 0x2f && p.charCodeAt(p.length - 1) !== 0x2f)) return p
  return p.replace(/^\/+|\/+$/g, '')
}

interface DecisionSeries { count: CounterChild, duration: HistogramChild }

export class DecisionService {
  readonly #manager: BundleManager
  readonly #identity: IdentityPolicy | undefined
  readonly #cache: DecisionCache | undefined
  readonly #metrics: Metrics | undefined
  readonly #strict: boolean
  #audit: AuditHook | undefined
  readonly #series = new Map<string, DecisionSeries>()
  readonly #sharedEntries = new Map<string, CachedDecision>()

  constructor (opts: DecisionServiceOptions) {
    this.#manager = opts.manager
    this.#identity = opts.identity
    this.#cache = opts.cache
    this.#metrics = opts.metrics
    this.#audit = opts.audit
    this.#strict = opts.strictBuiltinErrors ?? false
    // Caches learn of activations by trigger (OPA style), never by polling.
    if (this.#cache !== undefined) {
      const cache = this.#cache
      this.#manager.on('activate', () => { cache.clear() })
    }
  }

  /**
   * The cache entry for a decision. Boolean and undefined answers (most of them) share one
   * frozen entry per bundle instead of one object per cached input.
   */
  #entryOf (defined: boolean, result: unknown, bundle: string): CachedDecision {
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

  get identityEnabled (): boolean {
    return this.#identity !== undefined
  }

  async decide (req: DecisionRequest): Promise<Decision> {
    const started = now()
    const timestamp = new Date()
    const decisionId = randomUUID()
    const transport = req.transport ?? 'http'
    // 1. snapshot, once
    const snapshot = this.#manager.snapshot
    let input: unknown = req.input
    try {
      if (snapshot.bundles.size === 0) {
        throw new PolicyError('PORTCULLIS_POLICY_NOT_READY', 'no policy bundle is active yet', { path: req.path })
      }
      // 2 + 3. identity into input
      let identityNs = 0
      if (this.#identity !== undefined) {
        const t0 = now()
        input = await this.#attachIdentity(req, this.#identity)
        identityNs = Number(now() - t0)
      }
      // 4. cache
      const res = snapshot.resolve(req.path)
      const path = trimSlashes(req.path)
      const strict = req.strictBuiltinErrors ?? this.#strict
      const bundle = res.kind === 'none' ? undefined : res.bundle.compiled.bundle
      const cacheable = res.kind !== 'none' && this.#cache !== undefined && res.bundle.compiled.cacheable && req.explain !== true
      const hashed = cacheable && bundle !== undefined ? hashInput(input) : undefined
      const key = hashed !== undefined && bundle !== undefined ? decisionCacheKeyOf(bundle.name, bundle.manifest.revision, strict ? `${path}\0strict` : path, hashed.hash) : undefined
      const hit = key !== undefined ? this.#cache?.get(key) : undefined

      let defined: boolean
      let result: unknown
      let evalNs = 0
      let explanation: string[] | undefined
      if (hit !== undefined) {
        defined = hit.defined
        result = hit.result
      } else {
        // 5. evaluate (a path no bundle owns is undefined, as in OPA)
        const t0 = now()
        const evaluation = snapshot.evaluate(path, input, hashed?.json !== undefined ? { strictBuiltinErrors: strict, inputJson: hashed.json } : { strictBuiltinErrors: strict })
        evalNs = Number(now() - t0)
        defined = evaluation.defined
        result = evaluation.result
        if (req.explain === true) explanation = evaluation.trace
        // A decision whose builtins raised errors (non-strict) is still answered, but not cached:
        // the error may be transient (e.g. time), and it must be visible every time.
        // Cached results are shared by every later hit: frozen, so no consumer (e.g. audit
        // masking) can change what the next caller is told.
        if (key !== undefined && evaluation.builtinErrors.length === 0) this.#cache?.set(key, this.#entryOf(defined, result, evaluation.bundle))
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
      if (explanation !== undefined) decision.explanation = explanation
      if (this.#metrics !== undefined) {
        const series = this.#seriesOf(this.#metrics, transport, outcomeOf(defined, result), decision.cached)
        series.count.inc()
        series.duration.observe(decision.metrics.timer_portcullis_decision_ns / 1e9)
      }
      // 7. audit
      this.#audit?.({ decision, request: req, decision_id: decisionId, timestamp, bundles: decision.bundles, input })
      return decision
    } catch (err) {
      const error = toPortcullisError(err)
      if (this.#metrics !== undefined) {
        this.#seriesOf(this.#metrics, transport, 'error', false).count.inc()
        this.#metrics.requestErrors.inc({ code: error.code })
      }
      this.#audit?.({ error, request: req, decision_id: decisionId, timestamp, bundles: snapshot.revisions(), input })
      throw error
    }
  }

  async #attachIdentity (req: DecisionRequest, policy: IdentityPolicy): Promise<unknown> {
    const callerInput = req.input
    if (callerInput !== undefined && (callerInput === null || typeof callerInput !== 'object' || Array.isArray(callerInput))) {
      throw new PolicyError('PORTCULLIS_INPUT_INVALID', 'input must be an object when identity verification is on (Portcullis adds input.identity)', { path: req.path })
    }
    // input.identity and input.identity_error belong to Portcullis: a caller cannot forge them.
    const base: Record<string, unknown> = { ...(callerInput as Record<string, unknown> | undefined) }
    delete base.identity
    delete base.identity_error

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
        if (policy.onMissing === 'deny') {
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

  /** Flushes the decision cache (admin endpoint). */
  flushCache (): number {
    return this.#cache?.clear() ?? 0
  }

  cacheStats (): ReturnType<DecisionCache['stats']> | undefined {
    return this.#cache?.stats()
  }
}
