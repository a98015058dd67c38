/**
 * A SPIFFE Workload API client (SPIFFE Workload API §4–6, Workload Endpoint §4) over @grpc/grpc-js,
 * with the .proto written in this project (proto/spiffe/workload/workload.proto).
 *
 * Each watched RPC is a server stream whose every message is the whole current state. This
 * client keeps one call open per stream and follows the standard's client rules, as go-spiffe's
 * client does:
 * - every call carries the metadata `workload.spiffe.io: true` (without it the agent answers
 *   InvalidArgument);
 * - a stream that ends, or drops, after it delivered is opened again at once; one that ends
 *   without delivering counts as a failure (go-spiffe: EOF is an error);
 * - Unavailable, PermissionDenied ("no identity issued") and other failures are retried with a
 *   linear backoff (initial, 2×initial, … up to max), reset after a good message;
 * - PermissionDenied says the workload has no identity (any more): the stream's last good state
 *   is dropped at once (`onDenied`; SPIFFE Workload API §5.2.1, §5.2.2, §6.2.2), not kept;
 * - InvalidArgument and Unimplemented are not retried: the stream stays stopped, with its error
 *   in status (a configuration or agent mismatch that retrying cannot fix);
 * - a message that does not parse is refused whole: the last good state stays, the failure is
 *   counted and logged (PORTCULLIS_IDENTITY_BUNDLE_INVALID).
 * While the agent is away, consumers keep the last good state; status() says so.
 */
import { EventEmitter } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { toPortcullisError } from '../../errors.js'
import type { WorkloadEndpoint } from '../../config/workload-api.js'
import type { Logger } from '../trust-store.js'

/** proto/ at the package root (the same three levels up from src/identity/workload-api/ and dist/identity/workload-api/). */
export const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto')
export const WORKLOAD_PROTO = 'spiffe/workload/workload.proto'
/** SPIFFE Workload API §4.1: the security header every request carries. */
export const SECURITY_HEADER = 'workload.spiffe.io'

/** Field names as in the .proto, bytes as Buffers, maps as objects. */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: false, includeDirs: [PROTO_DIR] }

export type StreamName = 'x509_svid' | 'x509_bundles' | 'jwt_bundles'
const METHODS: Record<StreamName, string> = { x509_svid: 'FetchX509SVID', x509_bundles: 'FetchX509Bundles', jwt_bundles: 'FetchJWTBundles' }

/** Codes the standard says not to retry: the request itself is wrong for this endpoint. */
const FATAL = new Set<number>([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED])

export interface StreamStatus {
  /** CONNECTING: no message on the current call yet; CONNECTED: the call delivered; RETRYING: waiting to call again; STOPPED: not retried (InvalidArgument / Unimplemented) or closed. */
  state: 'CONNECTING' | 'CONNECTED' | 'RETRYING' | 'STOPPED'
  connected: boolean
  /** A good message has been received at least once (the last good state exists). */
  updated: boolean
  last_update?: string
  updates: number
  /** The last failure: code PORTCULLIS_WORKLOAD_API_UNAVAILABLE with the gRPC status name, or PORTCULLIS_IDENTITY_BUNDLE_INVALID for a refused message. */
  last_error?: { code: string, grpc_code?: string, message: string, at: string }
  next_retry_at?: string
  /** Consecutive failed calls since the last good message. */
  failures: number
}

/** What the client records into (metrics/index.ts's series, structurally). */
export interface WorkloadApiRecorder {
  update: (stream: StreamName) => void
  error: (stream: StreamName, code: string) => void
  connected: (stream: StreamName, up: boolean) => void
}

export interface WorkloadApiClientOptions {
  backoff: { initialMs: number, maxMs: number }
  logger?: Logger
  recorder?: WorkloadApiRecorder
  now?: () => Date
}

/** go-spiffe's backoff: initial × (n + 1), capped; n counts failures since the last good message. */
export function reconnectDelayMs (failures: number, backoff: { initialMs: number, maxMs: number }): number {
  return Math.min(backoff.initialMs * Math.max(1, failures), backoff.maxMs)
}

interface Watch {
  name: StreamName
  onMessage: (msg: unknown) => void
  onDenied?: () => void
  status: StreamStatus
  call?: grpc.ClientReadableStream<unknown>
  timer?: NodeJS.Timeout
  /** The current call delivered a good message (a drop then reconnects at once). */
  delivered: boolean
}

type ServiceClient = grpc.Client & Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>>

export class WorkloadApiClient extends EventEmitter {
  readonly endpoint: WorkloadEndpoint
  readonly #client: ServiceClient
  readonly #opts: WorkloadApiClientOptions
  readonly #now: () => Date
  readonly #log: Logger
  readonly #watches = new Map<StreamName, Watch>()
  #closed = false

  constructor (endpoint: WorkloadEndpoint, opts: WorkloadApiClientOptions) {
    super()
    this.endpoint = endpoint
    this.#opts = opts
    this.#now = opts.now ?? (() => new Date())
    this.#log = opts.logger ?? {}
    const definition = protoLoader.loadSync(WORKLOAD_PROTO, LOADER_OPTIONS)
    const Service = (grpc.loadPackageDefinition(definition) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI
    this.#client = new Service(endpoint.target, grpc.credentials.createInsecure(), {
      // The channel's own reconnection backoff (default up to 120 s) must not outlast ours:
      // a call made after the agent is back must find the channel trying again.
      'grpc.initial_reconnect_backoff_ms': opts.backoff.initialMs,
      'grpc.max_reconnect_backoff_ms': opts.backoff.maxMs,
      'grpc.enable_channelz': 0,
      'grpc.enable_retries': 0,
    }) as unknown as ServiceClient
  }

  /**
   * Opens the stream and keeps it open; `onMessage` gets every message (it throws to refuse one:
   * the failure is recorded and the last good state is the consumer's to keep).
   */
  watch (name: StreamName, onMessage: (msg: unknown) => void, onDenied?: () => void): void {
    if (this.#watches.has(name)) throw new Error(`stream ${name} is already watched`)
    const w: Watch = { name, onMessage, ...(onDenied !== undefined ? { onDenied } : {}), delivered: false, status: { state: 'CONNECTING', connected: false, updated: false, updates: 0, failures: 0 } }
    this.#watches.set(name, w)
    this.#opts.recorder?.connected(name, false)
    this.#call(w)
  }

  #call (w: Watch): void {
    if (this.#closed) return
    const md = new grpc.Metadata()
    md.set(SECURITY_HEADER, 'true')
    w.delivered = false
    w.status.state = 'CONNECTING'
    delete w.status.next_retry_at
    const call = (this.#client[METHODS[w.name]] as (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>).call(this.#client, {}, md)
    w.call = call
    let ended = false
    call.on('data', (msg: unknown) => {
      if (w.call !== call) return
      try {
        w.onMessage(msg)
      } catch (err) {
        const e = toPortcullisError(err, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
        w.status.last_error = { code: e.code, message: e.message, at: this.#now().toISOString() }
        this.#opts.recorder?.error(w.name, e.code)
        this.#log.warn?.({ stream: w.name, code: e.code, err: e.message }, 'workload api: message refused; keeping the last good state')
        this.emit('change', w.name)
        return
      }
      w.delivered = true
      w.status.failures = 0
      w.status.state = 'CONNECTED'
      w.status.updated = true
      w.status.updates++
      w.status.last_update = this.#now().toISOString()
      this.#setConnected(w, true)
      this.#opts.recorder?.update(w.name)
      this.emit('change', w.name)
    })
    const finished = (err: grpc.ServiceError | undefined): void => {
      if (ended || w.call !== call) return
      ended = true
      w.call = undefined
      this.#setConnected(w, false)
      if (this.#closed) return
      if ((err === undefined || err.code === grpc.status.OK) && w.delivered) {
        // The server ended a stream that delivered: open it again at once (SPIFFE Workload API §6).
        this.#log.info?.({ stream: w.name }, 'workload api: stream ended by the agent; reconnecting')
        this.#call(w)
        return
      }
      if (err === undefined || err.code === grpc.status.OK) {
        // Ended without a message: a failure like any other (go-spiffe treats this EOF as an
        // error), so an agent that keeps doing it is called with backoff, not in a loop.
        err = Object.assign(new Error('the stream ended without a message'), { code: grpc.status.OK, details: 'the stream ended without a message', metadata: new grpc.Metadata() }) as grpc.ServiceError
      }
      const grpcCode = grpc.status[err.code] ?? String(err.code)
      w.status.last_error = { code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', grpc_code: grpcCode, message: err.details ?? err.message, at: this.#now().toISOString() }
      this.#opts.recorder?.error(w.name, grpcCode)
      if (err.code === grpc.status.PERMISSION_DENIED && w.status.updated) {
        // No identity for this workload any more: what was delivered is not to be used.
        w.status.updated = false
        this.#log.warn?.({ stream: w.name, code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', grpc_code: grpcCode }, 'workload api: permission denied; dropping the stream\'s state')
        w.onDenied?.()
      }
      if (FATAL.has(err.code)) {
        w.status.state = 'STOPPED'
        this.#log.error?.({ stream: w.name, code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', grpc_code: grpcCode, err: err.details }, 'workload api: stream refused; not retrying')
        this.emit('change', w.name)
        return
      }
      // A stream that was delivering and dropped is opened again at once; after that, backoff.
      const delay = w.delivered ? 0 : reconnectDelayMs(++w.status.failures, this.#opts.backoff)
      w.status.state = 'RETRYING'
      w.status.next_retry_at = new Date(this.#now().getTime() + delay).toISOString()
      this.#log.warn?.({ stream: w.name, code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', grpc_code: grpcCode, err: err.details, retry_in_ms: delay }, 'workload api: stream failed; keeping the last good state and retrying')
      this.emit('change', w.name)
      w.timer = setTimeout(() => { w.timer = undefined; this.#call(w) }, delay)
      w.timer.unref()
    }
    call.on('error', (err: grpc.ServiceError) => finished(err))
    call.on('status', (s: grpc.StatusObject) => { if (s.code === grpc.status.OK) finished(undefined) })
  }

  #setConnected (w: Watch, up: boolean): void {
    if (w.status.connected === up) return
    w.status.connected = up
    this.#opts.recorder?.connected(w.name, up)
  }

  status (): Partial<Record<StreamName, StreamStatus>> {
    const out: Partial<Record<StreamName, StreamStatus>> = {}
    for (const [name, w] of this.#watches) out[name] = { ...w.status, ...(w.status.last_error !== undefined ? { last_error: { ...w.status.last_error } } : {}) }
    return out
  }

  close (): void {
    this.#closed = true
    for (const w of this.#watches.values()) {
      if (w.timer !== undefined) clearTimeout(w.timer)
      w.call?.cancel()
      w.call = undefined
      w.status.state = 'STOPPED'
      this.#setConnected(w, false)
    }
    this.#client.close()
  }
}
