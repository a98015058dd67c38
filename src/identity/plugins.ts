/**
 * The identity plugin interface and the built-in plugins, in precedence order:
 *
 *   mtls (our own TLS listener) > ext_authz (Envoy's source.certificate) > XFCC > JWT-SVID > OIDC
 *
 * The first plugin that finds its kind of credential in the request decides: its verified
 * identity or its rejection is the result, and credentials of lower precedence are not read.
 * A credential that is present but unusable (malformed, from an untrusted proxy) is a
 * rejection, never "no credential".
 */
import { IdentityError } from '../errors.js'
import type { IdentityConfig } from '../config/schema.js'
import type { CredentialSource, IdentityDocument } from './document.js'
import { peekPayload } from './jwt.js'
import { verifyJwtSvidNow } from './jwt-svid.js'
import type { OidcIssuer } from './oidc.js'
import { pemCertificates } from './pem.js'
import type { TrustStore } from './trust-store.js'
import { verifyX509Svid } from './x509-svid.js'
import { assertUnambiguous, parseXfcc, trustedProxyMatcher } from './xfcc.js'
import { createHash } from 'node:crypto'

/** What the transport knows about the request's credentials. */
export interface CredentialContext {
  /** DER certificates the client presented to our own TLS listener, leaf first. */
  peerCertificates?: Buffer[]
  /** Request headers, lowercase names. */
  headers?: Record<string, string | string[] | undefined>
  /** Address of the direct peer (the proxy, when there is one). */
  remoteAddress?: string
  /**
   * URL-encoded PEM of the downstream peer certificate from an Envoy ext_authz CheckRequest
   * (`source.certificate`). The envoy/ transport sets it only for a trusted ext_authz caller.
   */
  extAuthzPeerCertificate?: string
}

export interface Verified {
  identity: IdentityDocument
  expiresAt: Date
}

/** A credential a plugin found in a request, not yet verified. */
export interface PresentedCredential {
  plugin: string
  source: CredentialSource
  /** The complete credential (the whole DER chain, the whole token): the cache key's material. */
  material: Uint8Array[]
  /**
   * Verifies the credential. May answer synchronously (and throw synchronously) when nothing
   * in the check is asynchronous (the common JWT-SVID): the verifier awaits it inside its try.
   */
  verify: (now: Date) => Verified | Promise<Verified>
}

export interface IdentityPlugin {
  readonly name: string
  /**
   * Looks for this plugin's credential. Returns undefined when the request carries none;
   * throws IdentityError when it carries one that cannot be used at all.
   */
  extract: (ctx: CredentialContext) => PresentedCredential | undefined
}

function header (ctx: CredentialContext, name: string): string | undefined {
  const v = ctx.headers?.[name]
  if (v === undefined) return undefined
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined
    if (v.length > 1) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `header ${name} appears ${v.length} times; a credential must be unambiguous`, { header: name })
    return v[0]
  }
  return v
}

/**
 * The token in `name`: for `authorization` the credentials of a Bearer scheme (other schemes
 * are not ours), for any other header its whole value.
 */
export function tokenFromHeader (ctx: CredentialContext, name: string): string | undefined {
  const v = header(ctx, name)
  if (v === undefined) return undefined
  if (name === 'authorization') {
    const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:[ ]+(.*))?$/.exec(v.trim())
    if (m === null || (m[1] as string).toLowerCase() !== 'bearer') return undefined
    const token = (m[2] ?? '').trim()
    if (token === '') throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', 'Authorization: Bearer without a token', { header: name })
    return token
  }
  const token = v.trim()
  if (token === '') throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `header ${name} is empty`, { header: name })
  return token
}

function x509Credential (plugin: string, source: CredentialSource, chain: Uint8Array[], store: TrustStore): PresentedCredential {
  return {
    plugin,
    source,
    material: chain,
    verify: async (now) => await verifyX509Svid(chain, (td) => store.bundle(td), now, source),
  }
}

/** (a) mTLS on Portcullis's own listener. */
export function mtlsPlugin (store: TrustStore): IdentityPlugin {
  return {
    name: 'x509-svid/mtls',
    extract: (ctx) => {
      const chain = ctx.peerCertificates
      if (chain === undefined || chain.length === 0) return undefined
      return x509Credential('x509-svid', 'mtls', chain, store)
    },
  }
}

/**
 * Envoy ext_authz `source.certificate` (include_peer_certificate): the certificate the
 * downstream presented to Envoy, URL-encoded PEM (leaf first, any intermediates after). It is
 * verified as an X.509-SVID like any other; whether the caller may vouch for it at all was
 * judged by the transport (a certificate is public, its key is not).
 */
export function extAuthzPlugin (store: TrustStore): IdentityPlugin {
  return {
    name: 'x509-svid/ext_authz',
    extract: (ctx) => {
      const raw = ctx.extAuthzPeerCertificate
      if (raw === undefined || raw === '') return undefined
      let pem: string
      try {
        pem = decodeURIComponent(raw)
      } catch {
        throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', 'source.certificate is not URL-encoded PEM', { source: 'ext_authz' })
      }
      const chain = pemCertificates(pem, 'source.certificate')
      if (chain.length === 0) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', 'source.certificate holds no certificate', { source: 'ext_authz' })
      return x509Credential('x509-svid', 'ext_authz', chain, store)
    },
  }
}

/** (b) Envoy's x-forwarded-client-cert, only from a configured trusted proxy. */
export function xfccPlugin (store: TrustStore, cfg: IdentityConfig['x509_svid']['xfcc']): IdentityPlugin {
  const trusted = trustedProxyMatcher(cfg.trusted_proxies)
  return {
    name: 'x509-svid/xfcc',
    extract: (ctx) => {
      const raw = ctx.headers?.[cfg.header]
      if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) return undefined
      if (!trusted(ctx.remoteAddress)) {
        throw new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED_PROXY', `${cfg.header} from ${ctx.remoteAddress ?? 'an unknown address'}, which is not a trusted proxy`, { remote_address: ctx.remoteAddress ?? null })
      }
      // Repeated headers are one list (RFC 9110 §5.3).
      const value = Array.isArray(raw) ? raw.join(',') : raw
      const elements = parseXfcc(value)
      // every element, not only the one used: an element split by a SAN moves every index after it
      assertUnambiguous(elements)
      const el = cfg.element === 'last' ? elements[elements.length - 1] : elements[0]
      if (el?.cert === undefined) {
        throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${cfg.header}: the ${cfg.element} element has no Cert (configure Envoy set_current_client_cert_details cert: true)`, { header: cfg.header })
      }
      const leaf = pemCertificates(el.cert, `${cfg.header} Cert`)
      if (leaf.length !== 1) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${cfg.header}: Cert holds ${leaf.length} certificates`, { header: cfg.header })
      let chain: Buffer[] = leaf
      if (el.chain !== undefined) {
        chain = pemCertificates(el.chain, `${cfg.header} Chain`)
        if (!(chain[0] as Buffer).equals(leaf[0] as Buffer)) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${cfg.header}: Chain does not start with Cert`, { header: cfg.header })
      }
      if (el.hash !== undefined && el.hash.toLowerCase() !== createHash('sha256').update(leaf[0] as Buffer).digest('hex')) {
        throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${cfg.header}: Hash does not match Cert`, { header: cfg.header })
      }
      return x509Credential('x509-svid', 'xfcc', chain, store)
    },
  }
}

/**
 * A JWT-SVID found in a request. A class, so that the cold path builds nothing per token beyond
 * one small object of a fixed shape: the material (a copy of the token) only when the verifier
 * reads it to key its cache, and the verification answers synchronously when it can.
 */
class JwtSvidCredential implements PresentedCredential {
  readonly plugin = 'jwt-svid'
  readonly source = 'header'
  readonly #token: string
  readonly #check: (token: string, now: Date) => Verified | Promise<Verified>
  constructor (token: string, check: (token: string, now: Date) => Verified | Promise<Verified>) {
    this.#token = token
    this.#check = check
  }

  get material (): Uint8Array[] { return [Buffer.from(this.#token, 'utf8')] }
  verify (now: Date): Verified | Promise<Verified> { return this.#check(this.#token, now) }
}

/** JWT-SVID from `Authorization: Bearer` or the configured header. */
export function jwtSvidPlugin (store: TrustStore, cfg: IdentityConfig['jwt_svid'], oidcIssuers: readonly OidcIssuer[]): IdentityPlugin {
  const opts = { audiences: cfg.audiences, algorithms: cfg.algorithms, leewaySeconds: cfg.leeway_seconds }
  const oidcHere = oidcIssuers.filter((i) => i.config.header === cfg.header).map((i) => i.config.issuer)
  const bundleOf = (td: string): ReturnType<TrustStore['bundle']> => store.bundle(td)
  const check = (token: string, now: Date): Verified | Promise<Verified> => verifyJwtSvidNow(token, bundleOf, opts, now, 'header')
  return {
    name: 'jwt-svid',
    extract: (ctx) => {
      const token = tokenFromHeader(ctx, cfg.header)
      if (token === undefined) return undefined
      // A token whose `iss` is a configured OIDC issuer and whose `sub` is not a SPIFFE ID
      // belongs to that issuer; every other token here is judged as a JWT-SVID.
      // (Only decoded when an OIDC issuer reads the same header: the verification decodes it anyway.)
      const peek = oidcHere.length === 0 ? undefined : peekPayload(token)
      if (peek !== undefined && typeof peek.iss === 'string' && oidcHere.includes(peek.iss) && !(typeof peek.sub === 'string' && peek.sub.startsWith('spiffe://'))) return undefined
      return new JwtSvidCredential(token, check)
    },
  }
}

/** OIDC issuers: a token is routed by its (unverified) `iss` to the issuer that must verify it. */
export function oidcPlugin (issuers: readonly OidcIssuer[]): IdentityPlugin {
  const headers = [...new Set(issuers.map((i) => i.config.header))]
  return {
    name: 'oidc',
    extract: (ctx) => {
      for (const h of headers) {
        const token = tokenFromHeader(ctx, h)
        if (token === undefined) continue
        const iss = peekPayload(token)?.iss
        const issuer = issuers.find((i) => i.config.header === h && i.config.issuer === iss)
        if (issuer === undefined) continue
        return {
          plugin: `oidc:${issuer.config.issuer}`,
          source: 'header',
          material: [Buffer.from(token, 'utf8')],
          verify: async (now) => await issuer.verify(token, now, 'header'),
        }
      }
      return undefined
    },
  }
}
