/**
 * One remote bundle kept current from a bundle server, as OPA's downloader and bundle plugin do
 * it (v1/download/download.go, v1/plugins/bundle/plugin.go):
 *
 * - each poll is `GET {url}/{resource}` with `If-None-Match: <ETag of the active bundle>`; 304
 *   keeps the active bundle, 200 is loaded through the BundleManager's one transaction (same
 *   read limits, signature verification and activation as a file; never half-loaded);
 * - after a success the next poll waits uniformly in [min_delay, max_delay]; after a failure it
 *   backs off exponentially from 100 ms (×1.6 per retry, ±20 % jitter, capped at max_delay —
 *   OPA's `util.DefaultBackoff`, src/backoff.ts, shared with the decision-log shipper);
 * - long polling: with `long_polling_timeout_seconds` the request carries `Prefer: wait=N`; it
 *   stays on only while the server answers `Content-Type: application/vnd.openpolicyagent.bundles`
 *   (a 304 keeps the previous answer, and OPA's exact header only), and the next long poll then
 *   starts at once — at most one a second (MIN_LONG_POLL_INTERVAL_MS);
 * - any failure (request, status, size, archive, signature, activation) keeps the active bundle,
 *   is recorded in the bundle's status with its code; If-None-Match only ever carries the
 *   active bundle's ETag, so the next poll fetches the new bundle again rather than a 304;
 * - `persist`: the exact bytes of each activated download are saved (persist.ts) and loaded at
 *   start, before the first request, with their ETag.
 */
import { periodicDelayMs, retryDelayMs } from '../../backoff.js'
import { BundleError, toPortcullisError } from '../../errors.js'
import { silentLogger, type Logger } from '../../log.js'
import type { Metrics } from '../../metrics/index.js'
import type { BundleManager } from '../activate.js'
import type { LoadOptions } from '../load.js'
import { bundleUrl, fetchBundle, type ServiceOptions } from './client.js'
import { readPersisted, savePersisted } from './persist.js'

export const OPA_BUNDLE_CONTENT_TYPE = 'application/vnd.openpolicyagent.bundles'
/** Long polls start at most this often (a server that does not hold them must not be polled in a loop). */
export const MIN_LONG_POLL_INTERVAL_MS = 1000

export interface RemoteBundleOptions {
  name: string
  service: ServiceOptions
  resource: string
  polling: { minDelayMs: number, maxDelayMs: number, longPollingTimeoutSeconds?: number }
  /** Signing policy and archive limits for this bundle. */
  load: Omit<LoadOptions, 'name'>
  /** Largest download in bytes, compressed (`bundles.max_bytes`; the archive reader limits what it inflates to). */
  maxBytes: number
  /** `<persistence_directory>/bundles/<name>` when `persist: true`. */
  persistDir?: string
}

export interface DownloaderDeps {
  logger?: Logger
  metrics?: Metrics
  /** Uniform [0, 1) source for jitter (tests may fix it). */
  random?: () => number
  now?: () => Date
}

export type PollOutcome = 'downloaded' | 'not_modified' | 'rejected' | 'failed' | 'stopped'

export class BundleDownloader {
  readonly name: string
  readonly url: string
  readonly #manager: BundleManager
  readonly #opts: RemoteBundleOptions
  readonly #log: Logger
  readonly #metrics: Metrics | undefined
  readonly #random: () => number
  readonly #now: () => Date
  readonly #abort = new AbortController()
  /**
   * ETag of the bundle this downloader last activated (OPA's `p.etags[name]`), and the only one
   * ever sent as If-None-Match: the ETag of a download that failed (refused, not activated) is
   * never remembered, so the server cannot answer 304 to a bundle that is not in service.
   */
  #activeEtag: string | undefined
  #longPoll: boolean
  #closed = false
  #loop: Promise<void> | undefined
  #sleeping: { timer: NodeJS.Timeout, wake: () => void } | undefined
  #waiters: Array<(o: PollOutcome) => void> = []

  constructor (manager: BundleManager, opts: RemoteBundleOptions, deps: DownloaderDeps = {}) {
    this.name = opts.name
    this.url = bundleUrl(opts.service, opts.resource)
    this.#manager = manager
    this.#opts = opts
    this.#log = deps.logger ?? silentLogger
    this.#metrics = deps.metrics
    this.#random = deps.random ?? Math.random
    this.#now = deps.now ?? (() => new Date())
    // OPA starts with long polling on when it is configured; the first answer decides after that.
    this.#longPoll = opts.polling.longPollingTimeoutSeconds !== undefined
    // The name belongs to this bundle server from now on: a file of that name is refused.
    manager.claimRemote(this.name, this.url)
    manager.setRemoteStatus(this.name, { service: opts.service.name })
  }

  /** Loads the persisted copy of the last good download, if any (OPA does this before the first request). */
  async loadPersisted (): Promise<boolean> {
    const dir = this.#opts.persistDir
    if (dir === undefined) return false
    let persisted
    try {
      persisted = await readPersisted(dir)
    } catch (err) {
      this.#log.error({ bundle: this.name, err: (err as Error).message }, 'cannot read the persisted bundle')
      return false
    }
    if (persisted === undefined) return false
    const ok = await this.#manager.load(persisted.file, this.name, { archive: persisted.archive, options: this.#opts.load, kind: 'remote' })
    if (!ok) {
      this.#log.error({ bundle: this.name, file: persisted.file, code: this.#manager.statusOf(this.name)?.last_error?.code }, 'persisted bundle refused; waiting for the bundle server')
      return false
    }
    this.#activeEtag = persisted.etag
    this.#manager.setRemoteStatus(this.name, { loaded_from: 'persisted', etag: persisted.etag })
    this.#log.info({ bundle: this.name, file: persisted.file }, 'persisted bundle activated')
    return true
  }

  /** Starts polling. */
  start (): void {
    if (this.#loop !== undefined || this.#closed) return
    this.#loop = this.#run()
  }

  /**
   * Makes the next poll happen now (instead of after its delay) and resolves with its outcome.
   * For operators' tooling and tests; a poll in flight is finished first.
   */
  trigger (): Promise<PollOutcome> {
    if (this.#closed) return Promise.resolve('stopped')
    const p = new Promise<PollOutcome>((resolve) => { this.#waiters.push(resolve) })
    this.#sleeping?.wake()
    return p
  }

  /** Stops polling: aborts the request in flight, clears the timer, waits for the loop to end. */
  async close (): Promise<void> {
    this.#closed = true
    this.#abort.abort()
    this.#sleeping?.wake()
    await this.#loop
    for (const w of this.#waiters.splice(0)) w('stopped')
  }

  async #run (): Promise<void> {
    let retry = 0
    while (!this.#closed) {
      const waiters = this.#waiters.splice(0)
      const started = Date.now()
      const outcome = await this.pollOnce()
      for (const w of waiters) w(outcome)
      if (this.#closed) return
      let delay: number
      if (outcome === 'failed' || outcome === 'rejected') {
        delay = retryDelayMs(retry, this.#opts.polling.maxDelayMs, this.#random)
        retry++
      } else {
        retry = 0
        const { minDelayMs, maxDelayMs, longPollingTimeoutSeconds } = this.#opts.polling
        // The next long poll starts at once, as in OPA — but at most one a second: a server that
        // answers a long poll at once (no wait held) would otherwise get requests in a tight loop.
        delay = this.#longPoll && longPollingTimeoutSeconds !== undefined ? Math.max(0, MIN_LONG_POLL_INTERVAL_MS - (Date.now() - started)) : periodicDelayMs(minDelayMs, maxDelayMs, this.#random)
      }
      if (this.#waiters.length > 0) delay = 0
      await this.#sleep(delay)
    }
  }

  #sleep (ms: number): Promise<void> {
    if (ms <= 0 || this.#closed) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer)
        this.#sleeping = undefined
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#sleeping = { timer, wake }
    })
  }

  /** One request and what follows from its answer. Never throws. */
  async pollOnce (): Promise<PollOutcome> {
    if (this.#closed) return 'stopped'
    const started = this.#now()
    const t0 = process.hrtime.bigint()
    const waitSeconds = this.#longPoll ? this.#opts.polling.longPollingTimeoutSeconds : undefined
    this.#manager.setRemoteStatus(this.name, { last_request: started.toISOString() })
    const record = (outcome: Exclude<PollOutcome, 'stopped'>): void => {
      this.#metrics?.bundleDownloads.inc({ bundle: this.name, outcome })
      this.#metrics?.bundleDownloadDuration.observe({ bundle: this.name, outcome }, Number(process.hrtime.bigint() - t0) / 1e9)
    }
    let res
    try {
      res = await fetchBundle(this.#opts.service, {
        resource: this.#opts.resource,
        ...(this.#activeEtag !== undefined ? { etag: this.#activeEtag } : {}),
        ...(waitSeconds !== undefined ? { waitSeconds } : {}),
        maxBytes: this.#opts.maxBytes,
        signal: this.#abort.signal,
      })
    } catch (err) {
      if (this.#closed) return 'stopped'
      const error = err instanceof BundleError ? err : new BundleError('PORTCULLIS_BUNDLE_DOWNLOAD_FAILED', `${this.url}: ${toPortcullisError(err).message}`, { url: this.url }, { cause: err })
      this.#manager.reportFailure(this.name, this.url, error)
      record('failed')
      return 'failed'
    }
    const okAt = this.#now().toISOString()
    this.#manager.setRemoteStatus(this.name, { last_successful_request: okAt })

    if (res.status === 304) {
      // A 304 confirms the active bundle; the next request still asks with the active ETag
      // (never one a 304 names), so a bundle that was never activated is fetched again.
      const confirmed = res.etag ?? this.#activeEtag
      this.#manager.reportCurrent(this.name, confirmed)
      // The active bundle is confirmed current: a success for monitoring.
      this.#metrics?.bundleLastSuccess.set({ bundle: this.name }, Date.now() / 1000)
      record('not_modified')
      return 'not_modified'
    }

    // OPA compares the header exactly: a parameter (`; charset=binary`) turns long polling off
    this.#longPoll = this.#opts.polling.longPollingTimeoutSeconds !== undefined && res.contentType === OPA_BUNDLE_CONTENT_TYPE
    const ok = await this.#manager.load(this.url, this.name, { archive: res.body, options: this.#opts.load, kind: 'remote' })
    if (!ok) {
      record('rejected')
      return 'rejected'
    }
    this.#activeEtag = res.etag
    // Only a download that activated is a successful download: one refused by the signature
    // check or activation must not make monitoring believe the bundle is current.
    this.#manager.setRemoteStatus(this.name, { etag: res.etag, loaded_from: 'download', last_successful_download: okAt })
    this.#metrics?.bundleLastSuccess.set({ bundle: this.name }, Date.now() / 1000)
    record('downloaded')
    if (this.#opts.persistDir !== undefined) {
      try {
        await savePersisted(this.#opts.persistDir, res.body, { ...(res.etag !== undefined ? { etag: res.etag } : {}), ...(this.#revision() !== undefined ? { revision: this.#revision() } : {}) })
      } catch (err) {
        // The bundle is active; only the copy for the next start is missing (OPA logs it too).
        this.#log.error({ bundle: this.name, dir: this.#opts.persistDir, err: (err as Error).message }, 'cannot persist the downloaded bundle')
      }
    }
    return 'downloaded'
  }

  #revision (): string | undefined {
    return this.#manager.statusOf(this.name)?.active_revision
  }
}
