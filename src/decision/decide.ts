/**
 * THE decision pipeline. Every transport (HTTP Data API, Envoy ext_authz, CLI) calls
 * `decide()`; nothing below this file knows about HTTP.
 *
 *   request -> snapshot (taken once: the decision finishes on the revision it began with)
 *           -> evaluate the path in the owning bundle
 *           -> Decision { decision_id, result?, bundles }
 *
 * Failures are thrown as PortcullisError; transports turn them into denials.
 */
import { randomUUID } from 'node:crypto'
import type { BundleManager } from '../bundles/activate.js'
import { PolicyError } from '../errors.js'

export interface DecisionRequest {
  /** Data API path, e.g. `authz/allow`. */
  path: string
  /** The input document; undefined means "no input". */
  input?: unknown
  strictBuiltinErrors?: boolean
}

export interface Decision {
  decision_id: string
  path: string
  /** False when the policy's answer is undefined. */
  defined: boolean
  result?: unknown
  /** `{name: {revision}}` of the bundles active when the decision was made. */
  bundles: Record<string, { revision: string }>
  /** Bundle that answered. */
  bundle: string
}

export interface DecisionServiceOptions {
  manager: BundleManager
  strictBuiltinErrors?: boolean
}

export class DecisionService {
  readonly #manager: BundleManager
  readonly #strict: boolean

  constructor (opts: DecisionServiceOptions) {
    this.#manager = opts.manager
    this.#strict = opts.strictBuiltinErrors ?? false
  }

  decide (req: DecisionRequest): Decision {
    const snapshot = this.#manager.snapshot
    if (snapshot.bundles.size === 0) {
      throw new PolicyError('PORTCULLIS_POLICY_NOT_READY', 'no policy bundle is active yet', { path: req.path })
    }
    const evaluation = snapshot.evaluate(req.path, req.input, { strictBuiltinErrors: req.strictBuiltinErrors ?? this.#strict })
    const decision: Decision = {
      decision_id: randomUUID(),
      path: req.path.replace(/^\/+|\/+$/g, ''),
      defined: evaluation.defined,
      bundles: snapshot.revisions(),
      bundle: evaluation.bundle,
    }
    if (evaluation.defined) decision.result = evaluation.result
    return decision
  }
}
