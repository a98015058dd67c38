/**
 * The decision-log shipper: uploads the events of the durable audit log to an OPA-protocol
 * collector (docs/audit.md, "Shipping").
 *
 * Why it is shaped this way:
 * - The durable log is the buffer. Nothing is kept in memory between uploads but one chunk, so
 *   a collector that is down for hours costs disk (bounded by the log's retention), not memory,
 *   and a crash loses nothing: OPA's in-memory buffer loses events on a crash (OPA #3043) and
 *   drops them under pressure (#7454, #8123).
 * - At least once: each stream has a cursor on disk (log/ship-cursor.ts), advanced only after the
 *   collector acknowledged a chunk with a 2xx. A crash between the 2xx and the cursor write
 *   sends that chunk again; nothing is ever skipped.
 * - One shipper per audit directory: every process of a server (each worker writes its own
 *   stream) runs a Shipper, and the one holding `<dir>/.ship.lock` (proper-lockfile: a lock
 *   directory whose mtime the holder refreshes; stale after `lockStaleMs`, or at once when its
 *   owner record proves the holder dead (../lock.ts), then taken over)
 *   ships every stream in the directory — including streams of processes that are gone (a
 *   previous run, a crashed worker), which a shipper per process would never finish. The
 *   others stand by and try the lock again each period.
 * - Timing is OPA's (src/backoff.ts, shared with the bundle downloader): periodic uploads every uniformly random [min, max] delay,
 *   exponential backoff with jitter after a failure, `trigger: manual` uploads only when asked.
 * - Only what the log holds is shipped: each record's leaf hash is compared with the stored leaf
 *   before it is sent, and a hole in the seqs passes only where retention.log records the
 *   removal. A record edited (or deleted) after it was written — while the collector was down,
 *   say — stops shipping of that stream at that seq (fail closed: counted, logged with
 *   PORTCULLIS_AUDIT_INVALID, retried each round, never sent); `portcullis audit verify` says
 *   what happened. Other streams go on.
 * - Stop never hangs (OPA #6443): the final upload and everything in flight are aborted at the
 *   grace deadline; what was not acknowledged stays in the log for the next start.
 */
import { join } from 'node:path'
import lockfile from 'proper-lockfile'
import { PortcullisError } from '../../errors.js'
import { leafHash } from '../log/tree.js'
import { ownedLockFs } from '../lock.js'
import { silentLogger, type Logger } from '../../log.js'
import { periodicDelayMs, retryDelayMs } from '../../backoff.js'
import { ChunkEncoder, type Chunk, type ShipEvent } from './chunk.js'
import type { UploadClient, UploadResult } from './client.js'
import { readCursor, writeCursor } from '../log/ship-cursor.js'
import type { ShipMetrics } from './metrics.js'

/** The reading side of one audit stream the shipper needs (src/audit/log/reader.ts `StreamReader`). */
export interface ShipStream {
  treeSize: () => number | Promise<number>
  records: (fromSeq: number, toSeq?: number) => AsyncIterable<ShipEvent>
  /** The stored leaf hash of record `seq` (hashes file): a record is shipped only if it matches. */
  storedLeaf: (seq: number) => Promise<Buffer>
  /** Whether retention.log records the removal of [fromSeq, toSeq): only then is a hole "lost to retention". */
  retentionCovers: (fromSeq: number, toSeq: number) => Promise<boolean>
}

/** The reading side of an audit directory the shipper needs (src/audit/log/reader.ts `AuditDirReader`). */
export interface ShipDirectory {
  streams: () => string[] | Promise<string[]>
  stream: (id: string) => ShipStream | Promise<ShipStream>
  close?: () => void | Promise<void>
}

export interface ShipperOptions {
  /** The audit directory (one subdirectory per stream). */
  dir: string
  client: Pick<UploadClient, 'upload' | 'url'>
  /** Opens the directory for one round (a fresh view: writers in other processes keep appending). */
  openDirectory: (dir: string) => Promise<ShipDirectory>
  minDelayMs: number
  maxDelayMs: number
  uploadSizeLimitBytes: number
  trigger: 'periodic' | 'manual'
  /** Upload before the period ends once this many events wait. */
  earlyUploadEvents?: number
  /** How often the early-upload threshold is checked (default 1000 ms). */
  pollMs?: number
  /** Lock staleness (default 10 s): a holder that stopped refreshing for this long is taken over. */
  lockStaleMs?: number
  /** Delay between two tries of the final upload at stop (default 1000 ms, as OPA's flush). */
  finalRetryMs?: number
  metrics?: ShipMetrics
  logger?: Logger
  random?: () => number
}

export type ShipState = 'NOT_READY' | 'OK' | 'ERROR' | 'STANDBY' | 'STOPPED'

export interface ShipStatus {
  state: ShipState
  url: string
  trigger: 'periodic' | 'manual'
  /** This process holds the directory's shipping lock. */
  shipping: boolean
  lag_events: number | null
  shipped_events: number
  last_success_at: string | null
  last_error: string | null
  last_error_at: string | null
}

export interface RoundResult {
  /** Events acknowledged in this round. */
  events: number
  chunks: number
  /** Set when the round stopped at a failed upload (or could not read the log). */
  error?: string
  /** Events still not acknowledged after the round, over all streams. */
  lag: number
}

class UploadFailed extends Error {}

const LOCK_FILE = '.ship.lock'

export class Shipper {
  private readonly opts: Required<Pick<ShipperOptions, 'pollMs' | 'lockStaleMs' | 'finalRetryMs' | 'random'>> & ShipperOptions
  private readonly logger: Logger
  private readonly encoder: ChunkEncoder
  /** Aborted at the grace deadline of stop(): ends waits, uploads, rounds. */
  private readonly ctl = new AbortController()
  private stopping = false
  private loopDone: Promise<void> | undefined
  private stopDone: Promise<void> | undefined
  private wake: (() => void) | undefined
  /** Rounds never overlap (the loop and trigger() share this chain). */
  private chain: Promise<unknown> = Promise.resolve()
  private release: (() => Promise<void>) | undefined
  private readonly st = {
    state: 'NOT_READY' as ShipState,
    lag: null as number | null,
    shipped: 0,
    lastSuccess: null as string | null,
    lastError: null as string | null,
    lastErrorAt: null as string | null,
  }

  constructor (opts: ShipperOptions) {
    this.opts = { pollMs: 1000, lockStaleMs: 10_000, finalRetryMs: 1000, random: Math.random, ...opts }
    this.logger = opts.logger ?? silentLogger
    this.encoder = new ChunkEncoder(opts.uploadSizeLimitBytes)
  }

  /** Starts the periodic loop (manual trigger: only takes the lock; uploads wait for trigger()). */
  start (): void {
    if (this.loopDone !== undefined) return
    this.loopDone = this.loop()
  }

  status (): ShipStatus {
    return {
      state: this.st.state,
      url: this.opts.client.url.toString(),
      trigger: this.opts.trigger,
      shipping: this.release !== undefined,
      lag_events: this.st.lag,
      shipped_events: this.st.shipped,
      last_success_at: this.st.lastSuccess,
      last_error: this.st.lastError,
      last_error_at: this.st.lastErrorAt,
    }
  }

  /**
   * One upload round now: every stream from its cursor to its current end. Resolves with what
   * was acknowledged; a failed upload ends the round (`error`), to be retried by the caller or
   * the loop. Without the directory's lock nothing is sent (`error` says so).
   */
  async trigger (): Promise<RoundResult> {
    if (this.stopping) return { events: 0, chunks: 0, error: 'shipper stopped', lag: this.st.lag ?? 0 }
    if (!await this.ensureLock()) return { events: 0, chunks: 0, error: 'another process holds the shipping lock', lag: this.st.lag ?? 0 }
    return await this.serialized(async () => await this.round(this.ctl.signal))
  }

  /**
   * Stops: a final upload (periodic trigger, as OPA's Stop), bounded with everything in flight by
   * `graceMs`; then the lock is released. Unsent events stay in the log for the next start.
   */
  async stop (graceMs: number): Promise<void> {
    if (this.stopDone !== undefined) return await this.stopDone
    this.stopping = true
    const timer = setTimeout(() => { this.ctl.abort() }, Math.max(0, graceMs))
    this.wake?.()
    this.stopDone = (async () => {
      try {
        if (this.loopDone !== undefined) await this.loopDone
        else if (this.opts.trigger === 'periodic' && this.release !== undefined) await this.finalFlush()
        await this.chain.catch(() => {})
      } finally {
        clearTimeout(timer)
        this.ctl.abort()
        await this.locking
        await this.releaseLock()
        this.st.state = 'STOPPED'
      }
    })()
    return await this.stopDone
  }

  private async serialized<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn)
    this.chain = run.catch(() => {})
    return await run
  }

  private async loop (): Promise<void> {
    let failures = 0
    while (!this.stopping) {
      if (!await this.ensureLock()) {
        await this.sleep(periodicDelayMs(this.opts.minDelayMs, this.opts.maxDelayMs, this.opts.random))
        continue
      }
      if (this.opts.trigger === 'manual') {
        await this.sleep(Number.POSITIVE_INFINITY)
        continue
      }
      const r = await this.serialized(async () => await this.round(this.ctl.signal))
      if (this.stopping) break
      if (r.error !== undefined) {
        const delay = retryDelayMs(failures++, this.opts.maxDelayMs, this.opts.random)
        this.logger.warn({ delay_ms: delay, error: r.error, lag: r.lag }, 'decision-log upload failed; retrying after backoff')
        await this.sleep(delay)
      } else {
        failures = 0
        await this.sleep(periodicDelayMs(this.opts.minDelayMs, this.opts.maxDelayMs, this.opts.random), this.opts.earlyUploadEvents)
      }
    }
    if (this.opts.trigger === 'periodic' && this.release !== undefined) await this.finalFlush()
  }

  /** OPA's flush at stop: try until everything is acknowledged or the grace deadline aborts. */
  private async finalFlush (): Promise<void> {
    const signal = this.ctl.signal
    // Bounded by the grace deadline (the signal); each try is bounded by the client's timeout.
    while (!signal.aborted) {
      const r = await this.serialized(async () => await this.round(signal))
      if (r.error === undefined) {
        if (r.events > 0) this.logger.info({ events: r.events }, 'decision logs uploaded at shutdown')
        return
      }
      if (signal.aborted) break
      await this.sleepAbortable(this.opts.finalRetryMs, signal)
    }
    this.logger.warn({ lag: this.st.lag }, 'shutdown: decision-log events not yet acknowledged stay in the audit log and are shipped after the next start')
  }

  /**
   * Waits `ms` or until woken by stop(). With `earlyEvents`, checks every pollMs whether that
   * many events wait and returns early if so.
   */
  private async sleep (ms: number, earlyEvents?: number): Promise<void> {
    if (this.stopping) return
    const until = Date.now() + ms
    for (;;) {
      const left = until - Date.now()
      if (left <= 0 || this.stopping) return
      const step = earlyEvents !== undefined ? Math.min(left, this.opts.pollMs) : left
      await new Promise<void>((resolve) => {
        const t = Number.isFinite(step) ? setTimeout(() => { this.wake = undefined; resolve() }, step) : undefined
        this.wake = () => { if (t !== undefined) clearTimeout(t); this.wake = undefined; resolve() }
      })
      if (this.stopping) return
      if (earlyEvents !== undefined) {
        const lag = await this.lag().catch(() => undefined)
        if (lag !== undefined && lag >= earlyEvents) return
      }
    }
  }

  private async sleepAbortable (ms: number, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms)
      function done (): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
      signal.addEventListener('abort', done)
    })
  }

  /** One lock attempt at a time (the loop and trigger() may both ask). */
  private locking: Promise<boolean> | undefined

  private async ensureLock (): Promise<boolean> {
    if (this.release !== undefined) return true
    if (this.stopping) return false
    this.locking ??= this.takeLock().finally(() => { this.locking = undefined })
    return await this.locking
  }

  private async takeLock (): Promise<boolean> {
    try {
      const lockfilePath = join(this.opts.dir, LOCK_FILE)
      this.release = await lockfile.lock(this.opts.dir, {
        lockfilePath,
        realpath: false,
        fs: ownedLockFs(lockfilePath, this.opts.lockStaleMs),
        retries: 0,
        stale: this.opts.lockStaleMs,
        update: Math.max(1000, Math.floor(this.opts.lockStaleMs / 2)),
        onCompromised: (err) => {
          // Another process took the lock over (we stopped refreshing it for too long): stand
          // by. A chunk both send twice is within at-least-once.
          this.release = undefined
          this.st.state = 'STANDBY'
          this.logger.warn({ err: err.message }, 'decision-log shipping lock lost; standing by')
        },
      })
      this.logger.info({ dir: this.opts.dir, url: this.opts.client.url.toString() }, 'decision-log shipper holds the directory lock and ships every stream')
      if (this.st.state === 'NOT_READY' || this.st.state === 'STANDBY') this.st.state = 'OK'
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ELOCKED') {
        if (this.st.state !== 'STANDBY') this.logger.info({ dir: this.opts.dir }, 'another process ships this audit directory; standing by')
        this.st.state = 'STANDBY'
      } else {
        this.fail(`cannot take the shipping lock in ${this.opts.dir}: ${(err as Error).message}`)
      }
      return false
    }
  }

  private async releaseLock (): Promise<void> {
    const release = this.release
    this.release = undefined
    if (release !== undefined) await release().catch(() => {})
  }

  private fail (error: string): void {
    this.st.state = 'ERROR'
    this.st.lastError = error
    this.st.lastErrorAt = new Date().toISOString()
  }

  /** Events not yet acknowledged, over all streams. */
  async lag (): Promise<number> {
    const d = await this.opts.openDirectory(this.opts.dir)
    try {
      let lag = 0
      for (const id of await d.streams()) {
        const size = await (await d.stream(id)).treeSize()
        const next = (await readCursor(join(this.opts.dir, id)))?.next_seq ?? 0
        lag += Math.max(0, size - next)
      }
      return lag
    } finally {
      await d.close?.()
    }
  }

  private async round (signal: AbortSignal): Promise<RoundResult> {
    const result: RoundResult = { events: 0, chunks: 0, lag: 0 }
    let dir: ShipDirectory
    try {
      dir = await this.opts.openDirectory(this.opts.dir)
    } catch (err) {
      result.error = `cannot read the audit directory ${this.opts.dir}: ${(err as Error).message}`
      this.fail(result.error)
      return result
    }
    const ends = new Map<string, { size: number, next: number }>()
    let uploadFailed = false
    try {
      for (const id of await dir.streams()) {
        const streamDir = join(this.opts.dir, id)
        let stream: ShipStream
        let pos: { size: number, next: number }
        try {
          stream = await dir.stream(id)
          pos = { size: await stream.treeSize(), next: (await readCursor(streamDir))?.next_seq ?? 0 }
        } catch (err) {
          // One unreadable stream (or cursor) does not hold the others back; it is retried next round.
          result.error ??= `stream ${id}: ${(err as Error).message}`
          this.logger.error({ stream: id, err: (err as Error).message }, 'cannot read audit stream for shipping')
          continue
        }
        ends.set(id, pos)
        // After a failed upload the collector is not hammered with the other streams' chunks.
        if (uploadFailed || signal.aborted || pos.next >= pos.size) continue
        try {
          await this.shipStream(id, stream, streamDir, pos, signal, result)
        } catch (err) {
          if (err instanceof UploadFailed) uploadFailed = true
          else this.logger.error({ stream: id, err: (err as Error).message }, 'audit stream shipping failed')
          result.error ??= err instanceof UploadFailed ? err.message : `stream ${id}: ${(err as Error).message}`
        }
      }
    } catch (err) {
      result.error ??= `cannot read the audit directory ${this.opts.dir}: ${(err as Error).message}`
    } finally {
      await dir.close?.()
    }
    result.lag = [...ends.values()].reduce((n, p) => n + Math.max(0, p.size - p.next), 0)
    this.st.lag = result.lag
    this.opts.metrics?.lag.set(result.lag)
    if (result.error !== undefined) this.fail(result.error)
    else if (this.st.state !== 'STOPPED') this.st.state = 'OK'
    return result
  }

  /** Ships records [pos.next, pos.size) of one stream, advancing pos.next (and the cursor on disk) per acknowledged chunk. */
  private async shipStream (id: string, stream: ShipStream, streamDir: string, pos: { size: number, next: number }, signal: AbortSignal, result: RoundResult): Promise<void> {
    const pending: ShipEvent[] = []
    let pendingBytes = 0
    const send = async (): Promise<void> => {
      const chunk = await this.encoder.encode(pending)
      const res = await this.opts.client.upload(chunk.body, signal)
      this.count(res)
      const first = chunk.events[0] as ShipEvent
      const last = chunk.events[chunk.events.length - 1] as ShipEvent
      if (chunk.oversized) {
        this.opts.metrics?.oversized.inc()
        this.logger.warn({ stream: id, seq: first.seq, decision_id: decisionId(first), bytes: chunk.body.length, limit: this.opts.uploadSizeLimitBytes },
          'decision-log event larger than upload_size_limit_bytes even alone: sent in a chunk of its own (OPA would drop it)')
      }
      if (!res.ok) {
        if (chunk.oversized && res.status === 413) {
          // The collector will never take it: skipping is the only way forward; it stays in the
          // audit log (export, verify), and is counted and logged, never silently.
          this.opts.metrics?.undeliverable.inc()
          this.logger.error({ stream: id, seq: first.seq, decision_id: decisionId(first), bytes: chunk.body.length },
            'collector refused an oversized decision-log event (413): skipped by the shipper, kept in the audit log')
        } else {
          throw new UploadFailed(`upload to ${this.opts.client.url.toString()} failed (stream ${id}, seq ${first.seq}..${last.seq}): ${res.error ?? 'unknown error'}`)
        }
      } else {
        this.acknowledged(chunk, result)
      }
      pending.splice(0, chunk.events.length)
      for (const e of chunk.events) pendingBytes -= e.bytes.length + 1
      await writeCursor(streamDir, last.seq + 1)
      pos.next = last.seq + 1
    }
    for await (const rec of stream.records(pos.next, pos.size)) {
      if (rec.seq >= pos.size) break
      const expected = pos.next + pending.length
      if (rec.seq < expected) continue
      if (rec.seq > expected) {
        // Only retention removes records, oldest first: what it removed before we shipped it is
        // gone from the log. Counted and logged loudly; the cursor moves past it. A hole that
        // retention.log does not record was made by someone else: shipping stops there.
        while (pending.length > 0) await send()
        if (signal.aborted) return
        if (!await stream.retentionCovers(pos.next, rec.seq)) this.integrityFailure(id, 'EVENT_DELETED', pos.next, `records ${pos.next}..${rec.seq - 1} are missing and retention.log does not record their removal`)
        const lost = rec.seq - pos.next
        this.opts.metrics?.lostToRetention.inc(lost)
        this.logger.error({ stream: id, from_seq: pos.next, to_seq: rec.seq - 1, events: lost },
          'audit retention removed decision-log events before they were shipped; raise retention or fix the collector')
        await writeCursor(streamDir, rec.seq)
        pos.next = rec.seq
      }
      if (signal.aborted) return
      // the record as written: its leaf hash must equal the stored leaf (one positional read);
      // what was sent before it (all checked) goes first, the record itself never
      if (!leafHash(rec.bytes).equals(await stream.storedLeaf(rec.seq))) {
        while (pending.length > 0 && !signal.aborted) await send()
        this.integrityFailure(id, 'EVENT_MODIFIED', rec.seq, `record ${rec.seq} does not match its stored leaf hash: it was modified after it was written`)
      }
      if (isGapRecord(rec.bytes)) {
        // a gap record (events shed under on_full: shed) is the log's own note, not a decision:
        // OPA collectors would take it for a malformed event. Not shipped; counted and logged,
        // and the cursor moves past it once everything before it is acknowledged.
        while (pending.length > 0) await send()
        if (signal.aborted) return
        this.opts.metrics?.gapsSkipped.inc()
        this.logger.warn({ stream: id, seq: rec.seq, record: rec.bytes.toString('utf8') }, 'audit gap record (events shed by the log) not shipped: OPA collectors take decision events only; it stays in the audit log')
        await writeCursor(streamDir, rec.seq + 1)
        pos.next = rec.seq + 1
        continue
      }
      pending.push(rec)
      pendingBytes += rec.bytes.length + 1
      while (pendingBytes >= this.encoder.budget() && pending.length > 0) await send()
    }
    while (pending.length > 0 && !signal.aborted) await send()
  }

  /** A record that is not the log's: counted, logged, and shipping of the stream stops here (thrown). */
  private integrityFailure (stream: string, problem: 'EVENT_MODIFIED' | 'EVENT_DELETED', seq: number, message: string): never {
    this.opts.metrics?.integrityFailures.inc({ problem })
    this.logger.error({ code: 'PORTCULLIS_AUDIT_INVALID', problem, stream, seq },
      `decision-log shipping of stream ${stream} stopped at seq ${seq}: ${message}; nothing from it on is sent (run portcullis audit verify)`)
    throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `stream ${stream}, seq ${seq}: ${message}`, { stream, seq, problem })
  }

  private count (res: UploadResult): void {
    const outcome = res.ok ? 'ok' : res.status !== undefined ? 'http_error' : 'network_error'
    this.opts.metrics?.attempts.inc({ outcome, status: res.status !== undefined ? String(res.status) : 'none' })
  }

  private acknowledged (chunk: Chunk, result: RoundResult): void {
    result.events += chunk.events.length
    result.chunks++
    this.st.shipped += chunk.events.length
    this.st.lastSuccess = new Date().toISOString()
    this.opts.metrics?.shipped.inc(chunk.events.length)
    this.opts.metrics?.bytes.inc(chunk.body.length)
    this.opts.metrics?.lastSuccess.set(Date.now() / 1000)
  }
}

const GAP_AFTER_SEQ = Buffer.from('"type":"gap"')

/** Whether a record is the log's gap record: `{"seq":N,"type":"gap",...}` (writer.ts gapEvent). */
export function isGapRecord (bytes: Buffer): boolean {
  const comma = bytes.indexOf(0x2c /* , */)
  return comma > 0 && comma < 32 && bytes.subarray(comma + 1, comma + 1 + GAP_AFTER_SEQ.length).equals(GAP_AFTER_SEQ)
}

/** The decision_id of a stored event, for log lines about it (records are JSON objects). */
function decisionId (e: ShipEvent): string | undefined {
  try {
    const v = JSON.parse(e.bytes.toString('utf8')) as { decision_id?: unknown }
    return typeof v.decision_id === 'string' ? v.decision_id : undefined
  } catch {
    return undefined
  }
}
