/**
 * SPIFFE bundle endpoint client, `https_web` profile (SPIFFE Trust Domain and Bundle §5.2):
 * the endpoint is authenticated by ordinary Web PKI TLS (or a configured CA file), serves a
 * SPIFFE bundle, and is polled again at the bundle's `spiffe_refresh_hint`.
 *
 * The poller keeps one request in flight, times it out, backs off exponentially after
 * failures, and never drops the last good bundle: failures are only reported.
 */
import { readFile } from 'node:fs/promises'
import * as http from 'node:http'
import * as https from 'node:https'
import { IdentityError } from '../errors.js'
import type { BundleEndpointConfig } from '../config/schema.js'
import { parseSpiffeBundle, type BundleContent } from './bundle.js'

/** A bundle larger than this is refused (a trust bundle is a few KiB). */
export const MAX_BUNDLE_BYTES = 4 * 1024 * 1024

export type FetchLike = (input: string, init?: { signal?: AbortSignal, headers?: Record<string, string> }) => Promise<{ status: number, text: () => Promise<string> }>

function unavailable (url: string, reason: string, cause?: unknown): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_BUNDLE_INVALID', `bundle endpoint ${url}: ${reason}`, { url, reason }, cause === undefined ? undefined : { cause })
}

/** GETs the endpoint with node:https (so a private CA can authenticate it) and a hard timeout. */
async function getWithNode (cfg: BundleEndpointConfig): Promise<string> {
  const ca = cfg.ca !== undefined ? await readFile(cfg.ca, 'utf8') : undefined
  const u = new URL(cfg.url)
  const mod = u.protocol === 'https:' ? https : http
  return await new Promise<string>((resolve, reject) => {
    const req = mod.get(u, { ...(ca !== undefined ? { ca } : {}), timeout: cfg.timeout_ms, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        reject(unavailable(cfg.url, `HTTP ${res.statusCode ?? 0}`))
        return
      }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > MAX_BUNDLE_BYTES) {
          req.destroy(unavailable(cfg.url, `response larger than ${MAX_BUNDLE_BYTES} bytes`))
          return
        }
        chunks.push(c)
      })
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      res.on('error', (err) => reject(unavailable(cfg.url, err.message, err)))
    })
    req.on('timeout', () => req.destroy(unavailable(cfg.url, `timed out after ${cfg.timeout_ms} ms`)))
    req.on('error', (err) => reject(err instanceof IdentityError ? err : unavailable(cfg.url, err.message, err)))
  })
}

/** Fetches and parses the bundle once. */
export async function fetchSpiffeBundle (cfg: BundleEndpointConfig, fetchImpl?: FetchLike): Promise<BundleContent> {
  let text: string
  if (fetchImpl !== undefined && cfg.ca === undefined) {
    let res
    try {
      res = await fetchImpl(cfg.url, { signal: AbortSignal.timeout(cfg.timeout_ms), headers: { accept: 'application/json' } })
    } catch (err) {
      throw unavailable(cfg.url, (err as Error).message, err)
    }
    if (res.status !== 200) throw unavailable(cfg.url, `HTTP ${res.status}`)
    text = await res.text()
    if (Buffer.byteLength(text) > MAX_BUNDLE_BYTES) throw unavailable(cfg.url, `response larger than ${MAX_BUNDLE_BYTES} bytes`)
  } else {
    text = await getWithNode(cfg)
  }
  return parseSpiffeBundle(text, cfg.url)
}

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

export interface PollerEvents {
  onBundle: (content: BundleContent) => void
  onError: (err: IdentityError) => void
}

/** Delay before the next poll: the refresh hint (clamped) after success, backoff after failure. */
export function nextDelaySeconds (cfg: BundleEndpointConfig, state: { failures: number, refreshHint?: number }): number {
  const hint = Math.min(cfg.max_refresh_seconds, Math.max(cfg.min_refresh_seconds, state.refreshHint ?? cfg.default_refresh_seconds))
  if (state.failures === 0) return hint
  // Exponential backoff, capped by max_backoff and never later than the regular refresh.
  const backoff = cfg.initial_backoff_seconds * 2 ** Math.min(state.failures - 1, 30)
  return Math.min(backoff, cfg.max_backoff_seconds, hint)
}

export class BundleEndpointPoller {
  readonly #cfg: BundleEndpointConfig
  readonly #events: PollerEvents
  readonly #fetch: FetchLike | undefined
  readonly #timers: Timers
  readonly #now: () => Date
  #timer: unknown
  #inflight: Promise<void> | undefined
  #closed = false
  failures = 0
  refreshHint: number | undefined
  nextRefreshAt: Date | undefined

  constructor (cfg: BundleEndpointConfig, events: PollerEvents, opts: { fetch?: FetchLike, timers?: Timers, now?: () => Date } = {}) {
    this.#cfg = cfg
    this.#events = events
    this.#fetch = opts.fetch
    this.#timers = opts.timers ?? realTimers
    this.#now = opts.now ?? (() => new Date())
  }

  /** Polls now (joining a poll already in flight), then schedules the next one. */
  async poll (): Promise<void> {
    if (this.#closed) return
    if (this.#inflight !== undefined) return await this.#inflight
    this.#inflight = (async () => {
      try {
        const content = await fetchSpiffeBundle(this.#cfg, this.#fetch)
        if (this.#closed) return
        this.failures = 0
        this.refreshHint = content.refreshHint
        this.#events.onBundle(content)
      } catch (err) {
        if (this.#closed) return
        this.failures++
        this.#events.onError(err instanceof IdentityError ? err : unavailable(this.#cfg.url, (err as Error).message, err))
      } finally {
        this.#inflight = undefined
        this.#schedule()
      }
    })()
    return await this.#inflight
  }

  #schedule (): void {
    if (this.#closed) return
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    const state: { failures: number, refreshHint?: number } = { failures: this.failures }
    if (this.refreshHint !== undefined) state.refreshHint = this.refreshHint
    const seconds = nextDelaySeconds(this.#cfg, state)
    this.nextRefreshAt = new Date(this.#now().getTime() + seconds * 1000)
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined
      void this.poll()
    }, seconds * 1000)
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#inflight?.catch(() => {})
  }
}
