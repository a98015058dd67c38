/**
 * One bundle request to a bundle server, as OPA's REST client makes it (v1/plugins/rest): GET
 * `{url}/{resource}` with the service's headers, `If-None-Match` with the last ETag, `Prefer`
 * (`modes=snapshot`, plus `wait=N` for a long poll), and the service's credentials:
 *
 * - `bearer`: `Authorization: <scheme> <token>`, the token read from `token_path` again for every
 *   request (trimmed), so a rotated token is used at the next poll without a restart;
 * - `client_tls`: the client certificate and key, read again for every request (rotation);
 * - `tls.ca_cert`: the CA the server must chain to (with `system_ca_required`, the system roots too).
 *
 * Transport is node:http / node:https. Redirects are followed as Go's client does (at most 10;
 * 301/302/303/307/308), except that credentials (Authorization, client certificate, and the
 * service's configured `headers`) go only to the configured service's own origin, and an https
 * service is never redirected to plain http. A redirect's body is not read: the response and
 * its socket are destroyed at once.
 * The body is counted while it streams and cut off beyond `maxBytes`. Every wait is bounded:
 * response headers within `response_header_timeout_seconds` (a long poll: plus its wait), the
 * socket never idle longer than that, the whole exchange within `DOWNLOAD_DEADLINE_MS`.
 */
import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { rootCertificates } from 'node:tls'
import { BundleError } from '../../errors.js'

/** A bundle server (OPA `services.<name>`), files named by absolute path. */
export interface ServiceOptions {
  name: string
  /** Base URL without a trailing slash. */
  url: string
  headers?: Record<string, string>
  bearer?: { token?: string, tokenPath?: string, scheme?: string }
  clientTls?: { cert: string, privateKey: string, passphrase?: string }
  tls?: { caCert?: string, systemCaRequired?: boolean }
  /** OPA default 10 s; 0: none (the download deadline still applies). */
  responseHeaderTimeoutMs: number
}

export interface BundleRequest {
  /** Path under the service URL (OPA `resource`). */
  resource: string
  etag?: string
  /** Long poll: ask the server to hold the request this many seconds (`Prefer: wait=N`). */
  waitSeconds?: number
  /** Largest body accepted, in bytes. */
  maxBytes: number
  signal?: AbortSignal
}

export type BundleResponse =
  | { status: 200, body: Buffer, etag?: string, contentType?: string, url: string }
  | { status: 304, etag?: string, contentType?: string, url: string }

export const MAX_REDIRECTS = 10
/** The longest one exchange (headers and body) may take, beyond a long poll's wait. */
export const DOWNLOAD_DEADLINE_MS = 10 * 60_000
/** Without a response-header timeout the socket may still not idle longer than this. */
const IDLE_FALLBACK_MS = 60_000

/** The URL of a bundle: OPA joins `url + "/" + strings.Trim(resource, "/")`. */
export function bundleUrl (service: ServiceOptions, resource: string): string {
  return `${service.url.replace(/\/+$/, '')}/${resource.replace(/^\/+|\/+$/g, '')}`
}

function failed (service: ServiceOptions, url: string, reason: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): BundleError {
  return new BundleError('PORTCULLIS_BUNDLE_DOWNLOAD_FAILED', `${url}: ${message}`, { service: service.name, url, reason, ...extra }, { cause })
}

/** Fetches one bundle (following redirects). Throws a BundleError with a stable code. */
export async function fetchBundle (service: ServiceOptions, req: BundleRequest): Promise<BundleResponse> {
  const first = bundleUrl(service, req.resource)
  const origin = new URL(first).origin
  let url = first
  const deadline = Date.now() + DOWNLOAD_DEADLINE_MS + (req.waitSeconds ?? 0) * 1000
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await once(service, url, new URL(url).origin === origin, req, deadline)
    if (!('location' in res)) return res
    const next = new URL(res.location, url)
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw failed(service, url, 'redirect', `redirect to unsupported scheme ${next.protocol}`)
    if (new URL(url).protocol === 'https:' && next.protocol === 'http:') throw failed(service, url, 'redirect', `refusing a redirect from https to plain http (${next.href})`)
    url = next.href
  }
  throw failed(service, first, 'redirect', `stopped after ${MAX_REDIRECTS} redirects`)
}

function headerOf (res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function once (service: ServiceOptions, url: string, sameOrigin: boolean, req: BundleRequest, deadline: number): Promise<BundleResponse | { location: string }> {
  const u = new URL(url)
  const headers: Record<string, string> = { 'user-agent': 'portcullis', accept: 'application/gzip, application/octet-stream, application/vnd.openpolicyagent.bundles, */*' }
  // The configured headers often carry credentials (API keys, cookies, Authorization): like
  // the bearer token they go only to the service's own origin, never to a redirect target.
  if (sameOrigin) for (const [k, v] of Object.entries(service.headers ?? {})) headers[k.toLowerCase()] = v
  if (req.etag !== undefined && req.etag !== '') headers['if-none-match'] = req.etag
  // Portcullis activates snapshot bundles only: it does not offer OPA's `delta` mode.
  headers.prefer = req.waitSeconds !== undefined ? `modes=snapshot;wait=${req.waitSeconds}` : 'modes=snapshot'

  const opts: RequestOptions & Record<string, unknown> = { method: 'GET', headers, agent: false }
  if (sameOrigin) {
    // Credentials are read here, per request: a rotated token or certificate is used at once.
    const bearer = service.bearer
    if (bearer !== undefined) {
      let token = bearer.token ?? ''
      if (bearer.tokenPath !== undefined) {
        try {
          token = readFileSync(bearer.tokenPath, 'utf8').trim()
        } catch (err) {
          return Promise.reject(failed(service, url, 'credentials', `cannot read bearer token file ${bearer.tokenPath}: ${(err as Error).message}`, {}, err))
        }
      }
      headers.authorization = `${bearer.scheme ?? 'Bearer'} ${token}`
    }
    if (service.clientTls !== undefined) {
      try {
        opts.cert = readFileSync(service.clientTls.cert)
        opts.key = readFileSync(service.clientTls.privateKey)
        if (service.clientTls.passphrase !== undefined) opts.passphrase = service.clientTls.passphrase
      } catch (err) {
        return Promise.reject(failed(service, url, 'credentials', `cannot read client certificate or key: ${(err as Error).message}`, {}, err))
      }
    }
  }
  if (u.protocol === 'https:' && service.tls?.caCert !== undefined) {
    try {
      const ca = readFileSync(service.tls.caCert, 'utf8')
      opts.ca = service.tls.systemCaRequired === true ? [...rootCertificates, ca] : ca
    } catch (err) {
      return Promise.reject(failed(service, url, 'tls', `cannot read CA file ${service.tls.caCert}: ${(err as Error).message}`, {}, err))
    }
  }

  const headerTimeoutMs = service.responseHeaderTimeoutMs === 0 ? undefined : service.responseHeaderTimeoutMs + (req.waitSeconds ?? 0) * 1000
  const idleMs = headerTimeoutMs ?? IDLE_FALLBACK_MS + (req.waitSeconds ?? 0) * 1000

  return new Promise((resolve, reject) => {
    let settled = false
    let response: IncomingMessage | undefined
    const timers: NodeJS.Timeout[] = []
    // Whatever the outcome, the exchange is over: the response and the socket are destroyed, so
    // a redirect or error body the server keeps trickling holds no socket open, and no timer
    // is left that could fire into a settled exchange.
    const finish = (err: BundleError | undefined, value?: BundleResponse | { location: string }): void => {
      if (settled) return
      settled = true
      for (const t of timers) clearTimeout(t)
      req.signal?.removeEventListener('abort', onAbort)
      response?.destroy()
      r.destroy()
      if (err !== undefined) reject(err)
      else resolve(value as BundleResponse)
    }
    const onAbort = (): void => { finish(failed(service, url, 'aborted', 'request aborted (shutting down)')) }
    const r = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, opts)
    timers.push(setTimeout(() => { finish(failed(service, url, 'timeout', 'download deadline passed')) }, Math.max(1, deadline - Date.now())))
    if (headerTimeoutMs !== undefined) {
      timers.push(setTimeout(() => { finish(failed(service, url, 'timeout', `no response headers within ${headerTimeoutMs} ms`)) }, headerTimeoutMs))
    }
    r.setTimeout(idleMs, () => {
      finish(failed(service, url, 'timeout', `connection idle for ${idleMs} ms`))
      r.destroy() // also when the exchange had settled already
    })
    if (req.signal !== undefined) {
      if (req.signal.aborted) { onAbort(); return }
      req.signal.addEventListener('abort', onAbort, { once: true })
    }
    r.on('error', (err) => { finish(failed(service, url, 'network', `request failed: ${err.message}`, { errno: (err as NodeJS.ErrnoException).code }, err)) })
    r.on('response', (res) => {
      response = res
      timers.splice(1).forEach(clearTimeout) // headers arrived: only the deadline and the idle timeout remain
      const status = res.statusCode ?? 0
      const etag = headerOf(res, 'etag')
      const contentType = headerOf(res, 'content-type')
      const meta = { url, ...(etag !== undefined ? { etag } : {}), ...(contentType !== undefined ? { contentType } : {}) }
      if ([301, 302, 303, 307, 308].includes(status)) {
        // The redirect body is never read: finish() destroys the response and its socket.
        const location = headerOf(res, 'location')
        if (location === undefined) finish(failed(service, url, 'status', `server replied with ${status} and no Location`, { status }))
        else finish(undefined, { location })
        return
      }
      if (status === 304) {
        res.resume()
        finish(undefined, { status: 304, ...meta })
        return
      }
      if (status !== 200) {
        res.resume()
        const reason = status === 401 || status === 403 ? 'unauthorized' : status === 404 ? 'not_found' : 'status'
        finish(failed(service, url, reason, `server replied with HTTP ${status}`, { status }))
        return
      }
      const declared = Number(headerOf(res, 'content-length'))
      if (Number.isFinite(declared) && declared > req.maxBytes) {
        finish(new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${url}: Content-Length ${declared} is larger than the limit of ${req.maxBytes} bytes`, { service: service.name, url, limit: req.maxBytes }))
        return
      }
      const chunks: Buffer[] = []
      let total = 0
      res.on('data', (chunk: Buffer) => {
        total += chunk.length
        if (total > req.maxBytes) {
          finish(new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${url}: download is larger than the limit of ${req.maxBytes} bytes`, { service: service.name, url, limit: req.maxBytes }))
          return
        }
        chunks.push(chunk)
      })
      res.on('error', (err) => { finish(failed(service, url, 'network', `download interrupted: ${err.message}`, {}, err)) })
      res.on('aborted', () => { finish(failed(service, url, 'network', 'download interrupted: connection closed')) })
      res.on('end', () => {
        if (!res.complete) {
          finish(failed(service, url, 'network', 'download interrupted: connection closed before the body was complete'))
          return
        }
        if (total === 0) {
          finish(failed(service, url, 'empty', 'server replied 200 with an empty body'))
          return
        }
        finish(undefined, { status: 200, body: Buffer.concat(chunks, total), ...meta })
      })
    })
    r.end()
  })
}
