/**
 * The contract between the audit event producer (src/audit/trail.ts: decisions → events) and
 * the durable log (src/audit/log/: segments, Merkle tree, checkpoints). The log stores each
 * event as one record whose exact bytes are a Merkle leaf; see docs/audit.md.
 */

export type Durability = 'sync' | 'batched' | 'async'

/** What the decision pipeline writes to: the durable log, or a sink beside it (console). */
export interface AuditSink {
  /**
   * Takes one event: the JSON text of an object (starting with '{', no `seq` key — the log
   * assigns the sequence number). Returns undefined when there is nothing to wait for
   * (`async`, `batched`, or an event shed by configuration, counted), or a promise that
   * resolves when the event is as durable as the mode promises (`sync`: after fdatasync) and
   * rejects with PORTCULLIS_AUDIT_UNAVAILABLE when the log cannot take it and the deployment
   * fails closed. Never throws synchronously.
   */
  append: (eventJson: string) => Promise<void> | undefined
  /** Flushes, writes the final checkpoint, releases the stream. */
  close: () => Promise<void>
}
