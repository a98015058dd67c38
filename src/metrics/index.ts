/**
 * Prometheus metrics (prom-client), one registry per process. In a worker group the primary
 * aggregates every worker's registry into one /metrics view (see src/server/workers.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export type DecisionOutcome = 'allow' | 'deny' | 'undefined' | 'error' | 'value'

export class Metrics {
  readonly registry = new Registry()
  readonly httpDuration: Histogram<'route' | 'method' | 'outcome'>
  readonly decisions: Counter<'outcome' | 'transport' | 'cached'>
  readonly decisionDuration: Histogram<'transport' | 'cached'>
  readonly cacheHits: Counter
  readonly cacheMisses: Counter
  readonly cacheEvictions: Counter
  readonly cacheEntries: Gauge
  readonly identityRejections: Counter<'code'>
  readonly bundleActivations: Counter<'bundle'>
  readonly bundleFailures: Counter<'bundle' | 'code'>
  readonly requestErrors: Counter<'code'>

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry]
    this.httpDuration = new Histogram({
      name: 'portcullis_http_request_duration_seconds',
      help: 'HTTP request duration by route and outcome',
      labelNames: ['route', 'method', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    })
    this.decisions = new Counter({ name: 'portcullis_decisions_total', help: 'Decisions by outcome (allow, deny, undefined, error, value)', labelNames: ['outcome', 'transport', 'cached'], registers })
    this.decisionDuration = new Histogram({
      name: 'portcullis_decision_duration_seconds',
      help: 'Decision pipeline duration (identity, cache, evaluation)',
      labelNames: ['transport', 'cached'],
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    })
    this.cacheHits = new Counter({ name: 'portcullis_decision_cache_hits_total', help: 'Decision cache hits', registers })
    this.cacheMisses = new Counter({ name: 'portcullis_decision_cache_misses_total', help: 'Decision cache misses', registers })
    this.cacheEvictions = new Counter({ name: 'portcullis_decision_cache_evictions_total', help: 'Decision cache evictions (size or TTL)', registers })
    this.cacheEntries = new Gauge({ name: 'portcullis_decision_cache_entries', help: 'Decisions currently cached', registers })
    this.identityRejections = new Counter({ name: 'portcullis_identity_rejections_total', help: 'Rejected credentials by code', labelNames: ['code'], registers })
    this.bundleActivations = new Counter({ name: 'portcullis_bundle_activations_total', help: 'Bundle activations', labelNames: ['bundle'], registers })
    this.bundleFailures = new Counter({ name: 'portcullis_bundle_activation_failures_total', help: 'Bundle activation failures by code', labelNames: ['bundle', 'code'], registers })
    this.requestErrors = new Counter({ name: 'portcullis_request_errors_total', help: 'Requests refused or failed, by error code', labelNames: ['code'], registers })
    if (opts.defaultMetrics !== false) {
      // process and Node.js metrics, including nodejs_eventloop_lag_seconds
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 })
    }
  }
}

/** Classifies a decision result for metrics: booleans and {allow|allowed: boolean} objects. */
export function outcomeOf (defined: boolean, result: unknown): DecisionOutcome {
  if (!defined) return 'undefined'
  if (result === true) return 'allow'
  if (result === false) return 'deny'
  if (result !== null && typeof result === 'object' && !Array.isArray(result)) {
    const r = result as { allow?: unknown, allowed?: unknown }
    const flag = typeof r.allowed === 'boolean' ? r.allowed : r.allow
    if (flag === true) return 'allow'
    if (flag === false) return 'deny'
  }
  return 'value'
}
