/**
 * The serving X.509-SVID as a grpc-js CertificateProvider (grpc-js ≥ 1.10 `experimental`):
 * `createCertificateProviderServerCredentials` turns each update into `setSecureContext` on the
 * listener's http2 secure server — new handshakes get the new certificate, open connections
 * keep theirs (in-place rotation, nothing dropped). The CA side carries the SVID response's
 * bundles (own trust domain and federated ones) for client-certificate checks.
 */
import type { experimental } from '@grpc/grpc-js'
import type { ServingSvid } from './parse.js'

type CaListener = experimental.CaCertificateUpdateListener
type IdentityListener = experimental.IdentityCertificateUpdateListener

export class SvidCertificateProvider implements experimental.CertificateProvider {
  readonly #ca = new Set<CaListener>()
  readonly #identity = new Set<IdentityListener>()
  #svid: ServingSvid | undefined

  constructor (initial?: ServingSvid) {
    this.#svid = initial
  }

  /** A new SVID (or bundle): every listener is told at once. */
  update (svid: ServingSvid): void {
    this.#svid = svid
    for (const l of this.#identity) l(this.#identityUpdate())
    for (const l of this.#ca) l(this.#caUpdate())
  }

  /** No SVID any more (PermissionDenied, removed): grpc-js then refuses new handshakes; open connections keep theirs. */
  clear (): void {
    if (this.#svid === undefined) return
    this.#svid = undefined
    for (const l of this.#identity) l(null)
    for (const l of this.#ca) l(null)
  }

  #identityUpdate (): experimental.IdentityCertificateUpdate | null {
    return this.#svid === undefined ? null : { certificate: Buffer.from(this.#svid.certPem), privateKey: Buffer.from(this.#svid.keyPem) }
  }

  #caUpdate (): experimental.CaCertificateUpdate | null {
    return this.#svid === undefined || this.#svid.caPem === '' ? null : { caCertificate: Buffer.from(this.#svid.caPem) }
  }

  /*
   * The current certificate reaches a new listener on the next microtask, not synchronously:
   * grpc-js 1.14 (CertificateProviderServerCredentials._addWatcher) subscribes to the provider
   * *before* it registers the listening server's watcher, so a synchronous answer would be lost
   * and a listener bound while an SVID is already held would drop every connection until the
   * next rotation.
   */
  addCaCertificateListener (listener: CaListener): void {
    this.#ca.add(listener)
    queueMicrotask(() => { if (this.#svid !== undefined && this.#ca.has(listener)) listener(this.#caUpdate()) })
  }

  removeCaCertificateListener (listener: CaListener): void { this.#ca.delete(listener) }

  addIdentityCertificateListener (listener: IdentityListener): void {
    this.#identity.add(listener)
    queueMicrotask(() => { if (this.#svid !== undefined && this.#identity.has(listener)) listener(this.#identityUpdate()) })
  }

  removeIdentityCertificateListener (listener: IdentityListener): void { this.#identity.delete(listener) }
}
