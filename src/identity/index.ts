/**
 * Workload identity: turns a request's credential into a verified identity document
 * (`input.identity`), "no credential", or a rejection with a stable code.
 *
 * @example
 *   const verifier = createIdentityVerifier(validateIdentityConfig(raw.identity))
 *   await verifier.ready
 *   const r = await verifier.verify({ peerCertificates: socket.getPeerCertificate(true)... })
 *   if (r.kind === 'verified') input.identity = r.identity
 *   else if (r.kind === 'rejected') { if (verifier.config.on_rejected === 'deny') deny(r.error) else input.identity_error = r.error.toJSON() }
 *   else if (verifier.config.on_missing === 'deny') deny(...)
 *
 * Precedence when several credentials are present: mTLS peer > ext_authz peer certificate > XFCC > JWT-SVID > OIDC. The first one present decides; an invalid one is a rejection.
 */
import { EventEmitter } from 'node:events'
import type { Metrics } from '../metrics/index.js'
import { IdentityError, type PortcullisError, toPortcullisError } from '../errors.js'
import type { IdentityConfig } from '../config/schema.js'
import { credentialKey, VerifiedCredentialCache, type CacheStats } from './cache.js'
import { deepFreeze, type IdentityDocument } from './document.js'
import type { FetchLike, Timers } from './bundle-endpoint.js'
import { peekPayload } from './jwt.js'
import { OidcIssuer, type OidcFetch } from './oidc.js'
import { extAuthzPlugin, jwtSvidPlugin, mtlsPlugin, oidcPlugin, tokenFromHeader, xfccPlugin, type CredentialContext, type IdentityPlugin } from './plugins.js'
import { TrustStore, type Logger, type TrustChangeEvent, type TrustDomainStatus } from './trust-store.js'
import { verifyX509Svid, type X509Verification } from './x509-svid.js'
import type { TrustBundleSink } from './workload-api/index.js'

export type { CredentialContext, IdentityPlugin, PresentedCredential } from './plugins.js'
export type { IdentityDocument, IdentityType, CredentialSource, X509Details, KubernetesDetails } from './document.js'
export { validateIdentityConfig } from '../config/identity.js'
export { IDENTITY_DEFAULTS } from '../config/defaults.js'
export { JWT_SVID_ALGORITHMS, type IdentityConfig, type TrustDomainConfig, type OidcIssuerConfig, type BundleEndpointConfig } from '../config/schema.js'
export { parseSpiffeId, parseWorkloadSpiffeId, isTrustDomain, type SpiffeId } from './spiffe-id.js'
export type { TrustChangeEvent, TrustDomainStatus, SourceStatus, Logger } from './trust-store.js'
export type { CacheStats } from './cache.js'

export type IdentityResult =
  | { kind: 'verified', identity: IdentityDocument, cached?: boolean }
  | { kind: 'none' }
  | { kind: 'rejected', error: PortcullisError }

export interface IdentityStatus {
  /** Per trust domain: sources, sequence, loaded_at, last_error. */
  trust_domains: Record<string, TrustDomainStatus>
  /** Per OIDC issuer with a jwks_file: the same shape, keyed by issuer. */
  oidc_key_files: Record<string, TrustDomainStatus>
  cache: CacheStats & { enabled: boolean }
}

export interface IdentityVerifierOptions {
  logger?: Logger
  /** Clock used for every validity check and cache TTL. */
  now?: () => Date
  /** fetch for OIDC discovery / JWKS and bundle endpoints (default: global fetch / node:https). */
  fetch?: typeof fetch
  /** Timer functions of the bundle-endpoint poller and file-watch debounce (tests). */
  timers?: Timers
  /** Where the verified-credential cache counts hits and misses and reports its size. */
  metrics?: Metrics
}

export interface IdentityVerifier {
  readonly config: IdentityConfig
  /** Resolves when every trust source has been tried once (see status() for failures). */
  readonly ready: Promise<void>
  verify: (ctx: CredentialContext) => Promise<IdentityResult>
  /**
   * Verifies a DER chain (leaf first) as an X.509-SVID against the trust domains' X.509
   * authorities, whatever the configured sources: the TLS listener's client-certificate check.
   * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
   */
  verifyX509Svid: (chain: readonly Uint8Array[]) => Promise<X509Verification>
  status: () => IdentityStatus
  /** 'trust-change' fires after a trust bundle changed and the cache was emptied. */
  on: (event: 'trust-change', listener: (ev: TrustChangeEvent) => void) => IdentityVerifier
  off: (event: 'trust-change', listener: (ev: TrustChangeEvent) => void) => IdentityVerifier
  /** Where the SPIFFE Workload API's bundle streams deliver (workload-api/): sources beside the configured ones, per trust domain. */
  readonly workloadApiSink: TrustBundleSink
  /** Re-reads trust-bundle files now. */
  reload: () => Promise<void>
  /** Polls bundle endpoints now. */
  refresh: () => Promise<void>
  close: () => Promise<void>
}

const OIDC_PREFIX = 'oidc:'

/** Builds the verifier; trust sources start loading at once (await `ready`). */
export function createIdentityVerifier (config: IdentityConfig, opts: IdentityVerifierOptions = {}): IdentityVerifier {
  const now = opts.now ?? (() => new Date())
  const logger = opts.logger ?? {}
  const emitter = new EventEmitter()

  // OIDC issuers with a jwks_file are loaded and watched like trust domains, under "oidc:<issuer>"
  // (':' cannot occur in a trust domain name, so the two never collide).
  const domains: Record<string, IdentityConfig['trust_domains'][string]> = { ...config.trust_domains }
  for (const i of config.oidc.issuers) {
    if (i.jwks_file !== undefined) domains[OIDC_PREFIX + i.issuer] = { x509_authorities: [], spiffe_bundles: [], jwt_authorities: [i.jwks_file] }
  }
  const storeOpts: ConstructorParameters<typeof TrustStore>[1] = { now, logger, watch: config.watch }
  if (opts.fetch !== undefined) storeOpts.fetch = opts.fetch as unknown as FetchLike
  if (opts.timers !== undefined) storeOpts.timers = opts.timers
  const store = new TrustStore(domains, storeOpts)

  const issuers = config.oidc.issuers.map((c) => {
    const o: ConstructorParameters<typeof OidcIssuer>[1] = { now, fileBundle: () => store.bundle(OIDC_PREFIX + c.issuer) }
    if (opts.fetch !== undefined) o.fetch = opts.fetch as OidcFetch
    return new OidcIssuer(c, o)
  })

  const plugins: IdentityPlugin[] = []
  if (config.x509_svid.enabled) {
    // Fixed precedence regardless of the order sources are listed in.
    if (config.x509_svid.sources.includes('mtls')) plugins.push(mtlsPlugin(store))
    if (config.x509_svid.sources.includes('ext_authz')) plugins.push(extAuthzPlugin(store))
    if (config.x509_svid.sources.includes('xfcc')) plugins.push(xfccPlugin(store, config.x509_svid.xfcc))
  }
  if (config.jwt_svid.enabled) plugins.push(jwtSvidPlugin(store, config.jwt_svid, issuers))
  if (issuers.length > 0) plugins.push(oidcPlugin(issuers))
  const tokenHeaders = [...new Set([
    ...(config.jwt_svid.enabled ? [config.jwt_svid.header] : []),
    ...config.oidc.issuers.map((i) => i.header),
  ])]

  let cache: VerifiedCredentialCache | undefined
  if (config.cache.enabled) {
    const hits = opts.metrics?.identityCacheHits.series
    const misses = opts.metrics?.identityCacheMisses.series
    cache = new VerifiedCredentialCache({
      maxEntries: config.cache.max_entries,
      maxBytes: config.cache.max_bytes,
      maxTtlSeconds: config.cache.max_ttl_seconds,
      now,
      ...(hits !== undefined && misses !== undefined ? { counters: { hit: () => hits.inc(), miss: () => misses.inc() } } : {}),
    })
    const c = cache
    if (opts.metrics !== undefined) opts.metrics.identityCacheSize = () => c.memory()
  }
  let generation = 0
  store.on('trust-change', (ev: TrustChangeEvent) => {
    generation++
    cache?.clear()
    emitter.emit('trust-change', ev)
  })

  const rejected = (err: unknown): IdentityResult => {
    const error = err instanceof IdentityError ? err : toPortcullisError(err, 'PORTCULLIS_IDENTITY_MALFORMED')
    logger.debug?.({ code: error.code, err: error.message }, 'identity: credential rejected')
    return { kind: 'rejected', error }
  }

  const verify = async (ctx: CredentialContext): Promise<IdentityResult> => {
    await store.ready
    for (const plugin of plugins) {
      let cred
      try {
        cred = plugin.extract(ctx)
      } catch (err) {
        return rejected(err)
      }
      if (cred === undefined) continue
      // The key hashes the whole credential: only worth it when there is a cache to look in.
      const key = cache === undefined ? '' : credentialKey(`${cred.plugin}\0${cred.source}`, cred.material)
      const hit = cache?.get(key)
      if (hit !== undefined) return { kind: 'verified', identity: hit, cached: true }
      const gen = generation
      try {
        const t = now()
        const { identity, expiresAt } = await cred.verify(t)
        deepFreeze(identity)
        // A trust change during verification may have revoked what was just checked: do not cache then.
        if (gen === generation) cache?.set(key, identity, expiresAt)
        return { kind: 'verified', identity }
      } catch (err) {
        return rejected(err)
      }
    }
    // A token nobody claimed (unknown issuer, not a JWT-SVID) is still a presented credential.
    for (const h of tokenHeaders) {
      let token
      try { token = tokenFromHeader(ctx, h) } catch (err) { return rejected(err) }
      if (token === undefined) continue
      const iss = peekPayload(token)?.iss
      if (iss === undefined) return rejected(new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `token in ${h} is not a JWT`, { header: h }))
      return rejected(new IdentityError('PORTCULLIS_IDENTITY_ISSUER', `token in ${h} has issuer ${JSON.stringify(iss)}, which is not configured`, { header: h, issuer: iss }))
    }
    return { kind: 'none' }
  }

  const verifier: IdentityVerifier = {
    config,
    ready: store.ready,
    verify,
    verifyX509Svid: async (chain) => {
      await store.ready
      return await verifyX509Svid(chain, (td) => store.bundle(td), now(), 'mtls')
    },
    status: () => {
      const all = store.status()
      const trust_domains: Record<string, TrustDomainStatus> = {}
      const oidc_key_files: Record<string, TrustDomainStatus> = {}
      for (const [k, v] of Object.entries(all)) {
        if (k.startsWith(OIDC_PREFIX)) oidc_key_files[k.slice(OIDC_PREFIX.length)] = v
        else trust_domains[k] = v
      }
      return { trust_domains, oidc_key_files, cache: { enabled: cache !== undefined, ...(cache?.stats() ?? { size: 0, hits: 0, misses: 0, clears: 0 }) } }
    },
    on: (event, listener) => { emitter.on(event, listener); return verifier },
    off: (event, listener) => { emitter.off(event, listener); return verifier },
    workloadApiSink: {
      setWorkloadApiContents: (kind, contents, source) => { store.setWorkloadApiContents(kind, contents, source) },
      workloadApiFailed: (kind, err) => { store.workloadApiFailed(kind, err) },
    },
    reload: async () => await store.reload(),
    refresh: async () => await store.refresh(),
    close: async () => await store.close(),
  }
  return verifier
}
