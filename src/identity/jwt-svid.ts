/**
 * JWT-SVID verification (SPIFFE JWT-SVID standard §3, §4) with jose.
 *
 * The key comes only from the `jwt-svid` authorities of the trust domain named by the token's
 * own `sub`, so a key of trust domain A can never vouch for a SPIFFE ID of trust domain B.
 *
 * The signature is checked synchronously with node:crypto over a cached KeyObject (jws.ts)
 * when the key jose would select is plain; the claims are then validated by jose itself
 * (UnsecuredJWT.decode runs the same validateClaimsSet as jwtVerify, with the same options).
 * Every other token goes through jwtVerify as before (verifyWithKeySet: with several candidate
 * keys, each is tried in turn).
 */
import { createLocalJWKSet, UnsecuredJWT, type JWK, type JWTVerifyOptions } from 'jose'
import { IdentityError } from '../errors.js'
import type { TrustBundle } from './bundle.js'
import type { JwtAlgorithm } from '../config/schema.js'
import type { CredentialSource, IdentityDocument } from './document.js'
import { audienceList, epochToIso, fromJoseError, inspectToken, precheckKeys, verifyWithKeySet } from './jwt.js'
import { DEFER, jwsPathStats, verifyJwsSignature } from './jws.js'
import { parseWorkloadSpiffeId } from './spiffe-id.js'

/** The protected header of the unsecured JWT whose claims jose validates after the signature check. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url')

export interface JwtSvidOptions {
  audiences: readonly string[]
  algorithms: readonly JwtAlgorithm[]
  leewaySeconds: number
}

export interface JwtVerification {
  identity: IdentityDocument
  expiresAt: Date
}

// One jose key set per trust bundle object; a reloaded bundle is a new object, so no staleness.
const keySets = new WeakMap<TrustBundle, ReturnType<typeof createLocalJWKSet>>()

function keySetOf (bundle: TrustBundle): ReturnType<typeof createLocalJWKSet> {
  let ks = keySets.get(bundle)
  if (ks === undefined) {
    // bundle.ts already removed SPIFFE's `use: "jwt-svid"`, which jose would skip (it selects only use absent or "sig").
    ks = createLocalJWKSet({ keys: bundle.jwtAuthorities.map((k) => ({ ...k })) as JWK[] })
    keySets.set(bundle, ks)
  }
  return ks
}

/** jose's options for one set of JWT-SVID options (built once: the plugin passes the same object for every token). */
const baseOptions = new WeakMap<JwtSvidOptions, JWTVerifyOptions>()

function baseOptionsOf (opts: JwtSvidOptions): JWTVerifyOptions {
  let o = baseOptions.get(opts)
  if (o === undefined) {
    o = {
      algorithms: [...opts.algorithms],
      audience: [...opts.audiences],
      // JWT-SVID §3.1.4 exp and §3.1.3 aud are required; jose only checks exp when listed here.
      requiredClaims: ['exp', 'aud', 'sub'],
      clockTolerance: opts.leewaySeconds,
    }
    baseOptions.set(opts, o)
  }
  return o
}

/**
 * Verifies a JWT-SVID at `now`.
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
 */
export async function verifyJwtSvid (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource = 'header'): Promise<JwtVerification> {
  return await verify(token, bundleOf, opts, now, source, true)
}

/**
 * The same verification with jose's jwtVerify for every token (what verifyJwtSvid did before
 * the node:crypto signature path): the oracle of the differential test.
 */
export async function verifyJwtSvidReference (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource = 'header'): Promise<JwtVerification> {
  return await verify(token, bundleOf, opts, now, source, false)
}

async function verify (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource, fast: boolean): Promise<JwtVerification> {
  const { header, payload, headerIsUtf8 } = inspectToken(token, opts.algorithms)
  // JWT-SVID §3.1.2: sub is required and is the SPIFFE ID of the workload.
  if (payload.sub === undefined) throw new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', 'JWT-SVID has no "sub" claim', { claim: 'sub' })
  if (typeof payload.sub !== 'string') throw new IdentityError('PORTCULLIS_IDENTITY_BAD_SPIFFE_ID', 'JWT-SVID "sub" is not a string', { claim: 'sub' })
  const spiffeId = parseWorkloadSpiffeId(payload.sub)
  const bundle = bundleOf(spiffeId.trustDomain)
  if (bundle === undefined) {
    throw new IdentityError('PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN', `no trust bundle for trust domain ${JSON.stringify(spiffeId.trustDomain)}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  if (bundle.jwtAuthorities.length === 0) {
    throw new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED', `trust domain ${spiffeId.trustDomain} has no JWT authorities (its bundle trusts nothing)`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  precheckKeys(bundle.jwtAuthorities, header)

  const options: JWTVerifyOptions = { ...baseOptionsOf(opts), currentDate: now }
  let claims: Record<string, unknown>
  try {
    // jose decodes the protected header as strict UTF-8; inspectToken does not, so such a header is jose's to refuse.
    const signed = !fast ? DEFER : headerIsUtf8 ? verifyJwsSignature(token, header, bundle.jwtAuthorities) : DEFER
    if (signed === DEFER) {
      if (fast) jwsPathStats.deferred++
      claims = (await verifyWithKeySet(token, keySetOf(bundle), options)).payload as Record<string, unknown>
    } else {
      jwsPathStats.fast++
      if (!signed) throw new IdentityError('PORTCULLIS_IDENTITY_SIGNATURE', `JWT-SVID of ${spiffeId.id}: signature verification failed`, {})
      const payload = token.slice(token.indexOf('.') + 1, token.lastIndexOf('.'))
      claims = UnsecuredJWT.decode(`${UNSECURED_HEADER}.${payload}.`, options).payload as Record<string, unknown>
    }
  } catch (err) {
    throw fromJoseError(err, `JWT-SVID of ${spiffeId.id}`)
  }
  if (claims.sub !== spiffeId.id) throw new IdentityError('PORTCULLIS_IDENTITY_SIGNATURE', 'JWT-SVID "sub" changed between inspection and verification', {})
  const expiresAt = new Date((claims.exp as number) * 1000)
  const identity: IdentityDocument = {
    type: 'jwt-svid',
    source,
    spiffe_id: spiffeId.id,
    trust_domain: spiffeId.trustDomain,
    path: spiffeId.path,
    subject: spiffeId.id,
    audience: audienceList(claims.aud),
    expires_at: expiresAt.toISOString(),
    claims,
  }
  if (typeof claims.iss === 'string') identity.issuer = claims.iss
  const iat = epochToIso(claims.iat)
  if (iat !== undefined) identity.issued_at = iat
  return { identity, expiresAt }
}
