/**
 * Bundle activation: one transaction per change. A bundle is loaded, verified and compiled off
 * to the side, a whole new PolicySnapshot is built with it, and only then is the active
 * snapshot reference swapped. Any failure leaves the previous snapshot (last known good)
 * serving and is recorded in the bundle's status. Changes are applied one at a time.
 */
import { EventEmitter } from 'node:events'
import { compareUtf8 } from '../canonical-json.js'
import { BundleError, toPortcullisError, type ErrorCode } from '../errors.js'
import { compileBundle, type CompiledBundle, type EngineOptions } from '../policy/engine.js'
import { PolicySnapshot } from '../policy/snapshot.js'
import { silentLogger, type Logger } from '../log.js'
import { rootsOverlap } from '../policy/bundle.js'
import { bundleNameOf, loadBundle, loadBundleArchive, type LoadOptions } from './load.js'
import type { SignatureStatus } from './verify.js'

/** Plugin-style state, as OPA reports it: NOT_READY until first activation, then OK or ERROR. */
export type BundleState = 'NOT_READY' | 'OK' | 'ERROR'

export interface BundleStatus {
  name: string
  source: string
  state: BundleState
  /** Revision being served (absent until first activation). */
  active_revision?: string
  activated_at?: string
  last_attempt_at?: string
  last_error?: { code: ErrorCode, message: string, at: string }
  signature?: SignatureStatus
  builtins?: string[]
  cacheable?: boolean
  /** `file` (bundles directory) or `remote` (a bundle server, src/bundles/service/). */
  type?: 'file' | 'remote'
  /** Remote bundles: what the downloader reports (see RemoteBundleStatus). */
  service?: string
  etag?: string
  last_request?: string
  last_successful_request?: string
  last_successful_download?: string
  /** Where the active revision came from: the server, or the persisted copy of an earlier download. */
  loaded_from?: 'download' | 'persisted'
}

/** The fields a downloader keeps current beside the manager's own (they survive activations). */
export type RemoteBundleStatus = Pick<BundleStatus, 'service' | 'etag' | 'last_request' | 'last_successful_request' | 'last_successful_download' | 'loaded_from'>

/** How one load reads its bundle, beside the manager's defaults. */
export interface LoadRequest {
  /** The `.tar.gz` bytes (a download); absent: read `source` from disk. */
  archive?: Buffer
  /** Signing policy and limits for this bundle, over the manager's `load` options. */
  options?: Omit<LoadOptions, 'name'>
  /**
   * Where the bundle comes from (default `file`: the bundles directory). A name belongs to one
   * kind: a file named like a remote bundle (`claimRemote`) is refused, never swapped in.
   */
  kind?: 'file' | 'remote'
}

export type { Logger } from '../log.js'

export interface BundleManagerOptions {
  load?: Omit<LoadOptions, 'name'>
  engine?: EngineOptions
  logger?: Logger
  now?: () => Date
}

export interface ActivationEvent {
  generation: number
  bundle: string
  revision?: string
  removed?: boolean
}

/**
 * Holds the active PolicySnapshot. Emits `activate` (ActivationEvent) after each swap so that
 * caches learn of new revisions by trigger, not by polling, and `error` is never emitted:
 * failures are statuses, not exceptions.
 */
export class BundleManager extends EventEmitter<{ activate: [ActivationEvent], failure: [{ bundle: string, error: BundleError }] }> {
  #snapshot = PolicySnapshot.empty()
  #active = new Map<string, { compiled: CompiledBundle, activatedAt: Date }>()
  #status = new Map<string, BundleStatus>()
  #remote = new Map<string, RemoteBundleStatus>()
  /** Names of the bundles that come from bundle servers (claimRemote). */
  #remoteNames = new Set<string>()
  #queue: Promise<unknown> = Promise.resolve()
  readonly #opts: BundleManagerOptions
  readonly #log: Logger
  #generation = 0

  constructor (opts: BundleManagerOptions = {}) {
    super()
    this.#opts = opts
    this.#log = opts.logger ?? silentLogger
  }

  /** The snapshot serving now. Take it once per decision. */
  get snapshot (): PolicySnapshot { return this.#snapshot }

  #now (): Date { return this.#opts.now?.() ?? new Date() }

  /** Registers a bundle as expected, so readiness waits for it. */
  expect (name: string, source: string): void {
    if (!this.#status.has(name)) this.#status.set(name, { name, source, state: 'NOT_READY' })
  }

  /**
   * Ties `name` to a bundle server (a downloader calls it before anything loads): from now on a
   * file of that name in the bundles directory can neither replace nor remove it.
   */
  claimRemote (name: string, source: string): void {
    this.#remoteNames.add(name)
    this.expect(name, source)
  }

  /**
   * Loads, verifies, compiles and activates the bundle at `source`. Resolves to true when it is
   * now active, false when it was rejected (the previous revision keeps serving).
   */
  load (source: string, name?: string, request: LoadRequest = {}): Promise<boolean> {
    return this.#enqueue(async () => {
      const bundleName = name ?? bundleNameOf(source)
      const attemptAt = this.#now()
      if ((request.kind ?? 'file') === 'file' && this.#remoteNames.has(bundleName)) {
        this.#nameConflict(bundleName, source, attemptAt)
        return false
      }
      this.expect(bundleName, source)
      try {
        const opts = { ...this.#opts.load, ...request.options, name: bundleName }
        const bundle = request.archive !== undefined ? await loadBundleArchive(request.archive, source, opts) : await loadBundle(source, opts)
        const compiled = compileBundle(bundle, this.#opts.engine)
        for (const [other, { compiled: o }] of this.#active) {
          if (other === bundleName) continue
          for (const r of bundle.manifest.roots) {
            for (const q of o.bundle.manifest.roots) {
              if (rootsOverlap(r, q)) {
                throw new BundleError('PORTCULLIS_BUNDLE_ROOTS_OVERLAP',
                  `${source}: root ${JSON.stringify(r)} overlaps root ${JSON.stringify(q)} of active bundle ${other}`,
                  { source, bundle: bundleName, other, roots: [r, q] })
              }
            }
          }
        }
        const activatedAt = this.#now()
        const next = new Map(this.#active)
        next.set(bundleName, { compiled, activatedAt })
        await this.#swap(next)
        const status: BundleStatus = {
          name: bundleName,
          source,
          state: 'OK',
          active_revision: bundle.manifest.revision,
          activated_at: activatedAt.toISOString(),
          last_attempt_at: attemptAt.toISOString(),
          signature: bundle.signature,
          builtins: compiled.builtins,
          cacheable: compiled.cacheable,
        }
        this.#status.set(bundleName, status)
        this.#log.info({ bundle: bundleName, revision: bundle.manifest.revision, generation: this.#generation }, 'bundle activated')
        this.emit('activate', { generation: this.#generation, bundle: bundleName, revision: bundle.manifest.revision })
        return true
      } catch (err) {
        const error = err instanceof BundleError ? err : new BundleError('PORTCULLIS_BUNDLE_WASM_INVALID', toPortcullisError(err).message, { source }, { cause: err })
        const previous = this.#status.get(bundleName)
        this.#status.set(bundleName, {
          ...(previous ?? { name: bundleName, source }),
          name: bundleName,
          source,
          state: 'ERROR',
          last_attempt_at: attemptAt.toISOString(),
          last_error: { code: error.code, message: error.message, at: attemptAt.toISOString() },
        })
        this.#log.error({ bundle: bundleName, code: error.code, err: error.message }, 'bundle rejected; previous revision keeps serving')
        this.emit('failure', { bundle: bundleName, error })
        return false
      }
    })
  }

  /**
   * A file in the bundles directory named like a remote bundle: refused (logged, counted by the
   * `failure` event, recorded in the remote bundle's status), the remote bundle keeps serving.
   */
  #nameConflict (name: string, source: string, at: Date): void {
    const error = new BundleError('PORTCULLIS_BUNDLE_NAME_CONFLICT',
      `${source}: a bundle named ${JSON.stringify(name)} comes from a bundle server; a file of the same name in the bundles directory is refused (rename the file)`,
      { source, bundle: name })
    const previous = this.#status.get(name)
    if (previous !== undefined) {
      this.#status.set(name, { ...previous, state: 'ERROR', last_error: { code: error.code, message: error.message, at: at.toISOString() } })
    }
    this.#log.error({ bundle: name, source, code: error.code, err: error.message }, 'bundle file refused: the name belongs to a remote bundle')
    this.emit('failure', { bundle: name, error })
  }

  /**
   * Records a failure that happened before loading (a download that failed): the bundle's state
   * becomes ERROR with the code, and whatever revision is active keeps serving.
   */
  reportFailure (name: string, source: string, error: BundleError): void {
    const at = this.#now().toISOString()
    const previous = this.#status.get(name)
    this.#status.set(name, {
      ...(previous ?? { name, source }),
      name,
      source,
      state: 'ERROR',
      last_attempt_at: at,
      last_error: { code: error.code, message: error.message, at },
    })
    // Not a `failure` event: nothing was activated or refused (the downloader counts its own outcomes).
    this.#log.error({ bundle: name, code: error.code, err: error.message }, 'bundle update failed; previous revision keeps serving')
  }

  /**
   * A check found the active revision current (HTTP 304): an earlier error is over (OPA clears it
   * too) — but only when the 304 names the ETag of the active download; a 304 for some other
   * ETag says nothing about the bundle that serves.
   */
  reportCurrent (name: string, etag: string | undefined): void {
    const s = this.#status.get(name)
    if (s === undefined || s.active_revision === undefined || s.state === 'OK') return
    const activeEtag = this.#remote.get(name)?.etag
    if (etag === undefined || activeEtag === undefined || etag !== activeEtag) return
    const { last_error: _cleared, ...rest } = s
    this.#status.set(name, { ...rest, state: 'OK' })
  }

  /** Keeps a remote bundle's download facts beside its status (merged into `status()`). */
  setRemoteStatus (name: string, patch: RemoteBundleStatus): void {
    this.#remote.set(name, { ...this.#remote.get(name), ...patch })
  }

  /** The status of one bundle, or undefined. */
  statusOf (name: string): BundleStatus | undefined {
    const s = this.#status.get(name)
    if (s === undefined) return undefined
    const remote = this.#remote.get(name)
    return remote === undefined ? s : { ...s, type: 'remote', ...remote }
  }

  /**
   * Deactivates a bundle (its file or directory was removed). A file's removal never removes a
   * remote bundle of the same name (`kind` defaults to `file`).
   */
  remove (name: string, kind: 'file' | 'remote' = 'file'): Promise<boolean> {
    return this.#enqueue(async () => {
      if (kind === 'file' && this.#remoteNames.has(name)) {
        this.#log.warn({ bundle: name }, 'bundle file removed; the remote bundle of the same name keeps serving')
        return false
      }
      this.#status.delete(name)
      if (!this.#active.has(name)) return false
      const next = new Map(this.#active)
      next.delete(name)
      await this.#swap(next)
      this.#log.info({ bundle: name, generation: this.#generation }, 'bundle removed')
      this.emit('activate', { generation: this.#generation, bundle: name, removed: true })
      return true
    })
  }

  async #swap (next: Map<string, { compiled: CompiledBundle, activatedAt: Date }>): Promise<void> {
    // Build first (may throw), then swap: the serving snapshot is never half-built. Changes are
    // applied one at a time (#enqueue), so nothing else swaps while the build awaits.
    const snapshot = await PolicySnapshot.build(this.#generation + 1, [...next.values()], this.#snapshot)
    this.#generation += 1
    this.#active = next
    this.#snapshot = snapshot
    snapshot.releaseLargeData()
  }

  #enqueue<T> (op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op)
    this.#queue = run.catch(() => {})
    return run
  }

  /** Resolves once every queued change has been applied. */
  async settled (): Promise<void> {
    await this.#queue
  }

  status (): BundleStatus[] {
    return [...this.#status.keys()].sort(compareUtf8).map((n) => this.statusOf(n) as BundleStatus)
  }

  /** True when every expected bundle has activated at least once (OPA `/health?bundles`). */
  ready (): boolean {
    return [...this.#status.values()].every((s) => s.active_revision !== undefined)
  }
}
