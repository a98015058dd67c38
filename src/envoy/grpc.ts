/**
 * The gRPC shell of the ext_authz adapter: `envoy.service.auth.v3.Authorization/Check` on
 * @grpc/grpc-js, with the .proto files in proto/ (wire-compatible with Envoy's API),
 * grpc.health.v1 (grpc-health-check) and, as an option, server reflection (@grpc/reflection).
 * Everything between the decoded CheckRequest and the verdict is check.ts.
 */
import cluster from 'node:cluster'
import { chmodSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'
import { HealthImplementation } from 'grpc-health-check'
import { PortcullisError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import type { EnvoyCheck } from './check.js'
import { clearStaleUnixSocket, unixSocketPath } from './unix-socket.js'
import type { PeerCertificate, DetailedPeerCertificate } from 'node:tls'
import type { PeerAuthorizer } from '../identity/workload-api/peer.js'
import type { CheckRequest } from './input.js'
import type { Metrics } from '../metrics/index.js'
import { refusedResponse, checkResponseOf, errorResponseOf } from './response.js'

/** proto/ at the package root (the same two levels up from src/envoy/ and dist/envoy/). */
export const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto')
export const EXTERNAL_AUTH_PROTO = 'envoy/service/auth/v3/external_auth.proto'
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization'

/**
 * Loader options: lowerCamelCase names (the JSON names opa-envoy-plugin's input uses), int64
 * as numbers, enums as numbers, only the fields present on the wire.
 */
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: Number, defaults: false, oneofs: false, includeDirs: [PROTO_DIR] }

function loadExternalAuth (): protoLoader.PackageDefinition {
  return protoLoader.loadSync(EXTERNAL_AUTH_PROTO, LOADER_OPTIONS)
}

export interface EnvoyGrpcOptions {
  check: EnvoyCheck
  /** host:port, or unix:/path/to.sock */
  addr: string
  enableReflection: boolean
  maxRecvMsgSize: number
  /** Most calls in flight on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number
  /** A unary call whose message has not arrived whole this long after it started is ended. */
  receiveTimeoutMs: number
  /** Evaluation errors as CheckResponse.error_response instead of a gRPC error status. */
  errorResponse: boolean
  /**
   * TLS from a certificate provider (the Workload API's X.509-SVID): grpc-js applies each update
   * with setSecureContext on its http2 server, so rotation never drops open connections. With
   * requireClientCertificate, clients must present a certificate chaining to the provider's CAs
   * (a union of trust domains: only a first filter), and `authorizePeer` then judges every
   * call's peer chain (its own trust domain's bundle, the allow-list) before the handler runs.
   */
  tls?: { provider: grpc.experimental.CertificateProvider, requireClientCertificate: boolean, authorizePeer?: PeerAuthorizer }
  logger?: Logger
  /** Calls ended below the handler are counted in portcullis_connection_errors_total{listener="envoy-grpc", kind="grpc_request"}. */
  metrics?: Metrics
}

export interface EnvoyGrpcServer {
  /** The bound address: host:port (the real port when 0 was asked) or unix:/path. */
  address: string
  /** Graceful: no new calls, in-flight calls finish (up to graceMs), then the rest are cut. */
  close: (graceMs: number) => Promise<void>
}

/** The caller's address from grpc-js's peer string (`1.2.3.4:5`, `[::1]:5`). */
function peerAddress (peer: string): string | undefined {
  const m = /^(?:ipv[46]:)?\[([^\]]+)\]:\d+$/.exec(peer) ?? /^(?:ipv4:)?([^:]+):\d+$/.exec(peer)
  return m?.[1]
}

function isUnix (addr: string): boolean {
  return addr.startsWith('unix:')
}

/**
 * The client's certificate chain (DER, leaf first) of a server call. grpc-js's public
 * getAuthContext() gives the leaf only; the intermediates the client sent come from the TLS
 * socket behind the call's http2 stream (grpc-js 1.14 internals, hence the ~1.14 pin; without
 * them the leaf alone is judged, which refuses a chain that needs an intermediate: fail closed).
 */
function peerChain (call: grpc.ServerInterceptingCallInterface): Buffer[] | undefined {
  const socket = (call as unknown as { stream?: { session?: { socket?: { getPeerCertificate?: (detailed: boolean) => DetailedPeerCertificate, authorized?: boolean } } } }).stream?.session?.socket
  if (socket?.getPeerCertificate !== undefined && socket.authorized === true) {
    const out: Buffer[] = []
    let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
    // Node's chain ends at the trust anchor, whose issuerCertificate is itself: it is not sent.
    while (c?.raw !== undefined && out.length < 16) {
      if (out.length > 0 && c.issuerCertificate === c) break
      out.push(c.raw)
      if (c.issuerCertificate === c) break
      c = c.issuerCertificate
    }
    if (out.length > 0) return out
  }
  const leaf: PeerCertificate | undefined = call.getAuthContext().sslPeerCertificate
  return leaf?.raw !== undefined ? [leaf.raw] : undefined
}

/**
 * Limits of the gRPC listener against callers that hold memory (each incomplete message is
 * buffered up to max_recv_msg_size): at most `maxConcurrentStreams` calls per connection (Envoy
 * opens another connection when it needs more), a unary call's message must arrive within
 * `receiveTimeoutMs` of its start, and a connection idle for IDLE_MS is closed (GOAWAY; Envoy
 * reconnects). One connection could otherwise hold 300 streams of 4 MiB less a byte: 1.2 GB.
 */
const IDLE_MS = 300_000

/**
 * Ends a unary call whose request message has not arrived within `ms` of its start
 * (PORTCULLIS_ENVOY_REQUEST_TIMEOUT, DEADLINE_EXCEEDED): its partial message is dropped with the
 * stream. Streaming calls (reflection) are left alone.
 */
function receiveTimeoutInterceptor (ms: number, log: Logger, onTimeout: () => void): grpc.ServerInterceptor {
  return (method, call) => {
    if (method.requestStream) return new grpc.ServerInterceptingCall(call)
    let timer: NodeJS.Timeout | undefined
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          timer = undefined
          const err = new PortcullisError('PORTCULLIS_ENVOY_REQUEST_TIMEOUT', `the request message did not arrive within ${ms} ms`)
          onTimeout()
          log.warn({ code: err.code, method: method.path, peer: call.getPeer() }, 'ext_authz gRPC call ended: its message did not arrive in time')
          const md = new grpc.Metadata()
          md.set('portcullis-error-code', err.code)
          intercepting.sendStatus({ code: err.grpcCode, details: `${err.code}: ${err.message}`, metadata: md })
        }, ms)
        timer.unref()
        next(new grpc.ServerListenerBuilder()
          .withOnReceiveMessage((message, pass) => { clearTimeout(timer); pass(message) })
          .withOnCancel(() => { clearTimeout(timer) })
          .build())
      },
    })
    return intercepting
  }
}

/** Judges each call's peer before the handler (and before its message is read). */
function peerInterceptor (authorize: PeerAuthorizer, log: Logger): grpc.ServerInterceptor {
  return (_method, call) => {
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next(new grpc.ServerListenerBuilder().withOnReceiveMetadata((metadata, pass) => {
          const refuse = (err: PortcullisError): void => {
            log.warn({ code: err.code, err: err.message, peer: call.getPeer() }, 'ext_authz gRPC caller refused')
            const md = new grpc.Metadata()
            md.set('portcullis-error-code', err.code)
            intercepting.sendStatus({ code: err.grpcCode, details: `${err.code}: ${err.message}`, metadata: md })
          }
          const chain = peerChain(call)
          if (chain === undefined) { refuse(new PortcullisError('PORTCULLIS_IDENTITY_REQUIRED', 'no client certificate')); return }
          authorize(chain).then((v) => { if (v.ok) pass(metadata); else refuse(v.error) }, (err: unknown) => {
            refuse(new PortcullisError('PORTCULLIS_IDENTITY_UNTRUSTED', (err as Error).message))
          })
        }).build())
      },
    })
    return intercepting
  }
}

/** Starts the gRPC listener. */
export async function startEnvoyGrpc (opts: EnvoyGrpcOptions): Promise<EnvoyGrpcServer> {
  const log = opts.logger ?? silentLogger
  const definition = loadExternalAuth()
  const service = (grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } })
    .envoy.service.auth.v3.Authorization.service
  const countRefusal = (code: string): void => { opts.metrics?.connectionErrors.inc({ listener: 'envoy-grpc', kind: 'grpc_request', code }) }
  const receiveTimeout = receiveTimeoutInterceptor(opts.receiveTimeoutMs, log, () => { countRefusal('PORTCULLIS_ENVOY_REQUEST_TIMEOUT') })
  // A message protobuf cannot decode never reaches the handler: grpc-js answers INTERNAL
  // ("Error deserializing request"). Counted and logged (at most every 10 s) here.
  const checkMethod = service.Check as grpc.MethodDefinition<unknown, unknown>
  const deserialize = checkMethod.requestDeserialize
  let undecodableLoggedAt = -Infinity
  let undecodableSuppressed = 0
  const decodeCounted = (b: Buffer): unknown => {
    try {
      return deserialize(b)
    } catch (err) {
      countRefusal('PORTCULLIS_ENVOY_REQUEST_INVALID')
      const t = Date.now()
      if (t - undecodableLoggedAt >= 10_000) {
        log.warn({ code: 'PORTCULLIS_ENVOY_REQUEST_INVALID', err: (err as Error).message, bytes: b.length, suppressed: undecodableSuppressed }, 'ext_authz gRPC CheckRequest cannot be decoded (logged at most every 10 s; portcullis_connection_errors_total counts all)')
        undecodableLoggedAt = t
        undecodableSuppressed = 0
      } else undecodableSuppressed++
      throw err
    }
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRecvMsgSize,
    'grpc.max_concurrent_streams': opts.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': IDLE_MS,
    // channelz (grpc-js's introspection service, not served here) otherwise tracks every call
    'grpc.enable_channelz': 0,
    interceptors: [
      receiveTimeout,
      ...(opts.tls?.requireClientCertificate === true && opts.tls.authorizePeer !== undefined ? [peerInterceptor(opts.tls.authorizePeer, log)] : []),
    ],
  })
  const unix = isUnix(opts.addr)

  server.addService({ ...service, Check: { ...checkMethod, requestDeserialize: decodeCounted } }, {
    Check: (call: grpc.ServerUnaryCall<CheckRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const controller = new AbortController()
      const deadline = call.getDeadline()
      const expired = (): boolean => deadline instanceof Date ? deadline.getTime() <= Date.now() : Number.isFinite(deadline) && deadline <= Date.now()
      const gone = (): PortcullisError => expired()
        ? new PortcullisError('PORTCULLIS_ENVOY_DEADLINE_EXCEEDED', 'the Check deadline passed')
        : new PortcullisError('PORTCULLIS_ENVOY_CANCELLED', 'the caller cancelled the Check')
      // grpc-js cancels the call itself when the deadline passes (and ignores a late answer);
      // the decision stops before evaluation if it has not started. grpc-js also emits
      // 'cancelled' after every answered call (sendStatus -> notifyOnCancel): once answered,
      // the event is ignored, and the error (a stack trace) is built only for a real cancel.
      let answered = false
      const answer: grpc.sendUnaryData<unknown> = (err, value) => {
        answered = true
        callback(err, value)
      }
      call.on('cancelled', () => {
        if (!answered) controller.abort(gone())
      })
      if (expired()) controller.abort(gone())
      const remoteAddress = unix ? undefined : peerAddress(call.getPeer())
      opts.check.check(call.request ?? {}, { ...(remoteAddress !== undefined ? { remoteAddress } : {}), unixSocket: unix, signal: controller.signal })
        .then((outcome) => {
          if (controller.signal.aborted) {
            const reason = controller.signal.reason as PortcullisError
            answer({ code: reason.grpcCode, details: `${reason.code}: ${reason.message}` })
            return
          }
          switch (outcome.kind) {
            case 'decided':
              answer(null, checkResponseOf(outcome.verdict, outcome.decisionId, { structured: outcome.structured }))
              return
            case 'refused':
              answer(null, refusedResponse(outcome.error))
              return
            case 'error': {
              if (opts.errorResponse) {
                answer(null, errorResponseOf(outcome.error, outcome.decisionId))
                return
              }
              const metadata = new grpc.Metadata()
              metadata.set('portcullis-error-code', outcome.error.code)
              if (outcome.decisionId !== undefined) metadata.set('portcullis-decision-id', outcome.decisionId)
              answer({ code: outcome.error.grpcCode, details: `${outcome.error.code}: ${outcome.error.message}`, metadata })
            }
          }
        })
        .catch((err: unknown) => {
          // check() turns every failure into an outcome; this is a fault in the shell itself.
          log.error({ code: 'PORTCULLIS_INTERNAL', err }, 'ext_authz gRPC handler failed')
          answer({ code: grpc.status.INTERNAL, details: 'PORTCULLIS_INTERNAL' })
        })
    },
  })

  // SERVING only while the decision path can be answered (bundles active, path compiled), so
  // Envoy's gRPC health checks stop sending Checks to an instance that could only fail them.
  const servingStatus = (): 'SERVING' | 'NOT_SERVING' => opts.check.ready() ? 'SERVING' : 'NOT_SERVING'
  const health = new HealthImplementation({ '': servingStatus(), [AUTHORIZATION_SERVICE]: servingStatus() })
  health.addToServer(server)
  let closing = false
  const unsubscribe = opts.check.onReadinessChange(() => {
    if (closing) return
    const status = servingStatus()
    health.setStatus('', status)
    health.setStatus(AUTHORIZATION_SERVICE, status)
  })
  if (opts.enableReflection) new ReflectionService(definition).addToServer(server)

  // A socket file left by a crashed process would make the bind fail with EADDRINUSE. In a
  // worker of a group the primary did this before forking (cli/serve.ts): the socket a worker
  // finds there is the group's own, shared through node:cluster.
  if (unix && !cluster.isWorker) {
    const path = unixSocketPath(opts.addr)
    if (await clearStaleUnixSocket(path) === 'removed') log.warn({ path }, 'removed a stale unix socket left by an earlier process')
  }
  const port = await new Promise<number>((resolve, reject) => {
    // grpc-js names this function's parameters (ca, identity) but hands them to the credentials'
    // constructor as (identity, ca): the first argument is the identity provider.
    const credentials = opts.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.experimental.createCertificateProviderServerCredentials(opts.tls.provider, opts.tls.requireClientCertificate ? opts.tls.provider : null, opts.tls.requireClientCertificate)
    server.bindAsync(opts.addr, credentials, (err, p) => { if (err !== null) reject(err); else resolve(p) })
  })
  // Every caller on a unix socket is a trusted ext_authz caller (its source.certificate is
  // believed), so the socket is never open to every local user, whatever the umask: the
  // world's permissions are taken away (owner and group keep theirs).
  if (unix) {
    const path = unixSocketPath(opts.addr)
    try {
      const mode = statSync(path).mode & 0o777
      if ((mode & 0o007) !== 0) chmodSync(path, mode & 0o770)
    } catch (err) {
      server.forceShutdown()
      throw new PortcullisError('PORTCULLIS_LISTEN_FAILED', `cannot restrict the permissions of unix socket ${path}: ${(err as Error).message}`, { addr: opts.addr, reason: 'chmod' })
    }
  }
  const address = unix ? opts.addr : `${opts.addr.slice(0, opts.addr.lastIndexOf(':'))}:${port}`
  return {
    address,
    close: async (graceMs) => {
      closing = true
      unsubscribe()
      health.setStatus('', 'NOT_SERVING')
      health.setStatus(AUTHORIZATION_SERVICE, 'NOT_SERVING')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve() }, graceMs)
        server.tryShutdown(() => { clearTimeout(timer); resolve() })
      })
    },
  }
}
