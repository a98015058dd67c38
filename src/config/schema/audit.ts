/**
 * Configuration schema: the durable audit log (`audit`) and OPA's `decision_logs` section
 * (console logging, mask and drop policies, shipping to a collector).
 */
import { Type, type Static } from '@sinclair/typebox'
import { Bool, DAY_S, NonEmpty, Range, strict } from './common.js'

/**
 * Decision-log shipping (src/audit/ship/) with OPA's `decision_logs` keys, so an OPA
 * configuration's section works unchanged (docs/audit.md, "Shipping"). Events are read from the
 * durable audit log, so shipping needs `audit.enabled`. Keys OPA uses for its in-memory buffer
 * are accepted and have no effect: the durable log is the buffer and nothing is dropped.
 */
export const DecisionLogsReportingSchema = Type.Object({
  min_delay_seconds: Range('least time between two periodic uploads (OPA default 300); set together with max_delay_seconds', 0, 86_400),
  max_delay_seconds: Range('most time between two periodic uploads (OPA default 600), and the cap of the retry backoff', 1, 86_400),
  upload_size_limit_bytes: Range('largest gzip-compressed upload body (OPA default 32768); a single event larger than this is sent alone and counted', 1, 2 ** 31),
  trigger: Type.Union([Type.Literal('periodic'), Type.Literal('manual')], { description: 'periodic: upload every uniformly random [min, max] delay; manual: only when asked (Shipper.trigger())' }),
  buffer_size_limit_events: Type.Optional(Range('upload early, before the period ends, once this many events wait (checked every second)', 1, 2 ** 31)),
  buffer_type: Type.Optional(Type.Union([Type.Literal('size'), Type.Literal('event')], { description: "OPA's in-memory buffer type: accepted, no effect (the durable log is the buffer)" })),
  buffer_size_limit_bytes: Type.Optional(Range("OPA's in-memory buffer bound: accepted, no effect (nothing is dropped; the log's retention bounds the disk)", 1, 2 ** 53 - 1)),
  max_decisions_per_second: Type.Optional(Type.Number({ description: "OPA's rate limit that drops events: accepted, no effect (Portcullis never drops an event it logged)", exclusiveMinimum: 0 })),
}, strict)

export const DecisionLogsShippingSchema = {
  service: Type.Optional(NonEmpty('name of the service in `services` events are uploaded to (OPA: default the first service unless console is on)')),
  resource: Type.Optional(NonEmpty('path under the service URL events are POSTed to (default /logs)')),
  partition_name: Type.Optional(Type.String({ description: 'uploads go to /logs/<partition_name> (overrides resource, as in OPA)', minLength: 1, pattern: '^[^/?#]+$' })),
  reporting: DecisionLogsReportingSchema,
}

const Durability = Type.Union([Type.Literal('sync'), Type.Literal('batched'), Type.Literal('async')], {
  description: 'sync: a decision is answered only after its event is on disk (fdatasync, group commit); batched: synced at most every batch_interval_ms (the loss window on a crash); async: written, synced by the OS',
})

export const AuditSchema = Type.Object({
  enabled: Bool('record every decision in the durable audit log (docs/audit.md); --audit-dir turns it on'),
  dir: NonEmpty('directory of the audit log (segments, tree, checkpoints); one stream per worker process'),
  durability: Durability,
  batch_interval_ms: Range('batched: longest time between two syncs', 1, 60_000),
  sync_timeout_ms: Range('sync: a decision waits at most this long for its event to be on disk, then is denied (503); set it below the ext_authz timeout of Envoy. The event may still be written later', 1, 600_000),
  segment: Type.Object({
    max_bytes: Range('a segment is closed and a new one begun at this size', 4096, 2 ** 40),
    max_age_seconds: Range('... or at this age', 1, 365 * DAY_S),
  }, strict),
  retention: Type.Object({
    max_age_seconds: Type.Optional(Range('closed segments older than this are removed (reported by verify as retention, not tampering)', 1, 100 * 365 * DAY_S)),
    max_bytes: Type.Optional(Range('oldest closed segments are removed while the log is larger than this', 4096, 2 ** 50)),
    protect_unshipped: Type.Optional(Bool('with decision-log shipping on, retention never removes a segment holding events the collector has not acknowledged (default true)')),
  }, strict),
  checkpoint: Type.Object({
    every_events: Range('a signed checkpoint every this many events', 1, 1e9),
    every_seconds: Range('... and at least this often while events arrive', 1, DAY_S),
    key_file: Type.Optional(NonEmpty('Ed25519 private key (PKCS#8 PEM) that signs checkpoints; without it one is generated in the audit directory (its public half beside it: pin that copy elsewhere)')),
    origin: Type.Optional(NonEmpty('checkpoint origin line (C2SP tlog-checkpoint); default derived from the host name')),
    previous_public_key_files: Type.Optional(Type.Array(NonEmpty('a previous checkpoint public key file'), { description: 'after a key rotation: the Ed25519 public keys (PEM) that signed the log\'s earlier checkpoints; a stream whose last checkpoint one of them signed is accepted and sealed under key_file at once (verify then needs every key)' })),
  }, strict),
  max_pending_bytes: Range('bound on events accepted but not yet written; beyond it on_full applies', 65_536, 2 ** 40),
  on_full: Type.Union([Type.Literal('deny'), Type.Literal('shed')], { description: 'the log cannot take an event (disk full or slow past max_pending_bytes): deny fails the decision closed (503, counted); shed answers and counts the lost event' }),
  erase: Type.Array(Type.String({ pattern: '^/(input|result|nd_builtin_cache|reasons)(/.*)?$' }), { description: 'JSON pointers (OPA mask syntax, plus /reasons for a deny\'s reasons) erased from every event before it is written, listed in its erased field; replaces the default list (credential headers and peer certificates of Envoy input)' }),
  labels: Type.Record(Type.String(), Type.String(), { description: 'labels added to every event (id, version and hostname are always set)' }),
}, strict)

/**
 * OPA's `decision_logs` section: the keys that apply to the local trail (console, mask, drop)
 * and the shipping keys (src/audit/ship/, DecisionLogsShippingSchema above).
 */
export const DecisionLogsSchema = Type.Object({
  console: Bool('also log every event as a structured log line ("Decision Log", as OPA does)'),
  mask_decision: NonEmpty('the bundle policy that masks events (OPA default /system/log/mask); evaluated only when a bundle defines it'),
  drop_decision: NonEmpty('the bundle policy that drops events (OPA default /system/log/drop); evaluated only when a bundle defines it'),
  ...DecisionLogsShippingSchema,
}, strict)

export type AuditConfig = Static<typeof AuditSchema>
export type DecisionLogsConfig = Static<typeof DecisionLogsSchema>
export type DecisionLogsReportingConfig = Static<typeof DecisionLogsReportingSchema>
