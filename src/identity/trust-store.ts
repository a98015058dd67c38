/**
 * Trust bundles per trust domain, never merged across trust domains (SPIFFE X509-SVID §5.1:
 * validate against the bundle of the SVID's own trust domain).
 *
 * Each trust domain has one or more sources (PEM files, SPIFFE bundle files, JWKS files, one
 * bundle endpoint). Every source keeps its last good content; the domain's bundle is the union
 * of those. A source that fails to (re)load keeps its previous content and records the error
 * in status(). When a domain's bundle actually changes, 'trust-change' is emitted so caches
 * of verified credentials can be emptied.
 */
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import { IdentityError, toPortcullisError } from '../errors.js'
import type { IdentityConfig, TrustDomainConfig } from '../config/schema.js'

type WatchConfig = IdentityConfig['watch']
import { mergeBundle, parseJwks, parsePemAuthorities, parseSpiffeBundle, type BundleContent, type TrustBundle } from './bundle.js'
import { BundleEndpointPoller, realTimers, type FetchLike, type Timers } from './bundle-endpoint.js'

/** Delay of the trailing re-read after a watched change (longer than chokidar's 50 ms change throttle). */
const TRAILING_RELOAD_MS = 100

export type SourceKind = 'x509_pem' | 'spiffe_bundle' | 'jwks' | 'bundle_endpoint' | WorkloadApiSourceKind
/** Sources fed by the SPIFFE Workload API client (workload-api/), one per stream. */
export type WorkloadApiSourceKind = 'workload_api_x509' | 'workload_api_jwt'

export interface SourceStatus {
  kind: SourceKind
  /** File path or URL. */
  source: string
  /** `spiffe_sequence` of the last good content, when it has one. */
  sequence?: number
  /** When the last good content was loaded (RFC 3339). */
  loaded_at?: string
  /** The last failure, kept until the next success. */
  last_error?: { code: string, message: string, at: string }
  /** Bundle endpoint only: when the next poll is due. */
  next_refresh_at?: string
}

export interface TrustDomainStatus {
  /** OK: every source loaded; ERROR: some source's last attempt failed; NOT_READY: nothing loaded yet. */
  state: 'OK' | 'ERROR' | 'NOT_READY'
  sources: SourceStatus[]
  x509_authorities: number
  jwt_authorities: number
  sequence?: number
  loaded_at?: string
  last_error?: { code: string, message: string, at: string }
  digest?: string
}

export interface TrustChangeEvent {
  trustDomain: string
  digest: string
  previousDigest?: string
}

export interface Logger {
  debug?: (obj: object, msg?: string) => void
  info?: (obj: object, msg?: string) => void
  warn?: (obj: object, msg?: string) => void
  error?: (obj: object, msg?: string) => void
}

interface Source {
  kind: SourceKind
  source: string
  content?: BundleContent
  loadedAt?: Date
  lastError?: { code: string, message: string, at: Date }
  poller?: BundleEndpointPoller
}

function isFileKind (k: SourceKind): k is Exclude<SourceKind, 'bundle_endpoint' | WorkloadApiSourceKind> {
  return k === 'x509_pem' || k === 'spiffe_bundle' || k === 'jwks'
}

export interface TrustStoreOptions {
  now?: () => Date
  fetch?: FetchLike
  logger?: Logger
  watch?: WatchConfig
  timers?: Timers
}

const PARSERS: Record<Exclude<SourceKind, 'bundle_endpoint' | WorkloadApiSourceKind>, (text: string, file: string) => BundleContent> = {
  x509_pem: parsePemAuthorities,
  spiffe_bundle: parseSpiffeBundle,
  jwks: parseJwks,
}

export class TrustStore extends EventEmitter {
  readonly #domains = new Map<string, Source[]>()
  /** Trust domains that exist only because a Workload API stream delivered them (federated ones included). */
  readonly #delivered = new Set<string>()
  readonly #bundles = new Map<string, TrustBundle>()
  readonly #now: () => Date
  readonly #logger: Logger
  readonly #watchConfig: WatchConfig | undefined
  readonly #timers: Timers
  readonly #debounce = new Map<string, unknown>()
  #watcher: FSWatcher | undefined
  #closed = false
  /** Resolves once every source has been tried once (failures included: see status()). */
  readonly ready: Promise<void>

  constructor (domains: Record<string, TrustDomainConfig>, opts: TrustStoreOptions = {}) {
    super()
    this.#now = opts.now ?? (() => new Date())
    this.#logger = opts.logger ?? {}
    this.#watchConfig = opts.watch
    this.#timers = opts.timers ?? realTimers
    for (const [td, cfg] of Object.entries(domains)) {
      const sources: Source[] = [
        ...cfg.x509_authorities.map((f) => ({ kind: 'x509_pem' as const, source: resolve(f) })),
        ...cfg.spiffe_bundles.map((f) => ({ kind: 'spiffe_bundle' as const, source: resolve(f) })),
        ...cfg.jwt_authorities.map((f) => ({ kind: 'jwks' as const, source: resolve(f) })),
      ]
      if (cfg.bundle_endpoint !== undefined) {
        const src: Source = { kind: 'bundle_endpoint', source: cfg.bundle_endpoint.url }
        const pollerOpts: { fetch?: FetchLike, timers?: Timers, now?: () => Date } = { timers: this.#timers, now: this.#now }
        if (opts.fetch !== undefined) pollerOpts.fetch = opts.fetch
        src.poller = new BundleEndpointPoller(cfg.bundle_endpoint, {
          onBundle: (content) => this.#succeeded(td, src, content),
          onError: (err) => this.#failed(td, src, err),
        }, pollerOpts)
        sources.push(src)
      }
      this.#domains.set(td, sources)
    }
    this.ready = this.#start()
    // status() reports failures; ready never rejects.
    this.ready.catch(() => {})
  }

  async #start (): Promise<void> {
    await Promise.all([...this.#domains.entries()].flatMap(([td, sources]) => sources.map(async (s) => await this.#load(td, s))))
    if (this.#closed || this.#watchConfig?.enabled !== true) return
    const files = [...this.#domains.values()].flat().filter((s) => isFileKind(s.kind)).map((s) => s.source)
    if (files.length === 0) return
    // Watch the directories, not the files: Kubernetes ConfigMap/Secret volumes and SPIRE
    // helpers replace files by renaming (symlink swaps), which a file watch can miss.
    const dirs = [...new Set(files.map((f) => dirname(f)))]
    const watcher = watch(dirs, { ignoreInitial: true, depth: 0, usePolling: this.#watchConfig.use_polling, interval: 100 })
    this.#watcher = watcher
    for (const event of ['add', 'change', 'unlink'] as const) watcher.on(event, (p: string) => this.#changed(dirname(resolve(p))))
    watcher.on('error', (err: unknown) => this.#logger.warn?.({ err }, 'identity: trust bundle watcher error'))
    await new Promise<void>((res) => watcher.once('ready', () => res()))
  }

  #changed (dir: string, trailing = false): void {
    if (this.#closed) return
    const existing = this.#debounce.get(dir)
    if (existing !== undefined) this.#timers.clearTimeout(existing)
    this.#debounce.set(dir, this.#timers.setTimeout(() => {
      this.#debounce.delete(dir)
      void this.reload((s) => dirname(s.source) === dir).then(() => {
        // chokidar drops a 'change' that follows another on the same path within 50 ms; one
        // trailing re-read after that window catches a second quick write. Unchanged content
        // is not a change, so the extra read costs nothing else.
        if (!trailing && !this.#debounce.has(dir)) this.#changed(dir, true)
      })
    }, trailing ? TRAILING_RELOAD_MS : this.#watchConfig?.debounce_ms ?? 0))
  }

  async #load (td: string, s: Source): Promise<void> {
    if (s.kind === 'bundle_endpoint') {
      await s.poller?.poll()
      return
    }
    if (!isFileKind(s.kind)) return
    const kind = s.kind
    try {
      const text = await readFile(s.source, 'utf8')
      this.#succeeded(td, s, PARSERS[kind](text, s.source))
    } catch (err) {
      this.#failed(td, s, err instanceof IdentityError ? err : new IdentityError('PORTCULLIS_IDENTITY_BUNDLE_INVALID', `trust bundle ${s.source}: ${(err as Error).message}`, { file: s.source }, { cause: err }))
    }
  }

  #succeeded (td: string, s: Source, content: BundleContent): void {
    if (this.#closed) return
    s.content = content
    s.loadedAt = this.#now()
    delete s.lastError
    this.#logger.debug?.({ trust_domain: td, source: s.source, x509: content.x509Authorities.length, jwt: content.jwtAuthorities.length }, 'identity: trust bundle source loaded')
    this.#recompute(td)
  }

  #failed (td: string, s: Source, err: unknown): void {
    if (this.#closed) return
    const e = toPortcullisError(err, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
    s.lastError = { code: e.code, message: e.message, at: this.#now() }
    this.#logger.warn?.({ trust_domain: td, source: s.source, code: e.code, err: e.message }, 'identity: trust bundle source failed; keeping the last good bundle')
  }

  #recompute (td: string): void {
    const sources = this.#domains.get(td) ?? []
    const loaded = sources.filter((s) => s.content !== undefined).map((s) => s.content as BundleContent)
    if (loaded.length === 0) {
      // Only a Workload API source can take its content back (the agent stopped delivering the
      // domain): the domain then has no bundle, and credentials of it are no longer trusted.
      const prev = this.#bundles.get(td)
      if (prev === undefined) return
      this.#bundles.delete(td)
      this.#logger.info?.({ trust_domain: td, previous_digest: prev.digest }, 'identity: trust bundle removed')
      this.emit('trust-change', { trustDomain: td, digest: '', previousDigest: prev.digest } satisfies TrustChangeEvent)
      return
    }
    const next = mergeBundle(td, loaded)
    const prev = this.#bundles.get(td)
    if (prev?.digest === next.digest) {
      // Same keys; keep sequence/hint current without signalling a change.
      this.#bundles.set(td, next)
      return
    }
    this.#bundles.set(td, next)
    const ev: TrustChangeEvent = { trustDomain: td, digest: next.digest }
    if (prev !== undefined) ev.previousDigest = prev.digest
    this.#logger.info?.({ trust_domain: td, digest: next.digest, x509: next.x509Authorities.length, jwt: next.jwtAuthorities.length }, 'identity: trust bundle changed')
    this.emit('trust-change', ev)
  }

  /**
   * The whole state of one Workload API stream (every message is the full state, SPIFFE Workload
   * API §6): each trust domain in `contents` gets this stream's source (created, for a domain
   * that is not configured, such as a federated one), and a domain the stream delivered before
   * but not now loses it. Per trust domain, unioned with the domain's other sources.
   */
  setWorkloadApiContents (kind: WorkloadApiSourceKind, contents: ReadonlyMap<string, BundleContent>, source: string): void {
    if (this.#closed) return
    for (const [td, content] of contents) {
      let sources = this.#domains.get(td)
      if (sources === undefined) {
        sources = []
        this.#domains.set(td, sources)
        this.#delivered.add(td)
      }
      let s = sources.find((x) => x.kind === kind)
      if (s === undefined) {
        s = { kind, source }
        sources.push(s)
      }
      this.#succeeded(td, s, content)
    }
    for (const [td, sources] of [...this.#domains]) {
      if (contents.has(td)) continue
      const i = sources.findIndex((x) => x.kind === kind)
      if (i < 0) continue
      sources.splice(i, 1)
      if (sources.length === 0 && this.#delivered.has(td)) {
        this.#domains.delete(td)
        this.#delivered.delete(td)
      }
      this.#recompute(td)
    }
  }

  /** Records a failed Workload API message in the status of that stream's sources (their content is kept). */
  workloadApiFailed (kind: WorkloadApiSourceKind, err: unknown): void {
    for (const [td, sources] of this.#domains) {
      for (const s of sources) if (s.kind === kind) this.#failed(td, s, err)
    }
  }

  /** The current bundle of a trust domain, or undefined when none is configured or none loaded yet. */
  bundle (trustDomain: string): TrustBundle | undefined {
    return this.#bundles.get(trustDomain)
  }

  /** True when the trust domain is configured (whether or not it has loaded). */
  has (trustDomain: string): boolean {
    return this.#domains.has(trustDomain)
  }

  trustDomains (): string[] {
    return [...this.#domains.keys()]
  }

  /** Re-reads file sources (all, or those matching `filter`). */
  async reload (filter: (s: { kind: SourceKind, source: string }) => boolean = () => true): Promise<void> {
    await Promise.all([...this.#domains.entries()].flatMap(([td, sources]) => sources.filter((s) => isFileKind(s.kind) && filter(s)).map(async (s) => await this.#load(td, s))))
  }

  /** Polls bundle endpoints now (all, or one trust domain's). */
  async refresh (trustDomain?: string): Promise<void> {
    await Promise.all([...this.#domains.entries()].filter(([td]) => trustDomain === undefined || td === trustDomain).flatMap(([, sources]) => sources.filter((s) => s.poller !== undefined).map(async (s) => await s.poller?.poll())))
  }

  status (): Record<string, TrustDomainStatus> {
    const out: Record<string, TrustDomainStatus> = {}
    for (const [td, sources] of this.#domains) {
      const bundle = this.#bundles.get(td)
      const st: TrustDomainStatus = {
        state: bundle === undefined ? 'NOT_READY' : sources.some((s) => s.lastError !== undefined) ? 'ERROR' : 'OK',
        sources: sources.map((s) => {
          const ss: SourceStatus = { kind: s.kind, source: s.source }
          if (s.content?.sequence !== undefined) ss.sequence = s.content.sequence
          if (s.loadedAt !== undefined) ss.loaded_at = s.loadedAt.toISOString()
          if (s.lastError !== undefined) ss.last_error = { code: s.lastError.code, message: s.lastError.message, at: s.lastError.at.toISOString() }
          if (s.poller?.nextRefreshAt !== undefined) ss.next_refresh_at = s.poller.nextRefreshAt.toISOString()
          return ss
        }),
        x509_authorities: bundle?.x509Authorities.length ?? 0,
        jwt_authorities: bundle?.jwtAuthorities.length ?? 0,
      }
      if (bundle?.sequence !== undefined) st.sequence = bundle.sequence
      if (bundle !== undefined) st.digest = bundle.digest
      const loads = sources.map((s) => s.loadedAt).filter((d): d is Date => d !== undefined)
      if (loads.length > 0) st.loaded_at = new Date(Math.max(...loads.map((d) => d.getTime()))).toISOString()
      const errors = sources.map((s) => s.lastError).filter((e) => e !== undefined)
      const latest = errors.sort((a, b) => b.at.getTime() - a.at.getTime())[0]
      if (latest !== undefined) st.last_error = { code: latest.code, message: latest.message, at: latest.at.toISOString() }
      out[td] = st
    }
    return out
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const t of this.#debounce.values()) this.#timers.clearTimeout(t)
    this.#debounce.clear()
    await this.ready
    await this.#watcher?.close()
    await Promise.all([...this.#domains.values()].flat().map(async (s) => await s.poller?.close()))
  }
}
