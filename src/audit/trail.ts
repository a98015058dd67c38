/**
 * The audit trail: the decision pipeline's audit hook (decision/decide.ts step 7). For every
 * decision record it builds one event (event.ts), erases and masks it or lets the bundle's drop
 * policy drop it (mask.ts), and hands the JSON text to its sinks: the durable log
 * (src/audit/log/, through the AuditSink contract) and, with `decision_logs.console`, a log
 * line per event as OPA's console sink writes it.
 *
 * What the pipeline waits for is what the sinks return: nothing (batched, async, console), or
 * a promise that settles when the event is as durable as the mode promises (sync). A sink that
 * rejects makes the decision fail closed (PORTCULLIS_AUDIT_UNAVAILABLE, decide.ts); a dropped
 * event is counted; nothing unmasked is ever handed to a sink.
 */
import { shippingTarget } from '../config/decision-logs.js'
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import type { ResolvedConfig } from '../config/load.js'
import type { AuditConfig } from '../config/schema.js'
import type { AuditHook, DecisionRecord } from '../decision/types.js'
import { PortcullisError, toPortcullisError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { CounterChild, Metrics } from '../metrics/index.js'
import type { PolicySnapshot } from '../policy/snapshot.js'
import { VERSION } from '../version.js'
import { eventJson, eventOf, type AuditEvent } from './event.js'
import { auditStream } from './stream.js'
import type { AuditSink } from './log/contract.js'
import { AuditLog, type AuditLogOptions } from './log/writer.js'
import { answers, EventMasker, erasePlan, runLogPolicies, type ErasePlan } from './mask.js'

export { auditStream } from './stream.js'

export type { AuditSink } from './log/contract.js'

/** A named sink (the name labels its failure metric). */
export interface NamedSink {
  name: string
  sink: AuditSink
}

export interface AuditTrailOptions {
  sinks: NamedSink[]
  /** Labels added to every event (id, version and hostname are always set and win). */
  labels?: Record<string, string>
  /** Pointers erased from every event (default: none here; the configuration's default list is config/defaults.ts). */
  erase?: readonly string[]
  /** The bundle's mask and drop policies (OPA's `decision_logs.mask_decision` / `drop_decision`), with or without the leading slash. */
  maskDecision?: string
  dropDecision?: string
  metrics?: Metrics
  logger?: Logger
  /** This process's instance id (labels.id); a fresh UUID by default. */
  instanceId?: string
}

/** What installs the hook: DecisionService.setAuditHook. */
export interface AuditHookTarget {
  setAuditHook: (hook: AuditHook | undefined) => void
}

const trimSlash = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '')

export class AuditTrail {
  readonly #sinks: NamedSink[]
  readonly #labelsJson: string
  readonly #erase: ErasePlan
  readonly #mask: string
  readonly #drop: string
  readonly #metrics: Metrics | undefined
  readonly #log: Logger
  readonly #policies = new WeakMap<PolicySnapshot, { mask?: string, drop?: string }>()
  readonly #eventSeries = new Map<string, CounterChild>()
  #closed = false

  /** The hook decide() calls (bound). */
  readonly hook: AuditHook = (record) => this.record(record)

  constructor (opts: AuditTrailOptions) {
    this.#sinks = opts.sinks
    const labels: Record<string, string> = { ...(opts.labels ?? {}) }
    labels.id = opts.instanceId ?? randomUUID()
    labels.version = VERSION
    labels.hostname = hostname()
    this.#labelsJson = JSON.stringify(labels)
    this.#erase = erasePlan(opts.erase ?? [])
    this.#mask = trimSlash(opts.maskDecision ?? '/system/log/mask')
    this.#drop = trimSlash(opts.dropDecision ?? '/system/log/drop')
    this.#metrics = opts.metrics
    this.#log = opts.logger ?? silentLogger
  }

  /** The labels every event carries, as JSON text. */
  get labelsJson (): string {
    return this.#labelsJson
  }

  /** Installs the hook on the decision pipeline. */
  install (target: AuditHookTarget): this {
    target.setAuditHook(this.hook)
    return this
  }

  /** Which of the log policies the snapshot defines (looked up once per snapshot). */
  #policiesOf (snapshot: PolicySnapshot): { mask?: string, drop?: string } {
    let p = this.#policies.get(snapshot)
    if (p === undefined) {
      p = {}
      if (answers(snapshot, this.#mask)) p.mask = this.#mask
      if (answers(snapshot, this.#drop)) p.drop = this.#drop
      this.#policies.set(snapshot, p)
    }
    return p
  }

  /**
   * The event of one record as JSON text, masked; undefined when the drop policy dropped it
   * (counted). Exposed for tests and tools; record() is what the pipeline calls.
   */
  build (record: DecisionRecord): string | undefined {
    return this.#build(record)?.text
  }

  #build (record: DecisionRecord): { text: string, outcome: string } | undefined {
    const ev = eventOf(record)
    const text = this.#masked(record, ev)
    return text === undefined ? undefined : { text, outcome: ev.outcome }
  }

  #masked (record: DecisionRecord, ev: AuditEvent): string | undefined {
    const masker = new EventMasker(ev)
    // 1. configured erasure, before any policy sees the event
    masker.applySet(this.#erase.rules)
    for (const name of this.#erase.headers) masker.eraseHeaderMapEntries(name)
    // 2 + 3. the bundle's drop and mask policies, on the snapshot the decision ran on
    const policies = record.snapshot !== undefined ? this.#policiesOf(record.snapshot) : {}
    if (record.snapshot === undefined || (policies.mask === undefined && policies.drop === undefined)) return eventJson(ev, this.#labelsJson)
    const text = eventJson(ev, this.#labelsJson)
    const verdict = runLogPolicies(record.snapshot, text, policies.drop, policies.mask)
    switch (verdict.kind) {
      case 'drop':
        this.#metrics?.auditDropped.inc({ reason: 'drop_policy' })
        return undefined
      case 'failed':
        masker.eraseAll(verdict.error)
        this.#metrics?.auditMaskErrors.inc({ reason: 'policy_error' })
        this.#log.error({ decision_id: record.decision_id, code: verdict.error.code, component: 'audit', err: verdict.error }, `the audit mask/drop policy failed: the event's input and result are erased: ${verdict.error.message}`)
        return eventJson(ev, this.#labelsJson)
      case 'keep': {
        if (verdict.rules.length === 0) return text
        masker.applySet(verdict.rules, (rule, err) => {
          // OPA's OnRuleError: the rule is skipped with a logged error
          this.#metrics?.auditMaskErrors.inc({ reason: 'rule_skipped' })
          this.#log.warn({ decision_id: record.decision_id, code: 'PORTCULLIS_POLICY_EVAL_FAILED', component: 'audit', rule: rule.path }, `mask rule skipped: ${(err as Error).message}`)
        })
        return eventJson(ev, this.#labelsJson)
      }
    }
  }

  /** The audit hook: builds the event and writes it to every sink; the promise (sync sinks) settles when it is durable. */
  record (record: DecisionRecord): Promise<void> | undefined {
    let built: { text: string, outcome: string } | undefined
    try {
      if (this.#closed) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'the audit trail is closed')
      built = this.#build(record)
    } catch (err) {
      // an event that cannot be built cannot be recorded: the decision fails closed
      const error = toPortcullisError(err, 'PORTCULLIS_AUDIT_UNAVAILABLE')
      this.#metrics?.auditWriteFailures.inc({ sink: 'trail' })
      return Promise.reject(error)
    }
    if (built === undefined) return undefined
    const text = built.text
    this.#countEvent(record.request.transport ?? 'http', built.outcome)
    let pending: Promise<void> | undefined
    for (const { name, sink } of this.#sinks) {
      let p: Promise<void> | undefined
      try {
        p = sink.append(text)
      } catch (err) {
        p = Promise.reject(err)
      }
      if (p === undefined) continue
      const counted = p.catch((err: unknown) => {
        this.#metrics?.auditWriteFailures.inc({ sink: name })
        throw err
      })
      pending = pending === undefined ? counted : Promise.all([pending, counted]).then(() => undefined)
    }
    return pending
  }

  #countEvent (transport: string, outcome: string): void {
    if (this.#metrics === undefined) return
    const key = `${transport}|${outcome}`
    let c = this.#eventSeries.get(key)
    if (c === undefined) {
      c = this.#metrics.auditEvents.child({ outcome, transport })
      this.#eventSeries.set(key, c)
    }
    c.inc()
  }

  /**
   * Flushes and closes every sink (the durable log writes its final checkpoint). The hook stays
   * installed: a decision still in flight after the shutdown grace period reaches record(),
   * which rejects with PORTCULLIS_AUDIT_UNAVAILABLE, so it is denied — never answered unrecorded.
   * `graceMs`: how long the durable log may retry writes a full disk refuses (the grace left).
   */
  async close (graceMs?: number): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const results = await Promise.allSettled(this.#sinks.map(async ({ sink }) => { await sink.close(graceMs) }))
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw toPortcullisError(failed.reason, 'PORTCULLIS_AUDIT_UNAVAILABLE')
  }
}

/**
 * OPA's console decision logger: each event as one structured log line, message "Decision Log",
 * the event's fields at the top level of the line. For development and debugging: the event is
 * parsed back from its text for the logger (integers beyond 2^53 lose digits here; the durable
 * log keeps the exact text).
 */
export class ConsoleSink implements AuditSink {
  constructor (readonly logger: Logger) {}

  append (eventJson: string): undefined {
    this.logger.info(JSON.parse(eventJson) as object, 'Decision Log')
    return undefined
  }

  async close (): Promise<void> {}
}

/**
 * The durable log's sink for one stream (`main`, or `w<slot>` for a worker process): the one
 * place the durable log is constructed from the `audit` configuration (every key mapped here;
 * docs/configuration.md).
 */
export async function openDurableSink (config: Readonly<AuditConfig>, stream: string, deps: { logger?: Logger, metrics?: Metrics, /** decision-log shipping is configured */ shipping?: boolean, /** `portcullis audit accept-tail` */ acceptUnsealedTail?: AuditLogOptions['acceptUnsealedTail'] } = {}): Promise<AuditLog> {
  const retention: AuditLogOptions['retention'] = {}
  if (config.retention.max_age_seconds !== undefined) retention.maxAgeMs = config.retention.max_age_seconds * 1000
  if (config.retention.max_bytes !== undefined) retention.maxBytes = config.retention.max_bytes
  if (deps.shipping === true && config.retention.protect_unshipped !== false) retention.keepUnshipped = true
  const checkpoint: AuditLogOptions['checkpoint'] = { everyEvents: config.checkpoint.every_events, everyMs: config.checkpoint.every_seconds * 1000 }
  if (config.checkpoint.key_file !== undefined) checkpoint.keyFile = config.checkpoint.key_file
  if (config.checkpoint.origin !== undefined) checkpoint.origin = config.checkpoint.origin
  if (config.checkpoint.previous_public_key_files !== undefined) checkpoint.previousPublicKeyFiles = [...config.checkpoint.previous_public_key_files]
  return await AuditLog.open({
    dir: config.dir,
    stream,
    durability: config.durability,
    batchIntervalMs: config.batch_interval_ms,
    syncTimeoutMs: config.sync_timeout_ms,
    segmentMaxBytes: config.segment.max_bytes,
    segmentMaxAgeMs: config.segment.max_age_seconds * 1000,
    retention,
    checkpoint,
    maxPendingBytes: config.max_pending_bytes,
    onFull: config.on_full,
    ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
    ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}),
    ...(deps.acceptUnsealedTail !== undefined ? { acceptUnsealedTail: deps.acceptUnsealedTail } : {}),
  })
}

/**
 * The trail a configuration asks for: the durable log (`audit.enabled`) and/or the console
 * sink (`decision_logs.console`); undefined when neither is on (no hook: decisions cost nothing
 * extra).
 */
export async function openAuditTrail (config: Readonly<ResolvedConfig>, deps: { stream?: string, metrics?: Metrics, logger?: Logger, consoleLogger?: Logger } = {}): Promise<AuditTrail | undefined> {
  const sinks: NamedSink[] = []
  if (config.audit.enabled) {
    const stream = deps.stream ?? auditStream()
    sinks.push({ name: 'log', sink: await openDurableSink(config.audit, stream, { shipping: shippingTarget(config) !== undefined, ...(deps.logger !== undefined ? { logger: deps.logger } : {}), ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}) }) })
  }
  if (config.decision_logs.console) sinks.push({ name: 'console', sink: new ConsoleSink(deps.consoleLogger ?? deps.logger ?? silentLogger) })
  if (sinks.length === 0) return undefined
  try {
    return new AuditTrail({
      sinks,
      labels: { ...config.audit.labels },
      erase: config.audit.erase,
      maskDecision: config.decision_logs.mask_decision,
      dropDecision: config.decision_logs.drop_decision,
      ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}),
      ...(deps.logger !== undefined ? { logger: deps.logger } : {}),
    })
  } catch (err) {
    await Promise.allSettled(sinks.map(async ({ sink }) => { await sink.close() }))
    throw err
  }
}
