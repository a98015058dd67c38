/**
 * The HTTP shell of the ext_authz adapter: Envoy's `http_service` mode, on its own listener.
 * Envoy forwards the original method, `path_prefix` + the original path (and query), the
 * allowed headers and, with `with_request_body`, the body. This shell builds the same
 * CheckRequest shape the gRPC mode decodes (`attributes.request.http`: id, method, headers,
 * path, host, body/raw_body, size, and `request.time`) so the same policy answers both.
 *
 * Answers (Envoy's ext_authz HTTP client): 200 allows — the policy's `headers` go back as
 * response headers, for the filter's `allowed_upstream_headers`, and
 * `request_headers_to_remove` as `x-envoy-auth-headers-to-remove`; any other status denies
 * and is passed to the client with the policy's body and headers (a policy status of 200 or
 * 5xx on a deny is answered 403: Envoy would read it as an allow or as a failure that
 * failure_mode_allow may let through); an error answers 5xx, which the filter treats as a
 * failure (`status_on_error`, `failure_mode_allow`).
 */
import { createServer, validateHeaderName, validateHeaderValue, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { PortcullisError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { ConnectionFacts, EnvoyCheck } from './check.js'
import { setEntry, type CheckRequest, type HttpRequest } from './input.js'
import type { Header } from './response.js'
import { watchConnectionErrors } from '../metrics/connections.js'
import type { Metrics } from '../metrics/index.js'

export interface EnvoyHttpOptions {
  check: EnvoyCheck
  /** host:port */
  addr: string
  /** Envoy's http_service path_prefix, removed from the path before the input is built. */
  pathPrefix: string
  maxBodyBytes: number
  logger?: Logger
  /** Counts the connections the HTTP parser refused (metrics/connections.ts). */
  metrics?: Metrics | undefined
}

export interface EnvoyHttpServer {
  /** http://host:port */
  url: string
  server: Server
  close: (graceMs: number) => Promise<void>
}

// ignoreBOM: a body's leading U+FEFF is data, as Envoy's gRPC body carries it (and Go's JSON refuses it)
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The original request's path: the forwarded one without `path_prefix`; undefined when it does
 * not start with it, or is not in origin form (RFC 9112 §3.2.1: Envoy forwards `path_prefix` +
 * path; an absolute-form `http://x/admin` or asterisk-form `*` target never comes from it, and
 * would be judged as a path it is not).
 */
export function stripPrefix (url: string, prefix: string): string | undefined {
  if (!url.startsWith('/')) return undefined
  if (prefix === '') return url
  if (prefix.endsWith('/')) {
    // Envoy joins the two strings as they are: `/ext_authz/` + `/admin/x` is
    // `/ext_authz//admin/x`, and the original path is what follows the whole prefix (not
    // `//admin/x`, which a rule on `/admin` would not match)
    if (!url.startsWith(prefix)) return undefined
    const rest = url.slice(prefix.length)
    return rest.startsWith('/') ? rest : `/${rest}`
  }
  if (!url.startsWith(prefix)) return undefined
  const rest = url.slice(prefix.length)
  if (rest === '' || rest.startsWith('?')) return `/${rest}`
  return rest.startsWith('/') ? rest : undefined
}

/**
 * The request line and headers of a forwarded request as `attributes.request.http` (no body,
 * no time): what is known of a request refused before its CheckRequest can be built (body too
 * large or unreadable, path without path_prefix), so its audit record says what was asked.
 * The headers map joins repeated headers with ',' as Envoy does.
 */
function httpRequestOf (req: IncomingMessage, path: string): HttpRequest {
  const headers: Record<string, string> = {}
  // setEntry: a header named __proto__ is a header like any other (assignment dropped it)
  for (const [k, v] of Object.entries(req.headersDistinct)) if (v !== undefined) setEntry(headers, k, v.join(','))
  const http: HttpRequest = { method: req.method ?? '', headers, path }
  const host = headers.host
  if (host !== undefined) http.host = host
  const id = headers['x-request-id']
  if (id !== undefined) http.id = id
  return http
}

/**
 * The CheckRequest an Envoy gRPC ext_authz filter would send for this forwarded request. The
 * body is `body` when it is UTF-8 and `raw_body` otherwise (Envoy's pack_as_bytes).
 */
function checkRequestOf (req: IncomingMessage, path: string, body: Buffer, now: Date): CheckRequest {
  const http = httpRequestOf(req, path)
  const cl = http.headers?.['content-length']
  http.size = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : -1
  if (body.length > 0) {
    try {
      http.body = UTF8.decode(body)
    } catch {
      http.rawBody = body
    }
  }
  const ms = now.getTime()
  return { attributes: { request: { time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 }, http } } }
}

/**
 * The policy's headers as Node writes them (no prototype: `constructor` or `__proto__` are names
 * like any other). Names that are not tokens and values with CR, LF or NUL never get here
 * (response.ts verdictOf, the rule both transports share); what is left is what HTTP/1 text
 * cannot carry though a gRPC string can (characters above U+00FF, other control characters):
 * left out and passed to `onInvalid`. For a denial the caller logs it, so a denial stays a
 * denial; for an allow the caller answers an error (a malformed result).
 */
function headerLists (hs: Header[], onInvalid: (h: Header) => void): Record<string, string[]> {
  const out = Object.create(null) as Record<string, string[]>
  for (const h of hs) {
    const name = h.key.toLowerCase()
    try {
      validateHeaderName(name)
      validateHeaderValue(name, h.value)
    } catch {
      onInvalid(h)
      continue
    }
    const list = out[name]
    if (list === undefined) out[name] = [h.value]
    else list.push(h.value)
  }
  return out
}

/** The status a denial is answered with: never 200 (Envoy's allow), 1xx (interim, no answer) or 5xx (a failure failure_mode_allow may let through). */
function deniedStatus (status: number): number {
  return status <= 200 || status >= 500 ? 403 : status
}

function send (res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: string): void {
  if (res.headersSent || res.destroyed) return
  const buf = Buffer.from(body, 'utf8')
  try {
    res.writeHead(status, { ...headers, 'content-length': String(buf.length) })
  } catch {
    // a header HTTP cannot carry got past the checks: fail closed — a bare 403 for anything but
    // an allow (a denial stays a denial), an error for an allow
    const code = status === 200 ? 500 : 403
    res.writeHead(code, { 'content-type': 'text/plain', 'content-length': String('PORTCULLIS_ENVOY_RESULT_INVALID'.length) })
    res.end('PORTCULLIS_ENVOY_RESULT_INVALID')
    return
  }
  res.end(buf)
}

/** Reads the body up to `limit` bytes; larger is PORTCULLIS_INPUT_TOO_LARGE. */
function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `the forwarded body exceeds ${limit} bytes`, { limit }))
        req.pause()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** Handles one forwarded request. */
async function handle (opts: EnvoyHttpOptions, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const controller = new AbortController()
  res.on('close', () => { if (!res.writableFinished) controller.abort(new PortcullisError('PORTCULLIS_ENVOY_CANCELLED', 'the caller closed the connection')) })
  const facts: ConnectionFacts = {
    ...(req.socket.remoteAddress !== undefined ? { remoteAddress: req.socket.remoteAddress } : {}),
    signal: controller.signal,
  }
  const url = req.url ?? '/'
  const path = stripPrefix(url, opts.pathPrefix)
  let body: Buffer
  try {
    body = await readBody(req, opts.maxBodyBytes)
  } catch (err) {
    const e = err instanceof PortcullisError ? err : new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'the forwarded body could not be read')
    // refused before a CheckRequest exists: still audited and counted as every Check is
    await opts.check.refuse({ attributes: { request: { http: httpRequestOf(req, path ?? url) } } }, facts, e)
    send(res, e.status, { 'content-type': 'text/plain', connection: 'close' }, e.code)
    return
  }
  if (path === undefined) {
    // Envoy always prepends path_prefix: anything else did not come from the configured filter.
    const e = url.startsWith('/')
      ? new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', `the forwarded path does not start with path_prefix ${opts.pathPrefix}`, { path_prefix: opts.pathPrefix })
      : new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'the forwarded request target is not a path (origin form)', { path_prefix: opts.pathPrefix })
    await opts.check.refuse({ attributes: { request: { http: httpRequestOf(req, url) } } }, facts, e)
    send(res, e.status, { 'content-type': 'text/plain' }, e.code)
    return
  }
  const outcome = await opts.check.check(checkRequestOf(req, path, body, new Date()), facts)
  switch (outcome.kind) {
    case 'decided': {
      const v = outcome.verdict
      if (v.allowed) {
        // an allow whose headers HTTP cannot carry is a malformed result: an error, as over gRPC
        let bad: Header | undefined
        const headers: Record<string, string | string[]> = headerLists([...v.headers, ...v.responseHeadersToAdd], (h) => { bad ??= h })
        if (bad !== undefined) {
          log.warn({ code: 'PORTCULLIS_ENVOY_RESULT_INVALID', transport: 'envoy-http', decision_id: outcome.decisionId }, 'ext_authz HTTP allow carries a header HTTP cannot carry')
          send(res, 500, { 'content-type': 'text/plain', 'x-portcullis-decision-id': outcome.decisionId }, 'PORTCULLIS_ENVOY_RESULT_INVALID')
          return
        }
        if (v.headersToRemove.length > 0) headers['x-envoy-auth-headers-to-remove'] = v.headersToRemove.join(',')
        headers['x-portcullis-decision-id'] = outcome.decisionId
        send(res, 200, headers, '')
        return
      }
      const denied = v.deniedResponse ?? { status: 403, body: '' }
      // 200 is Envoy's allow and 5xx its "authorization server failed" (where
      // failure_mode_allow may let the request through): a deny is never answered with either.
      const status = deniedStatus(denied.status)
      const headers = headerLists(v.headers, () => {
        log.warn({ code: 'PORTCULLIS_ENVOY_RESULT_INVALID', transport: 'envoy-http', decision_id: outcome.decisionId }, 'ext_authz HTTP denial header left out: HTTP cannot carry it')
      })
      send(res, status, { ...headers, 'x-portcullis-decision-id': outcome.decisionId }, denied.body)
      return
    }
    case 'refused':
      // a refusal is a denial: never a 5xx (PORTCULLIS_AUDIT_UNAVAILABLE's 503 would be a
      // failure failure_mode_allow may let through), so it is answered 403
      send(res, deniedStatus(outcome.error.status), { 'content-type': 'text/plain' }, outcome.error.code)
      return
    case 'error':
      log.warn({ code: outcome.error.code, transport: 'envoy-http' }, 'ext_authz HTTP check failed')
      send(res, outcome.error.status >= 500 ? outcome.error.status : 500, { 'content-type': 'text/plain', ...(outcome.decisionId !== undefined ? { 'x-portcullis-decision-id': outcome.decisionId } : {}) }, outcome.error.code)
  }
}

/** Time a forwarded request has to arrive whole (headers and body) before it is refused (408). */
const REQUEST_TIMEOUT_MS = 10_000

/** Starts the HTTP service-mode listener. */
export async function startEnvoyHttp (opts: EnvoyHttpOptions): Promise<EnvoyHttpServer> {
  const log = opts.logger ?? silentLogger
  // maxHeadersCount 0: Node's default (2,000 raw entries) dropped every header after the
  // 1,000th without a word, so a policy denying on a late header allowed; the 64 KiB header
  // size bounds them all. A request must arrive whole within REQUEST_TIMEOUT_MS (Envoy's own
  // ext_authz timeout is far shorter; Node's 300 s default let slow senders hold sockets).
  const server = createServer({ maxHeaderSize: 64 * 1024, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 }, (req, res) => {
    handle(opts, req, res, log).catch((err: unknown) => {
      log.error({ code: 'PORTCULLIS_INTERNAL', err }, 'ext_authz HTTP handler failed')
      send(res, 500, { 'content-type': 'text/plain' }, 'PORTCULLIS_INTERNAL')
    })
  })
  server.maxHeadersCount = 0
  watchConnectionErrors(server, { listener: 'envoy-http', metrics: opts.metrics, log, answer: true })
  // CONNECT asks for a tunnel, which no policy here judges; Node leaves the socket to a 'connect'
  // listener and, without one, closes it unanswered (which Envoy would count as a failure,
  // where failure_mode_allow may allow). Answered as a denial, audited and counted, then closed.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => { /* the caller went away: nothing to answer */ })
    const e = new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'CONNECT is not a request ext_authz forwards for a decision', { method: 'CONNECT' })
    const facts: ConnectionFacts = req.socket.remoteAddress !== undefined ? { remoteAddress: req.socket.remoteAddress } : {}
    opts.check.refuse({ attributes: { request: { http: httpRequestOf(req, req.url ?? '') } } }, facts, e)
      .catch((err: unknown) => { log.error({ code: 'PORTCULLIS_INTERNAL', err }, 'ext_authz HTTP CONNECT refusal failed') })
      .finally(() => {
        const body = e.code
        socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`)
      })
  })
  const i = opts.addr.lastIndexOf(':')
  const host = opts.addr.slice(0, i).replace(/^\[|\]$/g, '')
  const port = Number(opts.addr.slice(i + 1))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const a = server.address() as AddressInfo
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
  return {
    url,
    server,
    close: async (graceMs) => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.closeAllConnections(); resolve() }, graceMs)
        server.close(() => { clearTimeout(timer); resolve() })
        server.closeIdleConnections()
      })
    },
  }
}
