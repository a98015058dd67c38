/**
 * Prometheus metrics (prom-client), one registry per process. In a worker group the primary
 * aggregates every worker's registry into one /metrics view (see src/server/workers.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { HotCounter, HotHistogram } from './hot.js'

export type { CounterChild, HistogramChild } from './hot.js'

export type DecisionOutcome = 'allow' | 'deny' | 'undefined' | 'error' | 'value'

export class Metrics {
  readonly registry = new Registry()
  // Series recorded on every decision are HotCounter/HotHistogram (label sets bound once, see
  // hot.ts); the rest are plain prom-client metrics.
  readonly httpDuration: HotHistogram<'route' | 'method' | 'outcome'>
  readonly decisions: HotCounter<'outcome' | 'transport' | 'cached'>
  readonly decisionDuration: HotHistogram<'transport' | 'cached'>
  readonly cacheHits: HotCounter
  readonly cacheMisses: HotCounter
  readonly cacheEvictions: HotCounter
  readonly cacheEntries: Gauge
  /** Size of the decision cache, read when /metrics is scraped (the cache installs it). */
  cacheSize: () => number = () => 0
  readonly identityRejections: Counter<'code'>
  readonly identityCacheHits: HotCounter
  readonly identityCacheMisses: HotCounter
  readonly identityCacheEntries: Gauge
  readonly identityCacheBytes: Gauge
  /** Entries and estimated bytes of the verified-credential cache, read when /metrics is scraped (the verifier installs it). */
  identityCacheSize: () => { entries: number, bytes: number } = () => ({ entries: 0, bytes: 0 })
  readonly bundleActivations: Counter<'bundle'>
  readonly bundleFailures: Counter<'bundle' | 'code'>
  /** Bundle-server requests by bundle and outcome: downloaded (200, activated), not_modified (304), rejected (downloaded, refused by verification or activation), failed (network, TLS, status, size). */
  readonly bundleDownloads: Counter<'bundle' | 'outcome'>
  /** Unix time of the last successful bundle-server request (200 or 304), per bundle. */
  readonly bundleLastSuccess: Gauge<'bundle'>
  readonly bundleDownloadDuration: Histogram<'bundle' | 'outcome'>
  readonly requestErrors: Counter<'code'>
  /** Connections closed below any request (failed TLS handshakes, requests the HTTP parser refused), by listener, kind and Node's code (connections.ts). */
  readonly connectionErrors: Counter<'listener' | 'kind' | 'code'>
  readonly builtinErrors: Counter<'builtin'>
  readonly reservedInputKeys: Counter<'key'>
  /** Envoy ext_authz answers by transport (envoy-grpc, envoy-http) and outcome (allow, deny, dry_run, refused, error). */
  readonly envoyChecks: Counter<'transport' | 'outcome'>
  /** `source.certificate` in a CheckRequest from a caller that is not trusted: ignored, counted here. */
  readonly envoyPeerCertificatesIgnored: Counter<'transport'>
  /** Audit events handed to the sinks, by outcome and transport (src/audit/trail.ts). */
  readonly auditEvents: HotCounter<'outcome' | 'transport'>
  /** Audit events not written, by reason (drop_policy: the bundle's drop policy said so). */
  readonly auditDropped: Counter<'reason'>
  /** Mask and drop policy failures (the record was erased whole) and mask rules skipped, by reason. */
  readonly auditMaskErrors: Counter<'reason'>
  /** Events a sink could not take (the decision failed closed with PORTCULLIS_AUDIT_UNAVAILABLE), by sink. */
  readonly auditWriteFailures: Counter<'sink'>

  /** SPIFFE Workload API streams (identity/workload-api/): good messages, failures by code, connection state, the serving SVID's expiry. */
  readonly workloadApiUpdates: Counter<'stream'>
  readonly workloadApiErrors: Counter<'stream' | 'code'>
  readonly workloadApiConnected: Gauge<'stream'>
  readonly workloadApiSvidExpiry: Gauge
  // --- the durable audit log (src/audit/log/), labelled by stream ---
  readonly auditEventsWritten: Counter<'stream'>
  readonly auditBytesWritten: Counter<'stream'>
  /** fdatasync of a segment (one per group in sync mode). */
  readonly auditFsyncDuration: Histogram<'stream'>
  /** Records per group write: how many appends shared one write (and, in sync mode, one fdatasync). */
  readonly auditGroupSize: Histogram<'stream'>
  readonly auditPendingBytes: Gauge<'stream'>
  /** Appends refused (onFull 'deny') by reason: full (memory bound), disk (write failing), closed, invalid. */
  readonly auditRejected: Counter<'stream' | 'reason'>
  /** Events dropped (onFull 'shed') by reason; each run of them is recorded by a gap record. */
  readonly auditShed: Counter<'stream' | 'reason'>
  /** Failed writes, fdatasyncs and checkpoints by errno code (ENOSPC, EIO, ...). */
  readonly auditWriteErrors: Counter<'stream' | 'code'>
  /** Answered events a stop could not write within the grace period (kept for a gap record at the next open). */
  readonly auditLost: Counter<'stream' | 'reason'>
  readonly auditCheckpoints: Counter<'stream'>
  /** Torn records truncated when a stream was opened after a crash. */
  readonly auditRecoveryTruncations: Counter<'stream'>

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry]
    this.httpDuration = new HotHistogram('portcullis_http_request_duration_seconds', 'HTTP request duration by route and outcome',
      ['route', 'method', 'outcome'], [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers)
    this.decisions = new HotCounter('portcullis_decisions_total', 'Decisions by outcome (allow, deny, undefined, error, value)', ['outcome', 'transport', 'cached'], registers)
    this.decisionDuration = new HotHistogram('portcullis_decision_duration_seconds', 'Decision pipeline duration (identity, cache, evaluation)',
      ['transport', 'cached'], [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05], registers)
    this.cacheHits = new HotCounter('portcullis_decision_cache_hits_total', 'Decision cache hits', [], registers)
    this.cacheMisses = new HotCounter('portcullis_decision_cache_misses_total', 'Decision cache misses', [], registers)
    this.cacheEvictions = new HotCounter('portcullis_decision_cache_evictions_total', 'Decision cache evictions (size or TTL)', [], registers)
    // read when scraped, not written on every cache change
    const sizeOf = (): number => this.cacheSize()
    this.cacheEntries = new Gauge({ name: 'portcullis_decision_cache_entries', help: 'Decisions currently cached', registers, collect () { this.set(sizeOf()) } })
    this.identityCacheHits = new HotCounter('portcullis_identity_cache_hits_total', 'Verified-credential cache hits (hit ratio: hits / (hits + misses))', [], registers)
    this.identityCacheMisses = new HotCounter('portcullis_identity_cache_misses_total', 'Verified-credential cache misses: credentials verified cold', [], registers)
    const identitySize = (): { entries: number, bytes: number } => this.identityCacheSize()
    this.identityCacheEntries = new Gauge({ name: 'portcullis_identity_cache_entries', help: 'Verified credentials currently cached', registers, collect () { this.set(identitySize().entries) } })
    this.identityCacheBytes = new Gauge({ name: 'portcullis_identity_cache_bytes', help: 'Estimated memory of the cached identity documents (bounded by identity.cache.max_bytes)', registers, collect () { this.set(identitySize().bytes) } })
    this.identityRejections = new Counter({ name: 'portcullis_identity_rejections_total', help: 'Rejected credentials by code', labelNames: ['code'], registers })
    this.bundleActivations = new Counter({ name: 'portcullis_bundle_activations_total', help: 'Bundle activations', labelNames: ['bundle'], registers })
    this.bundleFailures = new Counter({ name: 'portcullis_bundle_activation_failures_total', help: 'Bundle activation failures by code', labelNames: ['bundle', 'code'], registers })
    this.bundleDownloads = new Counter({ name: 'portcullis_bundle_downloads_total', help: 'Bundle-server requests by outcome (downloaded, not_modified, rejected, failed)', labelNames: ['bundle', 'outcome'], registers })
    this.bundleLastSuccess = new Gauge({ name: 'portcullis_bundle_last_success_timestamp_seconds', help: 'Unix time of the last successful bundle-server request (200 or 304)', labelNames: ['bundle'], registers })
    this.bundleDownloadDuration = new Histogram({ name: 'portcullis_bundle_download_duration_seconds', help: 'Bundle-server request duration, response body included (long polls included)', labelNames: ['bundle', 'outcome'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers })
    this.requestErrors = new Counter({ name: 'portcullis_request_errors_total', help: 'Requests refused or failed, by error code', labelNames: ['code'], registers })
    this.connectionErrors = new Counter({ name: 'portcullis_connection_errors_total', help: 'Connections closed below any request: failed TLS handshakes (tls_handshake) and requests the HTTP parser refused (http_request), by listener and Node error code', labelNames: ['listener', 'kind', 'code'], registers })
    this.builtinErrors = new Counter({ name: 'portcullis_builtin_errors_total', help: 'Builtin errors a non-strict evaluation turned into undefined expressions, by builtin', labelNames: ['builtin'], registers })
    this.reservedInputKeys = new Counter({ name: 'portcullis_input_reserved_keys_removed_total', help: 'Caller-supplied input.identity / input.identity_error removed before evaluation', labelNames: ['key'], registers })
    this.envoyChecks = new Counter({ name: 'portcullis_envoy_checks_total', help: 'Envoy ext_authz checks by transport and answer (allow, deny, dry_run, refused, error)', labelNames: ['transport', 'outcome'], registers })
    this.envoyPeerCertificatesIgnored = new Counter({ name: 'portcullis_envoy_peer_certificates_ignored_total', help: 'ext_authz source.certificate values ignored because the caller is not a trusted ext_authz caller', labelNames: ['transport'], registers })
    this.auditEvents = new HotCounter('portcullis_audit_events_total', 'Audit events written, by outcome (allow, deny, undefined, error, value) and transport', ['outcome', 'transport'], registers)
    this.auditDropped = new Counter({ name: 'portcullis_audit_events_dropped_total', help: 'Audit events not written, by reason (drop_policy)', labelNames: ['reason'], registers })
    this.auditMaskErrors = new Counter({ name: 'portcullis_audit_mask_errors_total', help: 'Audit mask/drop policy failures that erased a whole record (policy_error) and mask rules skipped (rule_skipped)', labelNames: ['reason'], registers })
    this.auditWriteFailures = new Counter({ name: 'portcullis_audit_write_failures_total', help: 'Audit events a sink could not take (the decision failed closed), by sink', labelNames: ['sink'], registers })
    this.workloadApiUpdates = new Counter({ name: 'portcullis_workload_api_updates_total', help: 'Good Workload API messages by stream (x509_svid, x509_bundles, jwt_bundles)', labelNames: ['stream'], registers })
    this.workloadApiErrors = new Counter({ name: 'portcullis_workload_api_errors_total', help: 'Workload API failures by stream and code (a gRPC status name, or PORTCULLIS_IDENTITY_BUNDLE_INVALID for a refused message)', labelNames: ['stream', 'code'], registers })
    this.workloadApiConnected = new Gauge({ name: 'portcullis_workload_api_connected', help: 'Whether the Workload API stream is connected and delivering (1) or not (0)', labelNames: ['stream'], registers })
    this.workloadApiSvidExpiry = new Gauge({ name: 'portcullis_workload_api_svid_expiry_timestamp_seconds', help: "The serving X.509-SVID's notAfter, Unix seconds", registers })
    this.auditEventsWritten = new Counter({ name: 'portcullis_audit_events_written_total', help: 'Audit records written (events and gap records)', labelNames: ['stream'], registers })
    this.auditBytesWritten = new Counter({ name: 'portcullis_audit_bytes_written_total', help: 'Audit record bytes written to segments', labelNames: ['stream'], registers })
    this.auditFsyncDuration = new Histogram({ name: 'portcullis_audit_fsync_duration_seconds', help: 'fdatasync duration of audit segments', labelNames: ['stream'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers })
    this.auditGroupSize = new Histogram({ name: 'portcullis_audit_group_size', help: 'Audit records per group write (group commit)', labelNames: ['stream'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096], registers })
    this.auditPendingBytes = new Gauge({ name: 'portcullis_audit_pending_bytes', help: 'Audit event bytes accepted but not yet written (bounded by max_pending_bytes)', labelNames: ['stream'], registers })
    this.auditRejected = new Counter({ name: 'portcullis_audit_rejected_total', help: 'Audit appends refused (fail closed) by reason', labelNames: ['stream', 'reason'], registers })
    this.auditShed = new Counter({ name: 'portcullis_audit_shed_total', help: 'Audit events dropped by the shed policy by reason (recorded by gap records)', labelNames: ['stream', 'reason'], registers })
    this.auditWriteErrors = new Counter({ name: 'portcullis_audit_write_errors_total', help: 'Failed audit writes, syncs and checkpoints by errno code', labelNames: ['stream', 'code'], registers })
    this.auditLost = new Counter({ name: 'portcullis_audit_lost_total', help: 'Audit events whose decisions were answered but that a stop could not write within the grace period, by reason (unwritten_at_stop, shed_unrecorded_at_stop); their gap record is written at the next open', labelNames: ['stream', 'reason'], registers })
    this.auditCheckpoints = new Counter({ name: 'portcullis_audit_checkpoints_total', help: 'Signed audit checkpoints written', labelNames: ['stream'], registers })
    this.auditRecoveryTruncations = new Counter({ name: 'portcullis_audit_recovery_truncations_total', help: 'Torn audit records truncated on open after a crash', labelNames: ['stream'], registers })
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
