/**
 * One upload of a decision-log chunk to an OPA-protocol collector: `POST {service.url}{resource}`
 * with `Content-Encoding: gzip`, `Content-Type: application/json`, the service's headers and
 * credentials (OPA's `services` keys: bearer token or token file re-read per request, client
 * TLS certificate, CA). A 2xx is an acknowledgement; anything else, a network error, a timeout
 * or an abort is a failure the shipper retries.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import { rootCertificates } from 'node:tls'
import type { ServiceConfig } from '../../config/schema.js'

/** OPA's default response_header_timeout_seconds. */
const DEFAULT_TIMEOUT_S = 10
/** Most of a collector's answer body kept for the log line. */
const MAX_ERROR_BODY = 512

export interface UploadResult {
  ok: boolean
  /** HTTP status, or undefined when no answer came (network error, timeout, abort). */
  status?: number
  /** What went wrong, for the log (status text and the start of the body, or the network error). */
  error?: string
}

export class UploadClient {
  readonly url: URL
  private readonly tlsOptions: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'passphrase'>
  private readonly timeoutMs: number

  /** Reads the TLS files once, at construction: a missing file fails the start, not every upload. */
  constructor (private readonly service: ServiceConfig, resource: string) {
    const base = service.url.replace(/\/+$/, '')
    this.url = new URL(base + (resource.startsWith('/') ? resource : `/${resource}`))
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new Error(`service url ${service.url}: expected http:// or https://`)
    const opts: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'passphrase'> = {}
    if (service.tls?.ca_cert !== undefined) {
      const ca = readFileSync(service.tls.ca_cert, 'utf8')
      // OPA's tls.system_ca_required: the system roots as well as ca_cert (the bundle-service schema has it)
      opts.ca = (service.tls as { system_ca_required?: boolean }).system_ca_required === true ? [...rootCertificates, ca] : ca
    }
    const ctls = service.credentials?.client_tls
    if (ctls !== undefined) {
      opts.cert = readFileSync(ctls.cert)
      opts.key = readFileSync(ctls.private_key)
      if (ctls.private_key_passphrase !== undefined) opts.passphrase = ctls.private_key_passphrase
    }
    this.tlsOptions = opts
    // 0: no limit (OPA); stop() still aborts an upload at the grace deadline
    this.timeoutMs = (service.response_header_timeout_seconds ?? DEFAULT_TIMEOUT_S) * 1000
  }

  private async authorization (): Promise<string | undefined> {
    const bearer = this.service.credentials?.bearer
    if (bearer === undefined) return undefined
    // token_path is re-read for every request, as OPA does, so rotated tokens are used.
    const token = bearer.token_path !== undefined ? (await readFile(bearer.token_path, 'utf8')).trim() : bearer.token
    if (token === undefined || token === '') return undefined
    return `${bearer.scheme ?? 'Bearer'} ${token}`
  }

  /** POSTs one gzip body. Never throws: failures come back as `{ok: false}`. */
  async upload (body: Buffer, signal: AbortSignal): Promise<UploadResult> {
    let auth: string | undefined
    try {
      auth = await this.authorization()
    } catch (err) {
      return { ok: false, error: `cannot read bearer token: ${(err as Error).message}` }
    }
    if (signal.aborted) return { ok: false, error: 'aborted' }
    const headers: Record<string, string> = {
      ...(this.service.headers ?? {}),
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': String(body.length),
    }
    if (auth !== undefined) headers.authorization = auth
    const isHttps = this.url.protocol === 'https:'
    return await new Promise<UploadResult>((resolve) => {
      let settled = false
      const done = (r: UploadResult): void => { if (!settled) { settled = true; resolve(r) } }
      const onResponse = (res: IncomingMessage): void => {
        const status = res.statusCode ?? 0
        if (status >= 200 && status < 300) {
          // The status line is the collector's acknowledgement (OPA reads no more of it): the
          // chunk is delivered. Its body is discarded; one that breaks off or trickles must not
          // turn a delivered chunk into a retry (every event sent again, the cursor stuck) nor
          // hold the shipper — the connection is closed once the answer is taken.
          done({ ok: true, status })
          let ended = false
          res.on('error', () => {})
          res.on('end', () => { ended = true })
          res.resume()
          setTimeout(() => { if (!ended) req.destroy() }, 1000).unref()
          return
        }
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (c: Buffer) => { if (kept < MAX_ERROR_BODY) { chunks.push(c); kept += c.length } })
        res.on('end', () => {
          done({ ok: false, status, error: `collector answered HTTP ${status}: ${Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8')}` })
        })
        res.on('error', (err) => { done({ ok: false, status, error: err.message }) })
      }
      const options: RequestOptions = { method: 'POST', headers, signal, ...(this.timeoutMs > 0 ? { timeout: this.timeoutMs } : {}), ...(isHttps ? this.tlsOptions : {}) }
      const req = isHttps ? httpsRequest(this.url, options, onResponse) : httpRequest(this.url, options, onResponse)
      if (this.timeoutMs > 0) {
        req.on('timeout', () => { req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)) })
        // an overall bound too: the idle timeout alone lets a collector that trickles an error
        // body one byte at a time hold the shipper for ever
        const deadline = setTimeout(() => { req.destroy(new Error(`no complete answer within ${4 * this.timeoutMs} ms`)) }, 4 * this.timeoutMs)
        deadline.unref()
        req.on('close', () => { clearTimeout(deadline) })
      }
      req.on('error', (err) => { done({ ok: false, error: err.message }) })
      req.end(body)
    })
  }
}
