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
  /**
   * Flushes, writes the final checkpoint, releases the stream; writes the disk refuses are
   * retried for up to `graceMs` (what is left of the shutdown grace period).
   */
  close: (graceMs?: number) => Promise<void>
}

/** Most records one group write carries (besides its gap records), whatever checkpoint.every_events is. */
export const MAX_GROUP_RECORDS = 4096

/**
 * Most events one group write carries with checkpoints every `everyEvents` records: at most
 * that many too, so one group cannot carry a crash's unsealed tail much past a checkpoint.
 */
export function maxGroupRecords (everyEvents: number): number {
  return Math.max(1, Math.min(MAX_GROUP_RECORDS, everyEvents))
}

/**
 * The most records a crash can legitimately leave after a stream's last checkpoint (or with no
 * checkpoint at all) when checkpoints are written every `everyEvents` records: the writer
 * checkpoints after the group that brings the unsealed count to `everyEvents`, so before a
 * group at most `everyEvents - 1` are unsealed, and the group adds its events (maxGroupRecords)
 * and at most two gap records. The `every_seconds` timer only seals earlier; it adds none.
 * One definition for the writer, which refuses to reseal a longer tail when it opens, and for
 * `audit verify --max-unsealed`'s default (docs/audit.md "Crash recovery").
 */
export function maxUnsealedTail (everyEvents: number): number {
  return everyEvents + maxGroupRecords(everyEvents) + 1
}
