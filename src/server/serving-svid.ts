/**
 * The serving X.509-SVID (workload_api.serving_svid) wired to the TLS listeners: the SVID the
 * Workload API streams becomes the Data API's certificate, and, through a grpc-js certificate
 * provider, the certificate of the listeners beside it (the Envoy gRPC listener on TCP). Every
 * new SVID is served from the next handshake on; with none (none yet, or removed by
 * PermissionDenied) new connections are refused, never served with a stale or absent identity.
 */
import type { Logger as PinoLogger } from 'pino'
import type { Metrics } from '../metrics/index.js'
import type { ServingSvid, SvidCertificateProvider, WorkloadApi } from '../identity/workload-api/index.js'
import { secureContextWith, type TlsSettings } from './tls.js'

/** Keeps `provider` (handed to the listeners beside the Data API) and the SVID expiry gauge on the Workload API's SVID. */
export function feedCertificateProvider (workloadApi: WorkloadApi, provider: SvidCertificateProvider, metrics: Metrics): SvidCertificateProvider {
  workloadApi.on('svid', (svid: ServingSvid) => {
    provider.update(svid)
    metrics.workloadApiSvidExpiry.set(Math.floor(svid.notAfter.getTime() / 1000))
  })
  workloadApi.on('svid-removed', () => {
    provider.clear()
    metrics.workloadApiSvidExpiry.set(0)
  })
  return provider
}

/**
 * Serves the Data API's TLS (`server`, the app's node:https server) with the Workload API's
 * SVID: every new SVID replaces the secure context in place (new handshakes get it, open
 * connections keep theirs), as the certificate-file watcher does.
 */
export function serveDataApiWithSvid (server: unknown, tls: TlsSettings, workloadApi: WorkloadApi, logger: PinoLogger): void {
  const https = server as { setSecureContext: (o: object) => void, prependListener: (e: 'connection', l: (s: { destroy: () => void }) => void) => void }
  const apply = (svid: ServingSvid): void => {
    try {
      https.setSecureContext(secureContextWith(tls, { cert: svid.certPem, key: svid.keyPem }))
      logger.info({ spiffe_id: svid.spiffeId, expires_at: svid.notAfter.toISOString() }, 'serving certificate set from the Workload API')
    } catch (err) {
      logger.error({ code: (err as { code?: string }).code ?? 'PORTCULLIS_CONFIG_INVALID', err: (err as Error).message }, 'serving certificate from the Workload API refused; keeping the current one')
    }
  }
  workloadApi.on('svid', apply)
  if (workloadApi.svid !== undefined) apply(workloadApi.svid)
  // No SVID (none yet, or removed by PermissionDenied): a secure context cannot be unset, so
  // new connections are closed before their handshake (fail closed); open ones finish.
  https.prependListener('connection', (socket) => { if (workloadApi.svid === undefined) socket.destroy() })
}
