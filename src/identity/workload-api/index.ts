/**
 * The SPIFFE Workload API as Portcullis uses it: the agent's X.509 and JWT bundles as trust-bundle
 * sources (identity/trust-store.ts), and its X.509-SVID as the serving certificate of the TLS
 * listeners. One client, up to three streams; status, metrics and readiness for the operator.
 *
 * @example
 *   const wapi = new WorkloadApi(config.workload_api, { logger })
 *   wapi.start({ trustStore: verifier.workloadApiSink, onSvid: (svid) => server.setSecureContext(...) })
 *   wapi.ready()   // every enabled stream delivered once (when ready_requires_update)
 */
import { EventEmitter } from 'node:events'
import type { WorkloadApiConfig } from '../../config/schema.js'
import { parseWorkloadEndpoint } from '../../config/workload-api.js'
import { configInvalid } from '../../config/validate.js'
import { compareUtf8 } from '../../canonical-json.js'
import { parseAllowList } from './peer.js'
import type { BundleContent } from '../bundle.js'
import type { Logger, WorkloadApiSourceKind } from '../trust-store.js'
import { WorkloadApiClient, type StreamName, type StreamStatus, type WorkloadApiRecorder } from './client.js'
import { parseJwtBundles, parseServingSvid, parseX509Bundles, type ServingSvid } from './parse.js'

export { WorkloadApiClient, reconnectDelayMs, SECURITY_HEADER, PROTO_DIR, WORKLOAD_PROTO, LOADER_OPTIONS, type StreamName, type StreamStatus, type WorkloadApiRecorder } from './client.js'
export { parseJwtBundles, parseX509Bundles, parseServingSvid, splitDerCertificates, type ServingSvid } from './parse.js'
export { SvidCertificateProvider } from './certificate-provider.js'
export { envoyPeerAuthorizer, parseAllowList, type PeerAuthorizer, type PeerVerdict } from './peer.js'

/** Where the bundle streams deliver (the identity verifier's trust store). */
export interface TrustBundleSink {
  setWorkloadApiContents: (kind: WorkloadApiSourceKind, contents: ReadonlyMap<string, BundleContent>, source: string) => void
  workloadApiFailed: (kind: WorkloadApiSourceKind, err: unknown) => void
}

export interface WorkloadApiStatus {
  enabled: true
  endpoint: string
  /** OK: every counted stream connected; NOT_READY: some stream has not delivered yet; ERROR: some stream is down (its last good state is kept), or the served SVID expired without a replacement or was removed (the agent no longer issues it). */
  state: 'OK' | 'NOT_READY' | 'ERROR'
  connected: boolean
  ready: boolean
  last_update?: string
  last_error?: { code: string, grpc_code?: string, message: string, at: string, stream: StreamName }
  /** Trust domains the agent currently delivers, per bundle kind. */
  trust_domains: { x509: string[], jwt: string[] }
  svid?: { spiffe_id: string, hint: string, expires_at: string }
  streams: Partial<Record<StreamName, StreamStatus>>
}

export interface WorkloadApiOptions {
  logger?: Logger
  recorder?: WorkloadApiRecorder
  now?: () => Date
}

export class WorkloadApi extends EventEmitter {
  readonly config: WorkloadApiConfig
  readonly #client: WorkloadApiClient
  #x509Domains: string[] = []
  #jwtDomains: string[] = []
  #svid: ServingSvid | undefined
  readonly #log: Logger
  readonly #now: () => Date

  /** @throws PortcullisError PORTCULLIS_CONFIG_INVALID for a bad endpoint address. */
  constructor (config: WorkloadApiConfig, opts: WorkloadApiOptions = {}) {
    super()
    this.config = config
    this.#log = opts.logger ?? {}
    this.#now = opts.now ?? (() => new Date())
    // Checked here, not in config/ (which imports nothing of identity/): the runtime builds this first.
    for (const [i, e] of config.envoy_grpc_client_ids.entries()) {
      try { parseAllowList([e]) } catch { throw configInvalid(`config key workload_api.envoy_grpc_client_ids[${i}]: ${JSON.stringify(e)} is not a SPIFFE ID or a trust domain's (spiffe://td)`, 'workload_api.envoy_grpc_client_ids') }
    }
    const endpoint = parseWorkloadEndpoint(config.socket ?? process.env.SPIFFE_ENDPOINT_SOCKET ?? '')
    this.#client = new WorkloadApiClient(endpoint, {
      backoff: { initialMs: config.backoff.initial_ms, maxMs: config.backoff.max_ms },
      ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
      ...(opts.recorder !== undefined ? { recorder: opts.recorder } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
    })
    this.#client.on('change', () => this.emit('change'))
  }

  /** The serving SVID currently held (the last good one). */
  get svid (): ServingSvid | undefined { return this.#svid }

  /** Opens the streams the configuration enables. */
  start (sinks: { trustStore?: TrustBundleSink }): void {
    const source = this.#client.endpoint.address
    if (this.config.trust_bundles && sinks.trustStore !== undefined) {
      const store = sinks.trustStore
      const bundles = (stream: StreamName, kind: WorkloadApiSourceKind, parse: (b: Record<string, Uint8Array> | undefined) => Map<string, BundleContent>, set: (tds: string[]) => void): void => {
        this.#client.watch(stream, (msg) => {
          let contents: Map<string, BundleContent>
          try {
            contents = parse((msg as { bundles?: Record<string, Uint8Array> }).bundles)
          } catch (err) {
            store.workloadApiFailed(kind, err)
            throw err
          }
          store.setWorkloadApiContents(kind, contents, source)
          set([...contents.keys()].sort())
        }, () => {
          // PermissionDenied: the agent's bundles are no longer this workload's trust (trust-change fires).
          store.setWorkloadApiContents(kind, new Map(), source)
          set([])
        })
      }
      bundles('x509_bundles', 'workload_api_x509', parseX509Bundles, (t) => { this.#x509Domains = t })
      bundles('jwt_bundles', 'workload_api_jwt', parseJwtBundles, (t) => { this.#jwtDomains = t })
    }
    if (this.config.serving_svid) {
      const pick = { ...(this.config.spiffe_id !== undefined ? { spiffeId: this.config.spiffe_id } : {}), ...(this.config.svid_hint !== undefined ? { hint: this.config.svid_hint } : {}) }
      this.#client.watch('x509_svid', (msg) => {
        const m = msg as Parameters<typeof parseServingSvid>[0]
        // The configured SVID (by spiffe_id, else by svid_hint) absent from a message that has
        // others: the agent no longer issues it (each message is the whole state), so it is not
        // served any more — never kept until it expires (fail closed, docs/identity.md).
        const svids = m.svids ?? []
        const wanted = pick.spiffeId !== undefined ? `SPIFFE ID ${pick.spiffeId}` : pick.hint !== undefined ? `hint ${JSON.stringify(pick.hint)}` : undefined
        const named = (s: (typeof svids)[number]): boolean => pick.spiffeId !== undefined ? s.spiffe_id === pick.spiffeId : s.hint === pick.hint
        if (wanted !== undefined && svids.length > 0 && !svids.some(named)) {
          this.#dropSvid(`the agent no longer issues an SVID with ${wanted}`)
          return
        }
        const svid = parseServingSvid(m, pick, this.#now())
        this.#svid = svid
        this.emit('svid', svid)
      }, () => { this.#dropSvid('permission denied') })
    }
  }

  /**
   * Stops serving the SVID ('svid-removed': the listeners then refuse new handshakes, fail
   * closed); the stream's next good message serves again.
   */
  #dropSvid (why: string): void {
    if (this.#svid === undefined) {
      // nothing served yet: still say why nothing will be (e.g. the first message lacks the hint)
      this.#log.warn?.({ code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', reason: why }, 'workload api: no serving SVID; TLS handshakes are refused')
      return
    }
    this.#log.warn?.({ code: 'PORTCULLIS_WORKLOAD_API_UNAVAILABLE', spiffe_id: this.#svid.spiffeId, reason: why }, 'workload api: serving SVID removed; new TLS handshakes are refused')
    this.#svid = undefined
    this.emit('svid-removed')
    this.emit('change')
  }

  /**
   * The streams readiness counts: every watched one, except a JWT bundle stream the agent
   * refused with Unimplemented (an agent without the JWT profile: nothing will ever come, and
   * retrying cannot change that; its error stays in status).
   */
  #counted (): Array<[StreamName, StreamStatus]> {
    return (Object.entries(this.#client.status()) as Array<[StreamName, StreamStatus]>)
      .filter(([name, s]) => !(name === 'jwt_bundles' && s.state === 'STOPPED' && s.last_error?.grpc_code === 'UNIMPLEMENTED'))
  }

  /**
   * The agent delivered the SVID stream, but no SVID is served: the configured one was removed
   * (no longer issued). The listeners refuse new handshakes, so this is an error, not a wait.
   */
  #svidRemoved (): boolean {
    return this.config.serving_svid && this.#svid === undefined && this.#client.status().x509_svid?.updated === true
  }

  /** The served SVID's notAfter has passed and no replacement came. */
  #svidExpired (): boolean {
    return this.#svid !== undefined && this.#now().getTime() >= this.#svid.notAfter.getTime()
  }

  /**
   * Ready: the served SVID (with serving_svid) is present and not expired, not removed, and — with
   * ready_requires_update — every counted stream has delivered its last good state.
   */
  ready (): boolean {
    if (this.#svidExpired() || this.#svidRemoved()) return false
    // rule (1) holds whatever ready_requires_update says: no SVID held, no TLS served
    if (this.config.serving_svid && this.#svid === undefined) return false
    if (!this.config.ready_requires_update) return true
    return this.#counted().every(([, s]) => s.updated)
  }

  status (): WorkloadApiStatus {
    const streams = this.#client.status()
    const all = Object.entries(streams) as Array<[StreamName, StreamStatus]>
    const counted = this.#counted()
    const connected = counted.length > 0 && counted.every(([, s]) => s.connected)
    const updates = all.map(([, s]) => s.last_update).filter((u): u is string => u !== undefined).sort()
    const errors = all.flatMap(([name, s]) => s.last_error !== undefined ? [{ ...s.last_error, stream: name }] : []).sort((a, b) => compareUtf8(a.at, b.at))
    const ready = this.ready()
    const out: WorkloadApiStatus = {
      enabled: true,
      endpoint: this.#client.endpoint.address,
      state: this.#svidExpired() || this.#svidRemoved() ? 'ERROR' : !counted.every(([, s]) => s.updated) ? 'NOT_READY' : connected ? 'OK' : 'ERROR',
      connected,
      ready,
      trust_domains: { x509: [...this.#x509Domains], jwt: [...this.#jwtDomains] },
      streams,
    }
    const lastUpdate = updates[updates.length - 1]
    if (lastUpdate !== undefined) out.last_update = lastUpdate
    const lastError = errors[errors.length - 1]
    if (lastError !== undefined) out.last_error = lastError
    if (this.#svid !== undefined) out.svid = { spiffe_id: this.#svid.spiffeId, hint: this.#svid.hint, expires_at: this.#svid.notAfter.toISOString() }
    return out
  }

  close (): void {
    this.#client.close()
  }
}
