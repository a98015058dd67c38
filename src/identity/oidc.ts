/**
 * OIDC-issued workload tokens: Kubernetes projected service-account tokens and cloud workload
 * identity tokens. Per issuer: exact `iss`, accepted audiences, algorithm allow-list, and keys
 * from OIDC discovery, a JWKS URL (jose createRemoteJWKSet: one fetch in flight, timeout,
 * cooldown, max cache age) or a JWKS file (loaded and hot-reloaded by the TrustStore).
 */
import { readFile } from 'node:fs/promises'
import * as http from 'node:http'
import * as https from 'node:https'
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JWK, type JWTVerifyGetKey } from 'jose'
import { IdentityError } from '../errors.js'
import type { OidcIssuerConfig } from '../config/schema.js'
import type { CredentialSource, IdentityDocument, KubernetesDetails } from './document.js'
import { audienceList, epochToIso, fromJoseError, inspectToken, isKeySelectionError, precheckKeys, verifyWithKeySet } from './jwt.js'
import type { TrustBundle } from './bundle.js'

export type OidcFetch = (input: string | URL, init?: RequestInit) => Promise<Response>

/** A fetch that trusts a private CA (for example the Kubernetes API server's) via node:https. */
export function caFetch (caPem: string, timeoutMs: number): OidcFetch {
  return async (input, init) => {
    const u = new URL(String(input))
    const mod = u.protocol === 'https:' ? https : http
    return await new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {}
      new Headers(init?.headers).forEach((v, k) => { headers[k] = v })
      const req = mod.get(u, { ca: caPem, headers, timeout: timeoutMs, signal: init?.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > 4 * 1024 * 1024) req.destroy(new Error('response too large'))
          else chunks.push(c)
        })
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0 })))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { name: 'TimeoutError' })))
      req.on('error', reject)
    })
  }
}

function unavailable (issuer: string, reason: string, cause?: unknown): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE', `OIDC issuer ${issuer}: ${reason}`, { issuer, reason }, cause === undefined ? undefined : { cause })
}

/** Kubernetes service-account claims (`kubernetes.io`), normalized; undefined when absent. */
export function kubernetesDetails (claims: Record<string, unknown>): KubernetesDetails | undefined {
  const k = claims['kubernetes.io']
  if (typeof k !== 'object' || k === null || Array.isArray(k)) return undefined
  const ko = k as Record<string, unknown>
  const ref = (v: unknown): { name: string, uid?: string } | undefined => {
    if (typeof v !== 'object' || v === null) return undefined
    const o = v as Record<string, unknown>
    if (typeof o.name !== 'string') return undefined
    return typeof o.uid === 'string' ? { name: o.name, uid: o.uid } : { name: o.name }
  }
  const sa = ref(ko.serviceaccount)
  if (typeof ko.namespace !== 'string' || sa === undefined) return undefined
  // The token's sub must agree with the structured claim (system:serviceaccount:<ns>:<name>).
  if (claims.sub !== `system:serviceaccount:${ko.namespace}:${sa.name}`) return undefined
  const out: KubernetesDetails = { namespace: ko.namespace, service_account: sa }
  const pod = ref(ko.pod)
  if (pod !== undefined) out.pod = pod
  const node = ref(ko.node)
  if (node !== undefined) out.node = node
  return out
}

export interface OidcIssuerOptions {
  fetch?: OidcFetch
  /** For jwks_file issuers: the JWKS loaded by the TrustStore. */
  fileBundle?: () => TrustBundle | undefined
  now: () => Date
}

/** One configured OIDC issuer. */
export class OidcIssuer {
  readonly config: OidcIssuerConfig
  readonly #opts: OidcIssuerOptions
  #remote: JWTVerifyGetKey | undefined
  #discovery: Promise<JWTVerifyGetKey> | undefined
  #discoveryFailedAt: number | undefined
  #fileKeySets = new WeakMap<TrustBundle, ReturnType<typeof createLocalJWKSet>>()
  #fetch: OidcFetch | undefined

  constructor (config: OidcIssuerConfig, opts: OidcIssuerOptions) {
    this.config = config
    this.#opts = opts
    this.#fetch = opts.fetch
  }

  async #fetchImpl (): Promise<OidcFetch | undefined> {
    if (this.config.ca !== undefined && this.#fetch === undefined) this.#fetch = caFetch(await readFile(this.config.ca, 'utf8'), this.config.timeout_ms)
    return this.#fetch
  }

  async #remoteKeySet (jwksUri: string): Promise<JWTVerifyGetKey> {
    const fetchImpl = await this.#fetchImpl()
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.config.timeout_ms,
      cooldownDuration: this.config.cooldown_ms,
      cacheMaxAge: this.config.max_cache_age_ms,
      ...(fetchImpl !== undefined ? { [customFetch]: fetchImpl as never } : {}),
    })
  }

  /** OpenID Connect Discovery 1.0 §4: fetch the configuration, check `issuer`, take `jwks_uri`. */
  async #discover (): Promise<JWTVerifyGetKey> {
    const iss = this.config.issuer.replace(/\/+$/, '')
    const url = `${iss}/.well-known/openid-configuration`
    const fetchImpl = (await this.#fetchImpl()) ?? fetch
    let res: Response
    try {
      res = await fetchImpl(url, { signal: AbortSignal.timeout(this.config.timeout_ms), headers: { accept: 'application/json' }, redirect: 'manual' })
    } catch (err) {
      throw unavailable(this.config.issuer, `discovery ${url} failed: ${(err as Error).message}`, err)
    }
    if (res.status !== 200) throw unavailable(this.config.issuer, `discovery ${url} answered HTTP ${res.status}`)
    let doc: unknown
    try { doc = await res.json() } catch (err) { throw unavailable(this.config.issuer, `discovery ${url} is not JSON`, err) }
    const d = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>
    // §4.3: the issuer in the document must be exactly the issuer we asked.
    if (d.issuer !== this.config.issuer) throw unavailable(this.config.issuer, `discovery document names issuer ${JSON.stringify(d.issuer)}`)
    if (typeof d.jwks_uri !== 'string') throw unavailable(this.config.issuer, 'discovery document has no jwks_uri')
    let jwks: URL
    try { jwks = new URL(d.jwks_uri) } catch { throw unavailable(this.config.issuer, 'discovery jwks_uri is not a URL') }
    const loopback = /^(localhost|127\.[0-9.]+|\[::1\])$/.test(jwks.hostname)
    if (jwks.protocol !== 'https:' && !(jwks.protocol === 'http:' && loopback)) throw unavailable(this.config.issuer, 'discovery jwks_uri must be https')
    return await this.#remoteKeySet(jwks.href)
  }

  async #keys (): Promise<{ getKey: JWTVerifyGetKey, local?: JWK[] }> {
    if (this.config.jwks_file !== undefined) {
      const bundle = this.#opts.fileBundle?.()
      if (bundle === undefined) throw unavailable(this.config.issuer, `JWKS file ${this.config.jwks_file} is not loaded`)
      let ks = this.#fileKeySets.get(bundle)
      if (ks === undefined) {
        ks = createLocalJWKSet({ keys: bundle.jwtAuthorities.map((k) => ({ ...k })) as JWK[] })
        this.#fileKeySets.set(bundle, ks)
      }
      return { getKey: ks, local: bundle.jwtAuthorities }
    }
    if (this.#remote !== undefined) return { getKey: this.#remote }
    if (this.config.jwks_uri !== undefined) {
      this.#remote = await this.#remoteKeySet(this.config.jwks_uri)
      return { getKey: this.#remote }
    }
    // Discovery: one attempt in flight; after a failure wait the cooldown before trying again.
    const nowMs = this.#opts.now().getTime()
    if (this.#discovery === undefined || (this.#discoveryFailedAt !== undefined && nowMs - this.#discoveryFailedAt >= this.config.cooldown_ms)) {
      this.#discoveryFailedAt = undefined
      this.#discovery = this.#discover()
      this.#discovery.then((k) => { this.#remote = k }, () => { this.#discoveryFailedAt = this.#opts.now().getTime() })
    }
    return { getKey: await this.#discovery }
  }

  /** Verifies a token of this issuer; throws IdentityError. */
  async verify (token: string, now: Date, source: CredentialSource = 'header'): Promise<{ identity: IdentityDocument, expiresAt: Date }> {
    const { header } = inspectToken(token, this.config.algorithms)
    const { getKey, local } = await this.#keys()
    if (local !== undefined) precheckKeys(local, header)
    const guarded: JWTVerifyGetKey = async (h, t) => {
      try {
        return await getKey(h, t)
      } catch (err) {
        if (isKeySelectionError(err) || err instanceof IdentityError) throw err
        throw unavailable(this.config.issuer, `keys could not be fetched: ${(err as Error).message}`, err)
      }
    }
    let verified
    try {
      verified = await verifyWithKeySet(token, guarded, {
        issuer: this.config.issuer,
        audience: [...this.config.audiences],
        algorithms: [...this.config.algorithms],
        requiredClaims: ['exp', 'iss', 'sub', 'aud'],
        clockTolerance: this.config.leeway_seconds,
        currentDate: now,
      })
    } catch (err) {
      throw fromJoseError(err, `token of issuer ${this.config.issuer}`)
    }
    const claims = verified.payload as Record<string, unknown>
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', 'token "sub" is not a non-empty string', { claim: 'sub' })
    const expiresAt = new Date((claims.exp as number) * 1000)
    if (Number.isNaN(expiresAt.getTime())) throw new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', `token "exp" ${String(claims.exp)} is not a time`, { claim: 'exp', reason: 'invalid' })
    const identity: IdentityDocument = {
      type: 'oidc',
      source,
      subject: claims.sub,
      issuer: this.config.issuer,
      audience: audienceList(claims.aud),
      expires_at: expiresAt.toISOString(),
      claims,
    }
    const iat = epochToIso(claims.iat)
    if (iat !== undefined) identity.issued_at = iat
    const k8s = kubernetesDetails(claims)
    if (k8s !== undefined) identity.kubernetes = k8s
    return { identity, expiresAt }
  }
}
