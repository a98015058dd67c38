/**
 * JWT-SVID verification (SPIFFE JWT-SVID standard §3, §4) with jose.
 *
 * The key comes only from the `jwt-svid` authorities of the trust domain named by the token's
 * own `sub`, so a key of trust domain A can never vouch for a SPIFFE ID of trust domain B.
 *
 * The common token takes a synchronous path end to end (verifyJwtSvidNow): the header and
 * payload are decoded once (inspectToken), the signature is checked with node:crypto over a
 * cached KeyObject (jws.ts) when the key jose would select is plain, and the claims are checked
 * by validateClaims below, which mirrors jose 6's validateClaimsSet for the one set of options
 * a JWT-SVID is verified with (the same checks in the same order, the same error per failure).
 * jose's own validation decoded the payload a second time and cost more than everything else
 * beside the signature; test/identity/jwt-svid-differential.test.ts holds the two to the same
 * answers. Every other token goes through jwtVerify as before (verifyWithKeySet: with several
 * candidate keys, each is tried in turn), and so does verifyJwtSvidReference, the oracle.
 */
import { createLocalJWKSet, type JWK, type JWTVerifyOptions } from 'jose'
import { IdentityError } from '../errors.js'
import type { TrustBundle } from './bundle.js'
import type { JwtAlgorithm } from '../config/schema.js'
import type { CredentialSource, IdentityDocument } from './document.js'
import { audienceList, epochToIso, fromJoseError, inspectToken, precheckKeys, verifyWithKeySet, type InspectedToken } from './jwt.js'
import { DEFER, jwsPathStats, verifyJwsSignature } from './jws.js'
import { parseWorkloadSpiffeId, type SpiffeId } from './spiffe-id.js'

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
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code (as a rejection).
 */
export async function verifyJwtSvid (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource = 'header'): Promise<JwtVerification> {
  return await verifyJwtSvidNow(token, bundleOf, opts, now, source)
}

/**
 * The same verification, synchronous where it can be: the answer itself for every token the
 * node:crypto path decides (thrown synchronously when it is a rejection), a promise of jose's
 * answer for the others. The verifier's plugin calls this, so the common token costs no
 * promise of its own.
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
 */
export function verifyJwtSvidNow (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource = 'header'): JwtVerification | Promise<JwtVerification> {
  const inspected = inspectToken(token, opts.algorithms)
  const { spiffeId, bundle } = selectBundle(inspected, bundleOf)
  // jose decodes the protected header as strict UTF-8; inspectToken does not, so such a header is jose's to refuse.
  const signed = inspected.headerIsUtf8 ? verifyJwsSignature(token, inspected.header, bundle.jwtAuthorities) : DEFER
  if (signed === DEFER) {
    jwsPathStats.deferred++
    return verifyWithJose(token, bundle, opts, now, source, spiffeId)
  }
  jwsPathStats.fast++
  if (!signed) throw new IdentityError('PORTCULLIS_IDENTITY_SIGNATURE', `JWT-SVID of ${spiffeId.id}: signature verification failed`, {})
  const claims = inspected.payload
  validateClaims(claims, inspected.payloadIsUtf8, opts, now, spiffeId.id)
  return verification(claims, spiffeId, source)
}

/**
 * The same verification with jose's jwtVerify for every token (what verifyJwtSvid did before
 * the node:crypto signature path): the oracle of the differential test.
 */
export async function verifyJwtSvidReference (token: string, bundleOf: (trustDomain: string) => TrustBundle | undefined, opts: JwtSvidOptions, now: Date, source: CredentialSource = 'header'): Promise<JwtVerification> {
  const { spiffeId, bundle } = selectBundle(inspectToken(token, opts.algorithms), bundleOf)
  return await verifyWithJose(token, bundle, opts, now, source, spiffeId)
}

/** The checks before any signature: `sub`, its trust domain's bundle, a key that can fit the header. */
function selectBundle (inspected: InspectedToken, bundleOf: (trustDomain: string) => TrustBundle | undefined): { spiffeId: SpiffeId, bundle: TrustBundle } {
  const { header, payload } = inspected
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
  return { spiffeId, bundle }
}

/** jwtVerify over the bundle's key set: signature and claims both judged by jose. */
async function verifyWithJose (token: string, bundle: TrustBundle, opts: JwtSvidOptions, now: Date, source: CredentialSource, spiffeId: SpiffeId): Promise<JwtVerification> {
  const options: JWTVerifyOptions = { ...baseOptionsOf(opts), currentDate: now }
  let claims: Record<string, unknown>
  try {
    claims = (await verifyWithKeySet(token, keySetOf(bundle), options)).payload as Record<string, unknown>
  } catch (err) {
    throw fromJoseError(err, `JWT-SVID of ${spiffeId.id}`)
  }
  if (claims.sub !== spiffeId.id) throw new IdentityError('PORTCULLIS_IDENTITY_SIGNATURE', 'JWT-SVID "sub" changed between inspection and verification', {})
  return verification(claims, spiffeId, source)
}

function verification (claims: Record<string, unknown>, spiffeId: SpiffeId, source: CredentialSource): JwtVerification {
  const expiresAt = new Date((claims.exp as number) * 1000)
  // jose accepts any number as exp; one that is no date (1e20, 1e999 = Infinity) is refused
  // here by name, on both paths, rather than by the RangeError its printing would throw.
  if (Number.isNaN(expiresAt.getTime())) {
    throw new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', `JWT-SVID of ${spiffeId.id}: "exp" claim is not a usable date`, { claim: 'exp', reason: 'invalid' })
  }
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

/**
 * jose 6's validateClaimsSet (lib/jwt_claims_set.js) for baseOptionsOf's options — audience
 * list, required exp/aud/sub, clockTolerance = leeway, currentDate = now, no typ, issuer,
 * subject or maxTokenAge — over the payload inspectToken already parsed. Each step is jose's
 * and throws what fromJoseError makes of jose's error at that step:
 *
 * 1. the payload's octets must be strict UTF-8 (jose: JWTInvalid → MALFORMED); inspectToken
 *    already refused what is not a JSON object, so jose's parse would give the same object;
 * 2. presence, in jose's order (aud, sub, exp; Object.hasOwn): aud → AUDIENCE, exp → CLAIM_MISSING;
 * 3. aud: a string among the audiences, or an array holding one of them, else AUDIENCE;
 * 4. a leeway that is not a finite number ≥ 0, or a `now` that is not a date → MALFORMED (jose: TypeError);
 * 5. iat and nbf, when present, must be numbers (CLAIM_MISSING, reason "invalid");
 *    nbf > now + leeway → NOT_YET_VALID; exp must be a number; exp <= now − leeway → EXPIRED,
 *    with now in whole seconds (jose's epoch: floor of the milliseconds / 1000).
 */
function validateClaims (claims: Record<string, unknown>, payloadIsUtf8: boolean, opts: JwtSvidOptions, now: Date, id: string): void {
  const what = `JWT-SVID of ${id}`
  if (!payloadIsUtf8) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${what}: JWT Claims Set must be a top-level JSON object`, {})
  if (!Object.hasOwn(claims, 'aud')) throw claimFailure(what, 'aud', 'missing')
  if (!Object.hasOwn(claims, 'sub')) throw claimFailure(what, 'sub', 'missing')
  if (!Object.hasOwn(claims, 'exp')) throw claimFailure(what, 'exp', 'missing')
  const aud = claims.aud
  const audiences = opts.audiences
  if (!(typeof aud === 'string' ? audiences.includes(aud) : Array.isArray(aud) ? audiences.some((a) => aud.includes(a)) : false)) {
    throw claimFailure(what, 'aud', 'check_failed')
  }
  const tolerance: unknown = opts.leewaySeconds ?? 0
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${what}: Invalid clockTolerance option`, {})
  }
  const t = Math.floor(now.getTime() / 1000)
  if (!Number.isFinite(t)) throw new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `${what}: Invalid currentDate option input`, {})
  if (claims.iat !== undefined && typeof claims.iat !== 'number') throw claimFailure(what, 'iat', 'invalid')
  const nbf = claims.nbf
  if (nbf !== undefined && typeof nbf !== 'number') throw claimFailure(what, 'nbf', 'invalid')
  if (nbf !== undefined && nbf > t + tolerance) throw claimFailure(what, 'nbf', 'check_failed')
  const exp = claims.exp
  if (typeof exp !== 'number') throw claimFailure(what, 'exp', 'invalid')
  if (exp <= t - tolerance) throw new IdentityError('PORTCULLIS_IDENTITY_EXPIRED', `${what}: "exp" claim timestamp check failed`, { claim: 'exp' })
}

/** What fromJoseError makes of jose's JWTClaimValidationFailed for `claim` and `reason`. */
function claimFailure (what: string, claim: string, reason: 'missing' | 'invalid' | 'check_failed'): IdentityError {
  const message = reason === 'missing' ? `missing required "${claim}" claim` : reason === 'invalid' ? `"${claim}" claim must be a number` : claim === 'aud' ? 'unexpected "aud" claim value' : `"${claim}" claim timestamp check failed`
  if (claim === 'aud') return new IdentityError('PORTCULLIS_IDENTITY_AUDIENCE', `${what}: ${message}`, { claim: 'aud', reason })
  if (claim === 'nbf' && reason === 'check_failed') return new IdentityError('PORTCULLIS_IDENTITY_NOT_YET_VALID', `${what}: ${message}`, { claim: 'nbf' })
  return new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', `${what}: ${message}`, { claim, reason })
}
