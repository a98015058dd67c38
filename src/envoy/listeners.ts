/**
 * The Envoy ext_authz listeners of one process, from the `envoy_ext_authz` configuration: the
 * gRPC Authorization service and the HTTP service mode, each with its own EnvoyCheck (so
 * metrics carry transport envoy-grpc / envoy-http). The runtime (server/runtime.ts) starts
 * and stops them beside the Data API; cli/serve.ts hands this factory in, so server/ never
 * imports envoy/.
 *
 * The gRPC server (grpc-js, proto loading, reflection, health) and the HTTP service mode are
 * imported when a listener they serve starts, so a process that serves neither never loads
 * them (their import is a large part of a server's start).
 */
import { IDENTITY_DEFAULTS } from '../config/defaults.js'
import type { ResolvedConfig } from '../config/load.js'
import type { DecisionService } from '../decision/decide.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import { trustedProxyMatcher } from '../identity/xfcc.js'
import { EnvoyCheck, inputPaths, type EnvoyCheckSettings, type EnvoyTransport } from './check.js'
import type { ServingSvid } from '../identity/workload-api/parse.js'
import type { EnvoyGrpcServer } from './grpc.js'
import type { EnvoyHttpServer } from './http.js'

/** Structurally server/runtime.ts's RuntimeParts. */
export interface EnvoyParts {
  config: Readonly<ResolvedConfig>
  decisions: DecisionService
  metrics: Metrics
  logger: Logger & { child?: (b: object) => Logger }
  /** The serving X.509-SVID (workload_api.serving_svid): TLS for the gRPC listener on TCP. */
  servingCertificates?: import('@grpc/grpc-js').experimental.CertificateProvider
  /** With servingCertificates: the SVID currently served (its per-trust-domain bundles judge the callers). */
  servingSvid?: () => ServingSvid | undefined
}

export interface EnvoyListeners {
  readonly name: string
  /** Bound gRPC address (host:port or unix:path) once started. */
  grpcAddress?: string
  /** HTTP service-mode URL once started. */
  httpUrl?: string
  start: () => Promise<string[]>
  stop: (graceMs: number) => Promise<void>
}

/** Builds the listeners the configuration enables (undefined when none is). */
export function envoyExtAuthz (parts: EnvoyParts): EnvoyListeners | undefined {
  const c = parts.config.envoy_ext_authz
  if (!c.grpc.enabled && !c.http.enabled) return undefined
  const log = (component: string): Logger => parts.logger.child?.({ component }) ?? parts.logger
  const trustedCaller = trustedProxyMatcher([...(parts.config.identity?.x509_svid.ext_authz.trusted_callers ?? IDENTITY_DEFAULTS.ext_authz.trusted_callers)])
  const settings: EnvoyCheckSettings = {
    path: c.path,
    skipRequestBodyParse: c.skip_request_body_parse,
    dryRun: c.dry_run,
    trustedCaller,
    // Off: every Check is evaluated (each CheckRequest differs anyway). On: the configured
    // volatile paths are left out of the key.
    ...(c.cache.enabled ? { cacheIgnorePaths: inputPaths(c.cache.ignore_input_paths) } : { cacheBypass: true }),
  }
  const checkOf = (transport: EnvoyTransport): EnvoyCheck => new EnvoyCheck({ decisions: parts.decisions, settings, transport, metrics: parts.metrics, logger: log(transport) })
  let grpc: EnvoyGrpcServer | undefined
  let http: EnvoyHttpServer | undefined
  const listeners: EnvoyListeners = {
    name: 'envoy ext_authz',
    start: async () => {
      const out: string[] = []
      if (c.grpc.enabled) {
        // TLS from the serving SVID on TCP; a unix socket stays plaintext (its file permissions are its access control).
        const wapi = parts.config.workload_api
        const require = wapi.envoy_grpc_client_auth === 'require'
        if (require && parts.servingSvid === undefined && parts.servingCertificates !== undefined) throw new Error('envoy gRPC client auth needs the serving SVID')
        const [{ startEnvoyGrpc }, { envoyPeerAuthorizer }] = await Promise.all([import('./grpc.js'), import('../identity/workload-api/peer.js')])
        const tls = parts.servingCertificates !== undefined && !c.grpc.addr.startsWith('unix:')
          ? { tls: { provider: parts.servingCertificates, requireClientCertificate: require, ...(require && parts.servingSvid !== undefined ? { authorizePeer: envoyPeerAuthorizer(parts.servingSvid, wapi.envoy_grpc_client_ids) } : {}) } }
          : {}
        grpc = await startEnvoyGrpc({ check: checkOf('envoy-grpc'), addr: c.grpc.addr, enableReflection: c.grpc.enable_reflection, maxRecvMsgSize: c.grpc.max_recv_msg_size, maxConcurrentStreams: c.grpc.max_concurrent_streams, receiveTimeoutMs: c.grpc.receive_timeout_ms, errorResponse: c.error_response, logger: log('envoy-grpc'), metrics: parts.metrics, ...tls })
        listeners.grpcAddress = grpc.address
        out.push(`grpc://${grpc.address}`)
      }
      if (c.http.enabled) {
        const { startEnvoyHttp } = await import('./http.js')
        http = await startEnvoyHttp({ check: checkOf('envoy-http'), addr: c.http.addr, pathPrefix: c.http.path_prefix, maxBodyBytes: c.http.max_body_bytes, logger: log('envoy-http'), metrics: parts.metrics })
        listeners.httpUrl = http.url
        out.push(http.url)
      }
      return out
    },
    stop: async (graceMs) => {
      await Promise.all([grpc?.close(graceMs), http?.close(graceMs)])
    },
  }
  return listeners
}
