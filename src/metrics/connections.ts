/**
 * Failures below any request: TLS handshakes that fail (a client certificate OpenSSL refuses on a
 * listener with server.tls.client_ca_file, no shared protocol or cipher, plain HTTP sent to a TLS
 * port) and requests Node's HTTP parser refuses (a malformed request line or header, headers over
 * the size limit, a request that timed out). Node closes such connections itself, so without this
 * they leave no trace: each is counted by listener, kind and Node's error code, and logged as a
 * warning at most once per listener and kind every LOG_EVERY_MS with the number since (a peer can
 * cause any number of them: the counter is the signal, the log names an example).
 *
 * Not seen here: a client certificate OpenSSL refuses on a listener with client_ca_file and
 * client_auth require (Node destroys that socket without an event), and the Envoy gRPC listener
 * (grpc-js owns its HTTP/2 servers). Client certificates the listener's gate refuses are
 * answered with their code and counted in portcullis_request_errors_total.
 */
import type { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import type { Logger } from '../log.js'
import type { Metrics } from './index.js'

/** grpc_request: a gRPC call ended below the handler (undecodable message, message not in time: src/envoy/grpc.ts). */
export type ConnectionErrorKind = 'tls_handshake' | 'http_request' | 'grpc_request'

const LOG_EVERY_MS = 10_000

/** Node's and OpenSSL's codes (ERR_SSL_WRONG_VERSION_NUMBER, HPE_INVALID_METHOD, ...): a bounded label. */
function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? code : 'UNKNOWN'
}

/** Node's own answer to a request its parser refused (what it sends when no clientError listener exists). */
function answerRefused (err: unknown, socket: Socket): void {
  const code = codeOf(err)
  if (code !== 'ECONNRESET' && socket.writable && socket.bytesWritten === 0) {
    const status = code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`)
  }
  socket.destroy()
}

export interface ConnectionErrorOptions {
  /** The listener's name in the metric and the log: data-api, envoy-http. */
  listener: string
  metrics?: Metrics | undefined
  log: Logger
  /**
   * Answer refused requests as Node does by default. A `clientError` listener replaces Node's
   * answer, so a plain node:http server needs this; fastify answers them itself (its own
   * listener runs after this one).
   */
  answer: boolean
}

/** Counts and logs the connection-level failures of `server` (an http, https or tls server). */
export function watchConnectionErrors (server: EventEmitter, opts: ConnectionErrorOptions): void {
  const last = new Map<ConnectionErrorKind, { at: number, suppressed: number }>()
  const record = (kind: ConnectionErrorKind, err: unknown, socket: Socket | undefined): void => {
    const code = codeOf(err)
    // a peer that hangs up mid-request is not a refused request
    if (code === 'ECONNRESET') return
    opts.metrics?.connectionErrors.inc({ listener: opts.listener, kind, code })
    const now = Date.now()
    const seen = last.get(kind)
    if (seen !== undefined && now - seen.at < LOG_EVERY_MS) {
      seen.suppressed++
      return
    }
    last.set(kind, { at: now, suppressed: 0 })
    opts.log.warn({
      code,
      listener: opts.listener,
      kind,
      remote: socket?.remoteAddress,
      ...(seen !== undefined && seen.suppressed > 0 ? { more_since_last_log: seen.suppressed } : {}),
    }, kind === 'tls_handshake' ? 'TLS handshake failed; connection closed' : 'request refused by the HTTP parser; connection closed')
  }
  server.on('tlsClientError', (err: unknown, socket: Socket) => { record('tls_handshake', err, socket) })
  server.on('clientError', (err: unknown, socket: Socket) => {
    record('http_request', err, socket)
    if (opts.answer) answerRefused(err, socket)
  })
}
