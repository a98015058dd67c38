/**
 * The durable, tamper-evident audit log writer: one writer process per stream appends events
 * as NDJSON records to size/age-rotated segments, stores each record's Merkle leaf and the
 * interior hashes it completes (tlog order) and writes signed checkpoints. See docs/audit.md.
 *
 * Why it is shaped this way:
 * - Group commit: one write (+ fdatasync in `sync` mode) is in flight at a time and every
 *   append arriving meanwhile joins the next group, so concurrent decisions share one sync.
 * - Seqs are assigned when a group is written, not when an event is accepted, so a failed
 *   write never leaves a hole: the group is truncated away and retried (or, in `sync` mode,
 *   its decisions are denied), and the next group gets the same seqs.
 * - Memory is bounded by `maxPendingBytes`; when the bound is hit or the disk fails, the
 *   configured `onFull` denies (fail closed) or sheds with a counter and a gap record, never
 *   silently and never by growing without bound.
 * - Opening reads only the tail: the last record of the active segment, the last checkpoint,
 *   and the records written since that checkpoint (whose stored hashes are recomputed).
 * - Opening never reseals what it cannot vouch for: the last checkpoint must carry this
 *   writer's own signature, a recomputed hash must equal the stored one wherever the hashes
 *   file has it, and the unsealed tail must be no longer than a crash can leave
 *   (maxUnsealedTail); otherwise the open is refused and nothing is rewritten. An operator
 *   accepts a longer tail only explicitly, and that acceptance is itself a record.
 * - One writer per stream across processes and containers: a proper-lockfile lock (a
 *   directory whose mtime the holder refreshes) — not a pid, which every container's first
 *   process shares — plus a check before each group that the segment is still the size this
 *   writer left it.
 * - What a stop cannot write (a full disk at shutdown) is retried within the grace period,
 *   then counted and kept in `writer-state`, and written as a gap record at the next open.
 */
import { constants as fsConstants } from 'node:fs'
import { mkdir, open, stat, unlink, type FileHandle } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { PortcullisError } from '../../errors.js'
import { silentLogger, type Logger } from '../../log.js'
import type { Metrics } from '../../metrics/index.js'
import { maxGroupRecords, maxUnsealedTail, type AuditSink, type Durability } from './contract.js'
import { formatCheckpoint, loadCheckpointKey, loadPreviousPublicKeys, signCheckpoint, verifyCheckpoint, type Checkpoint } from './checkpoint.js'
import { errnoOf, invalid, unavailable } from './errors.js'
import { fsyncDir, openRw, openSegment, segmentEnds, writeFully } from './files.js'
import { HashesFileReader, listSegments, recordSeq, recordText, recordTime, segmentName, streamPaths, type RetentionEntry, type SegmentRef, type StreamPaths } from './layout.js'
import { recoverLastCheckpoint, recoverTail, rehashTail, type RecoveryContext } from './recovery.js'
import { CompactRange, HASH_SIZE, leafHash, storedHashCount, storedHashIndex, treeRoot } from './tree.js'
import { readCursor } from './ship-cursor.js'
import { DEFAULT_LOCK_STALE_MS, readWriterState, takeWriterLock, writeWriterState } from './writer-state.js'

export type { Durability } from './contract.js'
export type { Checkpoint } from './checkpoint.js'

export interface AuditLogOptions {
  dir: string
  /** This writer's stream (one per process: `main`, `w1`, ...). */
  stream: string
  durability: Durability
  /** `batched`: write and fdatasync at most this often. */
  batchIntervalMs: number
  /**
   * `sync`: an append not durable after this long rejects with PORTCULLIS_AUDIT_UNAVAILABLE
   * (a hung disk denies decisions instead of holding them until the proxy's own timeout); the
   * event stays queued and may still be written later.
   */
  syncTimeoutMs?: number
  segmentMaxBytes: number
  segmentMaxAgeMs: number
  /**
   * `keepUnshipped`: never remove a segment holding records at or past the decision-log
   * shipper's cursor (`<stream>/ship-cursor.json`; no cursor yet: nothing is removed).
   */
  retention: { maxAgeMs?: number, maxBytes?: number, keepUnshipped?: boolean }
  /**
   * `previousPublicKeyFiles`: after a key rotation, the public keys that signed the log's earlier
   * checkpoints. A last checkpoint signed by one of them (not by `keyFile`) is accepted, and the
   * log is sealed under `keyFile` at once by a checkpoint of its current size.
   */
  checkpoint: { everyEvents: number, everyMs: number, keyFile?: string, origin?: string, previousPublicKeyFiles?: string[] }
  /** Bound on accepted-but-unwritten event bytes. */
  maxPendingBytes: number
  /** What happens when the bound is hit or the disk fails: refuse the append, or drop it (counted, gap record). */
  onFull: 'deny' | 'shed'
  logger?: Logger
  metrics?: Metrics
  /** Injectable clock (tests). */
  now?: () => number
  /**
   * The writer lock's staleness (proper-lockfile `stale`, 2000–600000 ms, default 10000): the
   * holder refreshes the lock's mtime every half of it; a lock not refreshed for this long is a
   * dead writer's and is taken over. An open waits up to about 1.5 times this for the lock.
   */
  lockStaleMs?: number
  /**
   * The operator's one-shot acceptance of an unsealed tail longer than a crash can leave
   * (`portcullis audit accept-tail`): exactly this many records after the last checkpoint are
   * sealed, behind a gap record (`cause: "unsealed_tail_accepted"`) that says so. Any other
   * count is refused as without it.
   */
  acceptUnsealedTail?: { records: number, reason?: string }
}

/** Defaults for everything but dir and stream (docs/audit.md). */
export const auditLogDefaults: Omit<AuditLogOptions, 'dir' | 'stream'> = {
  durability: 'sync',
  batchIntervalMs: 50,
  syncTimeoutMs: 2000,
  segmentMaxBytes: 64 * 1024 * 1024,
  segmentMaxAgeMs: 24 * 3600 * 1000,
  retention: {},
  checkpoint: { everyEvents: 1000, everyMs: 10_000 },
  maxPendingBytes: 64 * 1024 * 1024,
  onFull: 'deny',
}

interface Pending {
  text: string
  bytes: number
  /** When it was accepted (this.now() time). */
  at: number
  resolve?: () => void
  reject?: (err: Error) => void
  /** `sync`: when the waiter is rejected by the sync deadline (this.now() time). */
  deadline?: number
}

/** Per-record overhead counted against the bound besides the event's own bytes (seq prefix, newline, hashes). */
const RECORD_OVERHEAD = 32 + 2 * HASH_SIZE
/** Largest group written in one go (and at most MAX_GROUP_RECORDS records, contract.ts). */
const MAX_GROUP_BYTES = 8 * 1024 * 1024
/** How often a stop retries writes the disk refuses, within the grace period. */
const CLOSE_RETRY_MS = 100
const MAX_RETRY_MS = 2000

/** Streams this process holds, so the same stream is never opened twice in one process either. */
const openStreams = new Set<string>()

export class AuditLog implements AuditSink {
  private readonly opts: AuditLogOptions
  private readonly paths: StreamPaths
  private readonly logger: Logger
  private readonly now: () => number
  /** The origin this stream's checkpoints sign; a reopened stream keeps the one it has (recover). */
  private origin: string
  private key!: KeyObject
  private range = new CompactRange()
  private seg!: FileHandle
  private segRef!: SegmentRef
  private segBytes = 0
  private segCreatedAt = 0
  private hashes!: FileHandle
  private hashesBytes = 0
  private ckpt!: FileHandle
  private ckptBytes = 0
  private last: Checkpoint | undefined
  /** The last checkpoint is signed by a previous key (a key rotation): the next checkpoint is written even at the same size. */
  private sealUnderNewKey = false
  /** Records below this seq may be removed by retention: signed in each checkpoint (`retained`). */
  private retainedFrom = 0
  /** Stale bytes past the good end of the segment/hashes/checkpoint files that a failed write left. */
  private dirty = false

  private pending: Pending[] = []
  private pendingBytes = 0
  private shed = { count: 0, first: 0, last: 0 }
  private shedLoggedAt = 0
  /** A write failed and accepted events wait for a retry (batched/async). */
  private failing = false
  private retryMs = 50
  private retryTimer: NodeJS.Timeout | undefined
  private batchTimer: NodeJS.Timeout | undefined
  private checkpointTimer: NodeJS.Timeout | undefined
  private deadlineTimer: NodeJS.Timeout | undefined
  private writeQueued = false
  /** Records written without fdatasync (batched mode's early write): the batch timer syncs them. */
  private unsynced = false
  private chain: Promise<unknown> = Promise.resolve()
  private closing = false
  private closed = false
  private readonly labels: { stream: string }
  /** Most events per group (contract.ts maxGroupRecords): what bounds a crash's unsealed tail. */
  private readonly groupRecords: number
  /** Releases the proper-lockfile writer lock. */
  private releaseLock: (() => Promise<void>) | undefined
  /** Set when this writer may no longer write (lock lost, segment changed under it): fail closed. */
  private broken: { code: string, message: string } | undefined
  private stateFh: FileHandle | undefined
  /** Events an earlier writer could not write at its stop (`writer-state`): a gap record at the next write. */
  private carried: { count: number, first: number, last: number } | undefined
  /** Records written before the next group's events (the accepted-tail record). */
  private notes: string[] = []
  /**
   * `sync` mode opens segments O_DSYNC: a group's write returns once its records are on disk
   * (what write + fdatasync did), in one system call and one threadpool round trip instead of two.
   */
  private readonly dsync: boolean
  private checkpointQueued = false
  private errorLoggedAt = -Infinity
  private closePromise: Promise<void> | undefined
  private errorLoggedCode = ''

  private constructor (opts: AuditLogOptions) {
    // absolute, so the in-process open check cannot be bypassed by another spelling of the path
    this.opts = { ...opts, dir: resolve(opts.dir) }
    this.paths = streamPaths(this.opts.dir, opts.stream)
    this.logger = opts.logger ?? silentLogger
    this.now = opts.now ?? Date.now
    // the origin names this writer's log: which instance (the configured prefix, else the host
    // name — the pod name under Kubernetes) and which stream, so replicas and worker streams
    // sharing one checkpoint key still sign distinguishable checkpoints (docs/audit.md "Origins")
    this.origin = `${opts.checkpoint.origin ?? `portcullis/${hostname()}`}/${opts.stream}`
    this.labels = { stream: opts.stream }
    this.groupRecords = maxGroupRecords(opts.checkpoint.everyEvents)
    this.dsync = opts.durability === 'sync' && fsConstants.O_DSYNC !== undefined
  }

  /** Opens (creating or recovering) the stream `opts.stream` in `opts.dir` and takes its lock. */
  static async open (opts: AuditLogOptions): Promise<AuditLog> {
    for (const [k, v] of Object.entries({ batchIntervalMs: opts.batchIntervalMs, segmentMaxBytes: opts.segmentMaxBytes, segmentMaxAgeMs: opts.segmentMaxAgeMs, maxPendingBytes: opts.maxPendingBytes, everyEvents: opts.checkpoint.everyEvents, everyMs: opts.checkpoint.everyMs })) {
      if (!Number.isFinite(v) || v <= 0) throw invalid(`audit log option ${k} must be a positive number, got ${String(v)}`)
    }
    const stale = opts.lockStaleMs ?? DEFAULT_LOCK_STALE_MS
    if (!Number.isSafeInteger(stale) || stale < 2000 || stale > 600_000) throw invalid(`audit log option lockStaleMs must be an integer from 2000 to 600000, got ${String(opts.lockStaleMs)}`)
    const accept = opts.acceptUnsealedTail
    if (accept !== undefined && (!Number.isSafeInteger(accept.records) || accept.records <= 0)) throw invalid(`acceptUnsealedTail.records must be a positive integer, got ${String(accept.records)}`)
    const log = new AuditLog(opts)
    const id = log.paths.root
    if (openStreams.has(id)) throw unavailable(`audit stream ${opts.stream} is already open in this process`, { stream: opts.stream })
    openStreams.add(id)
    try {
      await log.recover()
      // the operator's accepted tail is sealed now, behind its record, or the open fails; so is
      // a log whose last checkpoint a previous key signed (a key rotation): under the new key
      if (log.notes.length > 0) await log.flush()
      if (log.notes.length > 0 || log.sealUnderNewKey) await log.exclusive(async () => await log.writeCheckpoint(true))
    } catch (err) {
      openStreams.delete(id)
      await log.releaseFiles()
      await log.releaseLock?.().catch(() => {})
      if (err instanceof PortcullisError) throw err
      throw unavailable(`cannot open audit stream ${opts.stream} in ${log.opts.dir}: ${(err as Error).message}`, { stream: opts.stream, errno: errnoOf(err) }, err)
    }
    log.startTimers()
    // events an earlier writer could not write at its stop: their gap record goes first (a disk
    // that is still full retries it like any group; the count stays in writer-state until then)
    if (log.carried !== undefined) await log.exclusive(async () => await log.writeGroup(log.opts.durability !== 'async'))
    return log
  }

  /** Tree size: records written (and hashed) so far. */
  get size (): number { return this.range.size }

  /** The stream's directory and origin (for callers that report them). */
  get streamDir (): string { return this.paths.root }
  get checkpointOrigin (): string { return this.origin }
  get lastCheckpoint (): Checkpoint | undefined { return this.last }

  append (eventJson: string): Promise<void> | undefined {
    const m = this.opts.metrics
    if (typeof eventJson !== 'string' || eventJson.length < 2 || eventJson[0] !== '{' || eventJson[eventJson.length - 1] !== '}' || eventJson.includes('\n') || eventJson.startsWith('{"seq"')) {
      m?.auditRejected.inc({ ...this.labels, reason: 'invalid' })
      return Promise.reject(invalid('audit event must be one line of JSON object text without a seq key'))
    }
    if (this.closing) return this.refuse('closed', 'the audit log is closed')
    if (this.broken !== undefined) return this.refuse('disk', this.broken.message)
    const bytes = Buffer.byteLength(eventJson) + RECORD_OVERHEAD
    // in sync mode there is nothing to retry: each group tries the disk itself
    if (this.failing && this.opts.durability !== 'sync') return this.refuse('disk', 'audit log writes are failing')
    if (this.pendingBytes + bytes > this.opts.maxPendingBytes) return this.refuse('full', `audit log has ${this.pendingBytes} bytes pending (max_pending_bytes ${this.opts.maxPendingBytes})`)
    const item: Pending = { text: eventJson, bytes, at: this.now() }
    this.pending.push(item)
    this.pendingBytes += bytes
    m?.auditPendingBytes.set(this.labels, this.pendingBytes)
    switch (this.opts.durability) {
      case 'sync': {
        const p = new Promise<void>((resolve, reject) => { item.resolve = resolve; item.reject = reject })
        if (this.opts.syncTimeoutMs !== undefined) item.deadline = this.now() + this.opts.syncTimeoutMs
        this.scheduleWrite(true)
        return p
      }
      case 'batched':
        // write early (without syncing) when half the bound is waiting, so a burst cannot stall on the timer
        if (this.pendingBytes > this.opts.maxPendingBytes / 2) this.scheduleWrite(false)
        return undefined
      case 'async':
        this.scheduleWrite(false)
        return undefined
    }
  }

  /** Writes and fdatasyncs everything accepted so far; rejects with PORTCULLIS_AUDIT_UNAVAILABLE if that fails. */
  async flush (): Promise<void> {
    for (let i = 0; i < 1000 && (this.pending.length > 0 || this.hasGapWork() || this.writeQueued); i++) {
      const ok = await this.exclusive(async () => await this.writeGroup(true))
      if (!ok) throw unavailable('audit log flush failed: the disk refuses writes', { stream: this.opts.stream, pending: this.pending.length })
    }
    await this.exclusive(async () => { await this.seg.datasync() })
  }

  /** Flushes and writes a checkpoint of the current tree (the last one when the tree has not grown). */
  async checkpointNow (): Promise<Checkpoint> {
    await this.flush()
    return await this.exclusive(async () => await this.writeCheckpoint(true))
  }

  /**
   * Flushes, writes the final checkpoint, releases the stream. Never throws for disk errors
   * (logged). Writes the disk refuses are retried for up to `graceMs` (the shutdown grace period
   * left; default 0: one attempt); events still unwritten then are counted
   * (portcullis_audit_lost_total), logged, and kept in `writer-state` so the next open writes
   * their gap record.
   */
  async close (graceMs = 0): Promise<void> {
    this.closePromise ??= this.closeOnce(Date.now() + Math.max(0, graceMs))
    await this.closePromise
  }

  private async closeOnce (deadline: number): Promise<void> {
    this.closing = true
    this.stopTimers()
    let lastErr: unknown
    // bounded: each attempt waits CLOSE_RETRY_MS, until the deadline
    for (let attempt = 0; attempt < 100_000; attempt++) {
      try {
        await this.flush()
        await this.exclusive(async () => await this.writeCheckpoint(false))
        lastErr = undefined
        break
      } catch (err) {
        lastErr = err
        const left = deadline - Date.now()
        if (left <= 0 || this.broken !== undefined) break
        await new Promise((resolve) => setTimeout(resolve, Math.min(CLOSE_RETRY_MS, left)))
      }
    }
    // sync mode: the waiters' decisions are denied, so their events are not lost answers
    const unwritten = this.opts.durability === 'sync' ? 0 : this.pending.length
    const shed = this.shed.count
    if (lastErr !== undefined) {
      const m = this.opts.metrics
      if (unwritten > 0) m?.auditLost.inc({ ...this.labels, reason: 'unwritten_at_stop' }, unwritten)
      if (shed > 0) m?.auditLost.inc({ ...this.labels, reason: 'shed_unrecorded_at_stop' }, shed)
      this.logger.error({ err: lastErr, stream: this.opts.stream, unwritten, shed, carried: this.carried?.count ?? 0, lost: unwritten + shed },
        'audit log stopped with events it could not write: counted in portcullis_audit_lost_total and kept in writer-state for a gap record at the next open')
      for (const p of this.pending) p.reject?.(unavailable('audit log closed before the event was written'))
      const t = this.now()
      const count = unwritten + shed + (this.carried?.count ?? 0)
      if (count > 0) {
        const first = Math.min(this.carried?.first ?? t, shed > 0 ? this.shed.first : t, unwritten > 0 ? (this.pending[0]?.at ?? t) : t)
        this.carried = { count, first, last: t }
      }
    }
    await this.chain.catch(() => {})
    this.closed = true
    // another writer holds the stream now: its state is not ours to write
    if (this.broken?.code !== 'ELOCKLOST') await this.writeState('closed').catch((err: unknown) => {
      this.logger.error({ err, stream: this.opts.stream, lost: this.carried?.count ?? 0 }, 'cannot write the audit writer-state file: the next open counts this stop as unclean and cannot record a gap for events lost at it')
    })
    await this.releaseFiles()
    await this.releaseLock?.().catch(() => { /* compromised or already gone */ })
    this.releaseLock = undefined
    openStreams.delete(this.paths.root)
  }

  private hasGapWork (): boolean {
    return this.shed.count > 0 || this.carried !== undefined || this.notes.length > 0
  }

  // --- appending ---------------------------------------------------------------------------

  private refuse (reason: 'full' | 'disk' | 'closed', message: string): Promise<void> | undefined {
    const m = this.opts.metrics
    if (this.opts.onFull === 'deny' || reason === 'closed') {
      m?.auditRejected.inc({ ...this.labels, reason })
      return Promise.reject(unavailable(message, { stream: this.opts.stream, reason }))
    }
    const t = this.now()
    if (this.shed.count === 0) this.shed.first = t
    this.shed.count++
    this.shed.last = t
    m?.auditShed.inc({ ...this.labels, reason })
    if (t - this.shedLoggedAt >= 10_000) {
      this.shedLoggedAt = t
      this.logger.warn({ stream: this.opts.stream, reason, shed: this.shed.count }, 'audit events are being shed; a gap record will record how many')
    }
    // the gap record needs a write to carry it once the pressure is gone
    if (reason === 'full' && !this.failing) this.scheduleWrite(this.opts.durability !== 'async')
    return undefined
  }

  private exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    return run
  }

  private scheduleWrite (syncNow: boolean): void {
    if (this.writeQueued || this.closed) return
    this.writeQueued = true
    const go = (): void => {
      this.exclusive(async () => await this.writeGroup(syncNow)).catch(() => { /* logged where it failed */ })
    }
    // Sync and async groups start on the next check phase, not at once: every decision of this
    // event-loop turn (the HTTP server decides a turn's requests together) joins the group, so
    // they share one write and, in sync mode, one fdatasync. Nothing is answered earlier for it.
    if (this.opts.durability !== 'batched') setImmediate(go)
    else go()
  }

  /** Builds the gap record text for events shed since the last write. */
  private gapEvent (): string {
    return JSON.stringify({ type: 'gap', shed: this.shed.count, first_shed_at: new Date(this.shed.first).toISOString(), last_shed_at: new Date(this.shed.last).toISOString() })
  }

  /** The gap record for events an earlier writer accepted (answered) but could not write before it stopped. */
  private carriedGapEvent (c: { count: number, first: number, last: number }): string {
    return JSON.stringify({ type: 'gap', shed: c.count, first_shed_at: new Date(c.first).toISOString(), last_shed_at: new Date(c.last).toISOString(), cause: 'unwritten_at_stop' })
  }

  /**
   * Writes one group: everything pending (up to MAX_GROUP_BYTES), a gap record first when
   * events were shed. Returns false when the disk refused it.
   */
  private async writeGroup (syncNow: boolean): Promise<boolean> {
    this.writeQueued = false
    if (this.closed) return true
    const m = this.opts.metrics
    let take = 0
    let takeBytes = 0
    while (take < this.pending.length && take < this.groupRecords && (take === 0 || takeBytes + (this.pending[take] as Pending).bytes <= MAX_GROUP_BYTES)) {
      takeBytes += (this.pending[take] as Pending).bytes
      take++
    }
    const group = this.pending.slice(0, take)
    const gap = this.shed.count > 0 ? { ...this.shed } : undefined
    const carried = this.carried
    const notes = this.notes.slice()
    if (group.length === 0 && gap === undefined && carried === undefined && notes.length === 0) {
      if (syncNow && this.unsynced) await this.syncUnsynced()
      return true
    }
    try {
      if (this.broken !== undefined) throw Object.assign(new Error(this.broken.message), { code: this.broken.code })
      await this.cleanDirty()
      await this.maybeRotate()
      await this.checkSegmentSize()
      const range = this.range.clone()
      const head = [...notes, ...(carried !== undefined ? [this.carriedGapEvent(carried)] : []), ...(gap !== undefined ? [this.gapEvent()] : [])]
      const texts = [...head, ...group.map((p) => p.text)]
      // one string, one buffer for the group; leaves hashed over subarrays (records hold no raw newline)
      const first = range.size
      const segBuf = Buffer.from(texts.map((text, i) => recordText(first + i, text)).join('\n') + '\n')
      const hashBuf = Buffer.allocUnsafe((storedHashCount(first + texts.length) - storedHashCount(first)) * HASH_SIZE)
      let at = 0
      let start = 0
      for (let i = 0; i < texts.length; i++) {
        const nl = segBuf.indexOf(10, start)
        for (const h of range.append(leafHash(segBuf.subarray(start, nl)))) { h.copy(hashBuf, at); at += HASH_SIZE }
        start = nl + 1
      }
      const t0 = process.hrtime.bigint()
      const fsyncDone = (): void => { m?.auditFsyncDuration.observe(this.labels, Number(process.hrtime.bigint() - t0) / 1e9) }
      await writeFully(this.seg, segBuf, this.segBytes)
      // O_DSYNC (sync mode): the write returned with the records on disk
      if (syncNow && this.dsync) fsyncDone()
      // The hashes are written after the records (a live reader never sees hashes of records it
      // cannot read yet) but beside the segment's fdatasync: the records are what must be durable
      // before an answer — recovery recomputes the hashes after the last checkpoint from them —
      // and both must succeed before the group counts as written (a failure truncates both back).
      const hashesWritten = writeFully(this.hashes, hashBuf, this.hashesBytes)
      if (syncNow && !this.dsync) {
        const [synced, hashed] = await Promise.allSettled([this.seg.datasync().then(fsyncDone), hashesWritten])
        if (synced.status === 'rejected') throw synced.reason
        if (hashed.status === 'rejected') throw hashed.reason
      } else {
        await hashesWritten
      }
      // batched/async: written, not yet synced (the batch timer syncs it); O_DSYNC writes are durable
      this.unsynced = !(syncNow || this.dsync)
      // committed
      this.range = range
      this.segBytes += segBuf.length
      this.hashesBytes += hashBuf.length
      this.pending.splice(0, take)
      this.pendingBytes -= takeBytes
      if (gap !== undefined) {
        this.logger.warn({ stream: this.opts.stream, shed: gap.count, seq: range.size - texts.length }, 'audit gap record written for shed events')
        this.shed = { count: this.shed.count - gap.count, first: gap.last, last: this.shed.last }
      }
      this.notes.splice(0, notes.length)
      if (carried !== undefined) {
        this.carried = undefined
        this.logger.warn({ stream: this.opts.stream, lost: carried.count, seq: first + notes.length }, 'audit gap record written for events a previous writer could not write before it stopped')
        // the count is on the record now: the state file must not bring it back at the next open
        await this.writeState('open').catch((err: unknown) => { this.logger.error({ err, stream: this.opts.stream }, 'cannot clear the lost count in writer-state: the next open records its gap again') })
      }
      this.failing = false
      this.retryMs = 50
      m?.auditPendingBytes.set(this.labels, this.pendingBytes)
      m?.auditEventsWritten.inc(this.labels, texts.length)
      m?.auditBytesWritten.inc(this.labels, segBuf.length)
      m?.auditGroupSize.observe(this.labels, texts.length)
      for (const p of group) p.resolve?.()
    } catch (err) {
      const code = errnoOf(err)
      m?.auditWriteErrors.inc({ ...this.labels, code })
      // a broken writer cuts nothing: the bytes past its end may be another writer's
      if (this.broken === undefined) {
        this.dirty = true
        await this.cleanDirty().catch(() => {})
      }
      if (this.opts.durability === 'sync') {
        // these decisions are denied: nothing the caller was told is durable is lost
        this.pending.splice(0, take)
        this.pendingBytes -= takeBytes
        m?.auditPendingBytes.set(this.labels, this.pendingBytes)
        m?.auditRejected.inc({ ...this.labels, reason: 'disk' }, group.length)
        const e = unavailable(`audit log write failed (${code})`, { stream: this.opts.stream, errno: code }, err)
        for (const p of group) p.reject?.(e)
      } else {
        this.failing = true
      }
      // rate-limited: a full disk fails every group (in sync mode, every burst of decisions)
      const t = this.now()
      if (t - this.errorLoggedAt >= 10_000 || code !== this.errorLoggedCode) {
        this.errorLoggedAt = t
        this.errorLoggedCode = code
        this.logger.error({ err, stream: this.opts.stream, errno: code, group: group.length }, 'audit log write failed; the group was truncated away (logged at most every 10 s per errno; portcullis_audit_write_errors_total counts all)')
      }
      this.scheduleRetry()
      return false
    }
    // more may have arrived while this group was in flight (group commit: they form the next group)
    if (this.pending.length > 0 && this.opts.durability === 'sync') this.scheduleWrite(true)
    else if (this.pending.length > 0 && this.opts.durability === 'async') this.scheduleWrite(false)
    if (this.range.size - (this.last?.size ?? 0) >= this.opts.checkpoint.everyEvents) {
      await this.writeCheckpoint(false).catch(() => { /* logged; retried at the next trigger */ })
    }
    return true
  }

  /**
   * Rejects `sync` waiters past their deadline with PORTCULLIS_AUDIT_UNAVAILABLE (the decision is
   * denied). Their events stay queued: a disk that recovers still writes them, so a denied
   * decision's event can appear in the log.
   */
  private expireWaiters (): void {
    const t = this.now()
    let expired = 0
    for (const p of this.pending) {
      if (p.deadline === undefined || p.deadline > t) break
      if (p.reject === undefined) continue
      p.reject(unavailable(`the audit event was not on disk within sync_timeout_ms (${String(this.opts.syncTimeoutMs)} ms)`, { stream: this.opts.stream, reason: 'timeout' }))
      p.reject = undefined
      p.resolve = undefined
      expired++
    }
    if (expired === 0) return
    this.opts.metrics?.auditRejected.inc({ ...this.labels, reason: 'timeout' }, expired)
    if (t - this.errorLoggedAt >= 10_000 || this.errorLoggedCode !== 'timeout') {
      this.errorLoggedAt = t
      this.errorLoggedCode = 'timeout'
      this.logger.error({ stream: this.opts.stream, expired, pending: this.pending.length }, 'audit writes are not completing within sync_timeout_ms: decisions are denied (logged at most every 10 s)')
    }
  }

  /** fdatasyncs records an earlier write left unsynced (the batch timer, when nothing is pending). */
  private async syncUnsynced (): Promise<void> {
    const t0 = process.hrtime.bigint()
    try {
      await this.seg.datasync()
    } catch (err) {
      this.opts.metrics?.auditWriteErrors.inc({ ...this.labels, code: errnoOf(err) })
      this.logger.error({ err, stream: this.opts.stream }, 'audit log fdatasync failed; retried at the next batch tick')
      return
    }
    this.opts.metrics?.auditFsyncDuration.observe(this.labels, Number(process.hrtime.bigint() - t0) / 1e9)
    this.unsynced = false
  }

  private scheduleRetry (): void {
    if (this.retryTimer !== undefined || this.closed || this.broken !== undefined) return
    if (this.pending.length === 0 && !this.hasGapWork()) return
    const ms = this.retryMs
    this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.exclusive(async () => await this.writeGroup(this.opts.durability !== 'async')).catch(() => { /* logged where it failed */ })
    }, ms)
    this.retryTimer.unref()
  }

  /**
   * Defence in depth beside the lock: the active segment must still be exactly what this writer
   * wrote. Anything else — another writer appending, someone truncating — stops this writer
   * (fail closed: every later append is refused, counted as a write error `ESEGCHANGED`), and
   * nothing is cut: the bytes are evidence.
   */
  private async checkSegmentSize (): Promise<void> {
    const size = (await this.seg.stat()).size
    if (size === this.segBytes) return
    this.markBroken('ESEGCHANGED', `audit segment ${this.segRef.name} of stream ${this.opts.stream} is ${size} bytes, but this writer wrote ${this.segBytes}: another process wrote to it; the stream is unavailable (run portcullis audit verify)`)
    throw Object.assign(new Error((this.broken as { message: string }).message), { code: 'ESEGCHANGED' })
  }

  /** This writer may no longer write: appends are refused from now on. */
  private markBroken (code: string, message: string): void {
    if (this.broken !== undefined) return
    this.broken = { code, message }
    this.logger.error({ stream: this.opts.stream, code }, message)
    this.stopTimers()
  }

  /** Truncates what a failed write may have left past the good ends. */
  private async cleanDirty (): Promise<void> {
    if (!this.dirty) return
    await this.seg.truncate(this.segBytes)
    await this.hashes.truncate(this.hashesBytes)
    await this.ckpt.truncate(this.ckptBytes)
    this.dirty = false
  }

  // --- rotation and retention ------------------------------------------------------------------

  private async maybeRotate (): Promise<void> {
    if (this.segBytes === 0) return
    const age = this.now() - this.segCreatedAt
    if (this.segBytes < this.opts.segmentMaxBytes && age < this.opts.segmentMaxAgeMs) return
    await this.seg.datasync()
    await this.hashes.datasync()
    const ref = { name: segmentName(this.range.size), first: this.range.size }
    const fh = await openSegment(join(this.paths.segments, ref.name), this.dsync)
    await fsyncDir(this.paths.segments)
    await this.seg.close()
    this.seg = fh
    this.segRef = ref
    this.segBytes = 0
    this.segCreatedAt = this.now()
    this.logger.info({ stream: this.opts.stream, segment: ref.name }, 'audit segment rotated')
    // a retention failure must not fail the write that triggered the rotation
    await this.retentionLogged()
  }

  private async retentionLogged (): Promise<void> {
    await this.applyRetention().catch((err: unknown) => {
      this.opts.metrics?.auditWriteErrors.inc({ ...this.labels, code: errnoOf(err) })
      this.logger.error({ err, stream: this.opts.stream }, 'audit retention failed; retried at the next rotation or checkpoint interval')
    })
  }

  /**
   * Removes whole oldest segments (never the active one) past the age or byte limits: each is
   * recorded in retention.log, then a checkpoint signs the new `retained` seq, then the files
   * are removed — so every removal is covered by a signed statement (verify:
   * RETENTION_UNAUTHENTICATED otherwise). A crash in between leaves the segments in place.
   */
  async applyRetention (): Promise<void> {
    const { maxAgeMs, maxBytes } = this.opts.retention
    if (maxAgeMs === undefined && maxBytes === undefined) return
    const segs = await listSegments(this.paths.segments)
    const info = await Promise.all(segs.map(async (s) => ({ ...s, st: await stat(join(this.paths.segments, s.name)) })))
    let total = info.reduce((a, s) => a + s.st.size, 0)
    const reader = new HashesFileReader(this.hashes.fd)
    const removals: RetentionEntry[] = []
    // records the shipper has not had acknowledged stay (a damaged cursor throws: nothing is removed)
    const shippedBelow = this.opts.retention.keepUnshipped === true ? (await readCursor(this.paths.root))?.next_seq ?? 0 : Infinity
    for (let i = 0; i + 1 < info.length; i++) {
      const s = info[i] as (typeof info)[number]
      const next = info[i + 1] as (typeof info)[number]
      if (s.name === this.segRef.name) break
      const last = next.first - 1
      // records after the last checkpoint stay: their hashes are recomputed from them after a crash
      if (last >= (this.last?.size ?? 0)) break
      if (last >= shippedBelow) break
      if (last < s.first) break
      const [firstLeaf, lastLeaf] = reader.readHashes([storedHashIndex(0, s.first), storedHashIndex(0, last)]) as [Buffer, Buffer]
      // What a removal signs away must be what the segment holds: its first and last records are
      // the seqs its name and the next segment's name claim, with their stored leaf hashes. Else
      // (records or whole segments deleted by someone else, a file renamed) retention would sign
      // that deletion as its own: it stops, and verify reports what was done.
      const ends = await segmentEnds(join(this.paths.segments, s.name), s.st.size)
      if (ends === undefined || recordSeq(ends.first) !== s.first || recordSeq(ends.last) !== last || !leafHash(ends.first).equals(firstLeaf) || !leafHash(ends.last).equals(lastLeaf)) {
        this.opts.metrics?.auditWriteErrors.inc({ ...this.labels, code: 'ERETENTION' })
        this.logger.error({ stream: this.opts.stream, segment: s.name, first_seq: s.first, last_seq: last }, 'audit retention stopped: this segment does not hold the records its place claims (records or segments removed or renamed by someone else?); nothing from it on is removed — run portcullis audit verify')
        break
      }
      // age by the segment's last record, authenticated by its stored leaf hash (a file's mtime is
      // anyone's to set); a record without a time (none is written so) falls back to the mtime
      const old = maxAgeMs !== undefined && this.now() - recordTime(ends.last, s.st.mtimeMs) > maxAgeMs
      const big = maxBytes !== undefined && total > maxBytes
      if (!old && !big) break
      const entry: RetentionEntry = {
        segment: s.name,
        first_seq: s.first,
        last_seq: last,
        first_leaf_hash: firstLeaf.toString('hex'),
        last_leaf_hash: lastLeaf.toString('hex'),
        bytes: s.st.size,
        removed_at: new Date(this.now()).toISOString(),
        reason: old ? 'age' : 'bytes',
      }
      removals.push(entry)
      total -= s.st.size
    }
    if (removals.length === 0) return
    const fh = await open(this.paths.retention, 'a')
    try {
      await fh.write(removals.map((e) => JSON.stringify(e) + '\n').join(''))
      await fh.datasync()
    } finally { await fh.close() }
    const before = this.retainedFrom
    this.retainedFrom = (removals[removals.length - 1] as RetentionEntry).last_seq + 1
    try {
      await this.writeCheckpoint(true)
    } catch (err) {
      this.retainedFrom = before
      throw err
    }
    for (const entry of removals) {
      await unlink(join(this.paths.segments, entry.segment))
      this.logger.info({ stream: this.opts.stream, ...entry }, 'audit segment removed by retention')
    }
    await fsyncDir(this.paths.segments)
  }

  // --- checkpoints -------------------------------------------------------------------------------

  private async writeCheckpoint (force: boolean): Promise<Checkpoint> {
    const size = this.range.size
    if (this.last !== undefined && this.last.size === size && (this.last.retained ?? 0) === this.retainedFrom && !this.sealUnderNewKey) return this.last
    if (!force && size === 0) return this.last ?? { origin: this.origin, size: 0, root: this.range.root(), note: '' }
    const m = this.opts.metrics
    if (this.broken !== undefined) throw unavailable(this.broken.message, { stream: this.opts.stream })
    try {
      await this.cleanDirty()
      // the checkpoint vouches for records and hashes: both must be on disk before it
      await this.seg.datasync()
      await this.hashes.datasync()
      const root = this.range.root()
      const retained = this.retainedFrom
      const note = signCheckpoint(formatCheckpoint(this.origin, size, root, retained), this.key, this.origin.replace(/[\s+]/g, '_'))
      const buf = Buffer.from(note)
      await writeFully(this.ckpt, buf, this.ckptBytes)
      await this.ckpt.datasync()
      this.ckptBytes += buf.length
      this.last = { origin: this.origin, size, root, note, ...(retained > 0 ? { retained } : {}) }
      this.sealUnderNewKey = false
      m?.auditCheckpoints.inc(this.labels)
      return this.last
    } catch (err) {
      this.dirty = true
      m?.auditWriteErrors.inc({ ...this.labels, code: errnoOf(err) })
      this.logger.error({ err, stream: this.opts.stream, size }, 'audit checkpoint write failed; retried at the next trigger')
      await this.cleanDirty().catch(() => {})
      throw unavailable(`audit checkpoint write failed (${errnoOf(err)})`, { stream: this.opts.stream }, err)
    }
  }

  // --- timers ------------------------------------------------------------------------------------

  private startTimers (): void {
    const limit = this.opts.syncTimeoutMs
    if (this.opts.durability === 'sync' && limit !== undefined) {
      // one watchdog, not a timer per append: waiters are in arrival order, so each tick looks
      // only at the expired front of the queue
      this.deadlineTimer = setInterval(() => { this.expireWaiters() }, Math.max(5, Math.min(100, Math.floor(limit / 4))))
      this.deadlineTimer.unref()
    }
    if (this.opts.durability === 'batched') {
      this.batchTimer = setInterval(() => {
        // at most one queued behind a slow write: ticks while it waits add nothing
        if ((this.pending.length > 0 || this.hasGapWork() || this.unsynced) && !this.writeQueued) {
          this.writeQueued = true
          this.exclusive(async () => await this.writeGroup(true)).catch(() => { /* logged where it failed */ })
        }
      }, this.opts.batchIntervalMs)
      this.batchTimer.unref()
    }
    this.checkpointTimer = setInterval(() => {
      if (this.checkpointQueued) return
      this.checkpointQueued = true
      void this.exclusive(async () => {
        this.checkpointQueued = false
        if (this.range.size > (this.last?.size ?? 0)) await this.writeCheckpoint(false).catch(() => { /* logged; retried */ })
        await this.retentionLogged()
      }).catch(() => { /* logged where it failed */ })
    }, this.opts.checkpoint.everyMs)
    this.checkpointTimer.unref()
  }

  private stopTimers (): void {
    clearInterval(this.batchTimer)
    clearInterval(this.checkpointTimer)
    clearInterval(this.deadlineTimer)
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private async releaseFiles (): Promise<void> {
    for (const fh of [this.seg, this.hashes, this.ckpt, this.stateFh]) {
      if (fh !== undefined) await fh.close().catch(() => {})
    }
  }

  // --- opening and crash recovery -------------------------------------------------------------

  private async recover (): Promise<void> {
    const p = this.paths
    await mkdir(p.segments, { recursive: true })
    this.releaseLock = await takeWriterLock(p, this.opts.stream, this.opts.lockStaleMs ?? DEFAULT_LOCK_STALE_MS, (err) => {
      this.opts.metrics?.auditWriteErrors.inc({ ...this.labels, code: 'ELOCKLOST' })
      this.markBroken('ELOCKLOST', `audit stream ${this.opts.stream} lost its writer lock (${err.message}): another writer may hold it; this writer stops writing`)
    })
    const previous = await readWriterState(p.state, this.opts.stream, this.now, this.logger)
    const ctx: RecoveryContext = { stream: this.opts.stream, root: p.root, now: this.now, logger: this.logger, ...(this.opts.metrics !== undefined ? { metrics: this.opts.metrics } : {}) }
    this.key = await loadCheckpointKey(this.opts.dir, this.opts.checkpoint.keyFile, this.logger)

    // 1. the last checkpoint (tail of the checkpoints file): it must carry this writer's signature
    this.ckpt = await openRw(p.checkpoints)
    const found = await recoverLastCheckpoint(ctx, this.ckpt, (await this.ckpt.stat()).size, p.checkpoints)
    this.ckptBytes = found.bytes
    this.last = found.checkpoint
    this.retainedFrom = this.last?.retained ?? 0
    if (this.last !== undefined && !verifyCheckpoint(this.last.note, createPublicKey(this.key))) {
      // A key rotation: the operator names the key that signed the log so far, and the log is
      // sealed under the new key as soon as it is open (AuditLog.open).
      const last = this.last
      const previous = (await loadPreviousPublicKeys(this.opts.checkpoint.previousPublicKeyFiles ?? [])).find((k) => verifyCheckpoint(last.note, k.key))
      if (previous === undefined) {
        throw invalid(`audit stream ${this.opts.stream}: its last checkpoint (size ${last.size}) is not signed by this writer's checkpoint key — a forged or replaced note, or the key was changed; the writer does not extend a log it cannot vouch for: run portcullis audit verify with the pinned key, and configure the key that signed the log (after a key rotation: its public half in checkpoint.previous_public_key_files)`, { stream: this.opts.stream, checkpoint: last.size })
      }
      this.sealUnderNewKey = true
      this.logger.warn({ stream: this.opts.stream, checkpoint: last.size, previousKey: previous.file }, 'audit checkpoint key rotated: the last checkpoint is signed by a previous key; the log is sealed under the new key at its current size now (verify needs both public keys)')
    }
    // A stream keeps the origin its checkpoints already sign: a new host name (a Pod rescheduled
    // with its volume) or a changed checkpoint.origin must not split one log into two origins
    // (verify would fail CHECKPOINT_ORIGIN_MISMATCH). New streams take the configured one.
    if (this.last !== undefined && this.last.origin !== this.origin) {
      this.logger.warn({ stream: this.opts.stream, origin: this.last.origin, configured: this.origin }, 'audit stream keeps the origin its checkpoints sign; the configured origin applies to new streams')
      this.origin = this.last.origin
    }

    // 2. the active segment: drop a torn tail
    let segs = await listSegments(p.segments)
    if (segs.length === 0) {
      const ref = { name: segmentName(0), first: 0 }
      this.seg = await openSegment(join(p.segments, ref.name), this.dsync)
      await fsyncDir(p.segments)
      segs = [ref]
    } else {
      this.seg = await openRw(join(p.segments, (segs[segs.length - 1] as SegmentRef).name), this.dsync)
    }
    this.segRef = segs[segs.length - 1] as SegmentRef
    const st = await this.seg.stat()
    this.segCreatedAt = st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs
    const { records: size, bytes: segBytes } = await recoverTail(ctx, this.seg, this.segRef, st.size, this.last?.size ?? 0)
    this.segBytes = segBytes
    const unclean = previous.unclean && (size > 0 || this.last !== undefined)

    // 3. hashes: trust them up to the last checkpoint (after checking its root), recompute the rest from the records
    this.hashes = await openRw(p.hashes)
    const hashesLen = (await this.hashes.stat()).size
    const c = this.last?.size ?? 0
    if (c > size) throw invalid(`audit stream ${this.opts.stream} has ${size} records but its last checkpoint covers ${c}: records were lost or removed`, { stream: this.opts.stream, records: size, checkpoint: c })
    if (storedHashCount(c) * HASH_SIZE > hashesLen) throw invalid(`audit stream ${this.opts.stream}: hashes file is shorter than its last checkpoint (size ${c})`, { stream: this.opts.stream })
    const reader = new HashesFileReader(this.hashes.fd)
    if (this.last !== undefined && !treeRoot(c, reader).equals(this.last.root)) {
      throw invalid(`audit stream ${this.opts.stream}: stored hashes do not match the last checkpoint (size ${c}); run portcullis audit verify`, { stream: this.opts.stream })
    }
    // 4. the unsealed tail: no longer than a crash can leave, unless the operator accepted exactly it
    const tail = size - c
    const bound = maxUnsealedTail(this.opts.checkpoint.everyEvents)
    const accept = this.opts.acceptUnsealedTail
    if (accept !== undefined && accept.records !== tail) {
      throw invalid(`audit stream ${this.opts.stream}: accept-tail names ${accept.records} records, but ${tail} follow the last checkpoint (size ${c}); nothing was sealed`, { stream: this.opts.stream, records: tail, accepted: accept.records, checkpoint: c })
    }
    if (tail > bound && accept === undefined) {
      throw invalid(`audit stream ${this.opts.stream}: ${tail} records follow the last checkpoint (${this.last === undefined ? 'there is none' : `size ${c}`}), more than a crash can leave (${bound}: checkpoint.every_events ${this.opts.checkpoint.everyEvents} plus one group of at most ${this.groupRecords} and its gap records); ` +
        'the writer does not seal them unseen — checkpoints were deleted or the records rewritten, or checkpointing failed for long. Run portcullis audit verify with the pinned key; ' +
        `if the records are genuine, seal them as a recorded acceptance with: portcullis audit accept-tail --stream ${this.opts.stream} --records ${tail}`,
      { stream: this.opts.stream, records: tail, max: bound, checkpoint: c })
    }
    this.range = CompactRange.load(c, reader)
    this.hashesBytes = storedHashCount(c) * HASH_SIZE
    if (size > c) this.hashesBytes = await rehashTail(ctx, segs, p.segments, c, size, { range: this.range, hashes: this.hashes, offset: this.hashesBytes, storedLen: hashesLen })
    await this.hashes.truncate(this.hashesBytes)
    await this.hashes.datasync()
    if (unclean || size > c) {
      this.logger.warn({ stream: this.opts.stream, size, lastCheckpoint: c, unclean }, 'audit stream recovered: hashes after the last checkpoint recomputed from the records (each equal to the stored one where stored)')
    }
    if (accept !== undefined) {
      const t = new Date(this.now()).toISOString()
      this.notes.push(JSON.stringify({ type: 'gap', shed: 0, first_shed_at: t, last_shed_at: t, cause: 'unsealed_tail_accepted', first_seq: c, last_seq: size - 1, records: tail, max_unsealed: bound, ...(accept.reason !== undefined ? { reason: accept.reason } : {}) }))
      this.logger.warn({ stream: this.opts.stream, records: tail, firstSeq: c, max: bound }, 'audit: an operator accepted an unsealed tail; it is sealed behind a gap record that says so')
    }
    if (previous.lost !== undefined) this.carried = previous.lost
    // from here a crash is an unclean stop; the lost count stays until its gap record is written.
    // Best effort: a disk too full to create the file must not keep the stream from opening
    // (its writes then fail closed as usual); the next open then sees the last stop's state.
    await this.writeState('open').catch((err: unknown) => {
      this.opts.metrics?.auditWriteErrors.inc({ ...this.labels, code: errnoOf(err) })
      this.logger.error({ err, stream: this.opts.stream, file: this.paths.state }, 'cannot write the audit writer-state file: an unclean stop of this writer may not be recognised')
    })
  }

  /** Rewrites `writer-state` with this writer's state and the lost count it carries (writer-state.ts). */
  private async writeState (state: 'open' | 'closed'): Promise<void> {
    this.stateFh ??= await openRw(this.paths.state)
    await writeWriterState(this.stateFh, state, this.carried, this.now())
  }
}
