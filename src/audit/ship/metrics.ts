/**
 * Shipping metrics, registered in the process's Prometheus registry. Gauges that describe the
 * directory (lag, last success) are set only by the process holding the shipping lock and are
 * aggregated across workers with `max`, so a worker group's /metrics shows the shipper's values.
 */
import { Counter, Gauge, type Registry } from 'prom-client'

export class ShipMetrics {
  readonly shipped: Counter
  readonly attempts: Counter<'outcome' | 'status'>
  readonly bytes: Counter
  readonly oversized: Counter
  readonly undeliverable: Counter
  readonly lostToRetention: Counter
  readonly gapsSkipped: Counter
  readonly integrityFailures: Counter<'problem'>
  readonly lag: Gauge
  readonly lastSuccess: Gauge

  constructor (registry: Registry) {
    const registers = [registry]
    this.shipped = new Counter({ name: 'portcullis_decision_logs_shipped_events_total', help: 'Decision-log events acknowledged (2xx) by the collector (at least once: a retried chunk counts again)', registers })
    this.attempts = new Counter({ name: 'portcullis_decision_logs_upload_attempts_total', help: 'Decision-log uploads by outcome (ok, http_error, network_error) and HTTP status (none without an answer)', labelNames: ['outcome', 'status'], registers })
    this.bytes = new Counter({ name: 'portcullis_decision_logs_uploaded_bytes_total', help: 'Compressed bytes of acknowledged decision-log uploads', registers })
    this.oversized = new Counter({ name: 'portcullis_decision_logs_oversized_events_total', help: 'Events larger than upload_size_limit_bytes even alone, sent in a chunk of their own (OPA drops them)', registers })
    this.undeliverable = new Counter({ name: 'portcullis_decision_logs_undeliverable_events_total', help: 'Oversized events the collector refused with 413: skipped by the shipper, still in the audit log', registers })
    this.lostToRetention = new Counter({ name: 'portcullis_decision_logs_lost_to_retention_total', help: 'Events removed by audit retention before they were shipped', registers })
    this.gapsSkipped = new Counter({ name: 'portcullis_decision_logs_gap_records_skipped_total', help: 'Gap records (events the audit log shed) not shipped as decision events; they stay in the audit log', registers })
    this.integrityFailures = new Counter({ name: 'portcullis_decision_logs_integrity_failures_total', help: 'Shipping rounds stopped at a record that is not the log\'s: EVENT_MODIFIED (leaf hash differs from the stored leaf) or EVENT_DELETED (a hole retention.log does not record); nothing from it on is sent', labelNames: ['problem'], registers })
    this.lag = new Gauge({ name: 'portcullis_decision_logs_lag_events', help: 'Events in the audit log not yet acknowledged by the collector', registers, aggregator: 'max' })
    this.lastSuccess = new Gauge({ name: 'portcullis_decision_logs_last_success_timestamp_seconds', help: 'Unix time of the last acknowledged upload', registers, aggregator: 'max' })
  }
}
