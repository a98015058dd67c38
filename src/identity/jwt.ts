/**
 * Shared JWT handling for JWT-SVID and OIDC: strict inspection of the compact JWS before any
 * key is looked up, and one mapping from jose's errors to PORTCULLIS_IDENTITY_* codes.
 */
import { isUtf8 } from 'node:buffer'
import { errors as joseErrors, jwtVerify, type JWK, type JWTVerifyGetKey, type JWTVerifyOptions, type JWTVerifyResult } from 'jose'
import { deepFreeze } from '../deep-freeze.js'
import { IdentityError, type ErrorCode } from '../errors.js'
import type { JwtAlgorithm } from '../config/schema.js'

/** Tokens larger than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 16 * 1024

export interface InspectedToken {
  header: Record<string, unknown> & { alg: string, kid?: string }
  payload: Record<string, unknown>
  /** The protected header's octets are valid UTF-8 (jose decodes it strictly; JSON.parse here did not). */
  headerIsUtf8: boolean
  /** The payload's octets are valid UTF-8 (jose's claim validation decodes them strictly). */
  payloadIsUtf8: boolean
}

function malformed (reason: string): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `token: ${reason}`, { reason })
}

const B64URL = /^[A-Za-z0-9_-]*$/

/**
 * Decoded protected headers by their encoded segment. The tokens of one signer share one
 * header (alg, kid, typ), so most tokens are met with a header already decoded; the decode is
 * a pure function of the segment, the decoded header is frozen, and only decodes that
 * succeeded are kept. Bounded in count and segment length; emptied when full.
 */
const headerCache = new Map<string, { doc: Record<string, unknown>, utf8: boolean }>()
const HEADER_CACHE_ENTRIES = 256
const HEADER_CACHE_SEGMENT_CHARS = 512

function decodeHeader (seg: string): { doc: Record<string, unknown>, utf8: boolean } {
  let decoded = headerCache.get(seg)
  if (decoded === undefined) {
    decoded = decodeSegment(seg, 'protected header')
    if (seg.length <= HEADER_CACHE_SEGMENT_CHARS) {
      if (headerCache.size >= HEADER_CACHE_ENTRIES) headerCache.clear()
      deepFreeze(decoded.doc)
      headerCache.set(seg, decoded)
    }
  }
  return decoded
}

function decodeSegment (seg: string, what: string): { doc: Record<string, unknown>, utf8: boolean } {
  if (seg === '' || !B64URL.test(seg) || seg.length % 4 === 1) throw malformed(`${what} is not base64url`)
  let doc: unknown
  const bytes = Buffer.from(seg, 'base64url')
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw malformed(`${what} is not JSON`)
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw malformed(`${what} is not a JSON object`)
  return { doc: doc as Record<string, unknown>, utf8: isUtf8(bytes) }
}

/** Decodes a token's payload without verifying it; undefined when it cannot be decoded. For routing only. */
export function peekPayload (token: string): Record<string, unknown> | undefined {
  try {
    return inspectToken(token, undefined).payload
  } catch {
    return undefined
  }
}

/**
 * Checks the shape of a compact JWS and its protected header (JWT-SVID §2, §3; RFC 7515 §4.1.11):
 * exactly three base64url segments (the JSON serialization is refused), `alg` on the allow-list,
 * `typ` absent or JWT/JOSE, and no `crit` (Portcullis understands no extension header).
 * With `algorithms` undefined only the shape is checked.
 */
export function inspectToken (token: string, algorithms: readonly JwtAlgorithm[] | undefined): InspectedToken {
  if (typeof token !== 'string' || token.length === 0) throw malformed('empty')
  if (token.length > MAX_TOKEN_BYTES) throw malformed(`longer than ${MAX_TOKEN_BYTES} bytes`)
  if (token.trimStart().startsWith('{')) throw malformed('JWS JSON serialization is not accepted; a JWT must use the compact serialization')
  const parts = token.split('.')
  if (parts.length !== 3) throw malformed(`expected 3 dot-separated segments, got ${parts.length}`)
  const decoded = decodeHeader(parts[0] as string)
  const header = decoded.doc
  const decodedPayload = decodeSegment(parts[1] as string, 'payload')
  const payload = decodedPayload.doc
  const inspected: InspectedToken = { header: header as InspectedToken['header'], payload, headerIsUtf8: decoded.utf8, payloadIsUtf8: decodedPayload.utf8 }
  if (algorithms === undefined) return inspected
  if (typeof header.alg !== 'string') throw new IdentityError('PORTCULLIS_IDENTITY_ALGORITHM', 'token: protected header has no "alg"', { alg: null })
  if (!(algorithms as readonly string[]).includes(header.alg)) {
    throw new IdentityError('PORTCULLIS_IDENTITY_ALGORITHM', `token: algorithm ${JSON.stringify(header.alg)} is not allowed (allowed: ${algorithms.join(', ')})`, { alg: header.alg })
  }
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    throw new IdentityError('PORTCULLIS_IDENTITY_TOKEN_TYPE', `token: typ ${JSON.stringify(header.typ)} is not allowed (absent, "JWT" or "JOSE")`, { typ: header.typ })
  }
  if (header.crit !== undefined) {
    throw new IdentityError('PORTCULLIS_IDENTITY_UNSUPPORTED_CRIT', `token: crit ${JSON.stringify(header.crit)} names extensions Portcullis does not understand`, { crit: header.crit })
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') throw malformed('kid is not a string')
  if (parts[2] === '' || !B64URL.test(parts[2] as string)) throw new IdentityError('PORTCULLIS_IDENTITY_SIGNATURE', 'token: missing or non-base64url signature', {})
  return inspected
}

/** Does a JWK's type fit a JWS algorithm (RFC 7518 §3)? */
export function keyFitsAlgorithm (key: JWK, alg: string): boolean {
  if (key.alg !== undefined && key.alg !== alg) return false
  if (alg.startsWith('RS') || alg.startsWith('PS')) return key.kty === 'RSA'
  const crv: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }
  return key.kty === 'EC' && crv[alg] !== undefined && key.crv === crv[alg]
}

/**
 * Before jose looks for a key: a kid that no key carries is KEY_UNKNOWN; a kid (or a key set)
 * whose keys do not fit the algorithm is ALGORITHM (e.g. ES256 header, RSA key).
 */
export function precheckKeys (keys: readonly JWK[], header: InspectedToken['header']): void {
  const candidates = header.kid !== undefined ? keys.filter((k) => k.kid === header.kid) : keys
  if (header.kid !== undefined && candidates.length === 0) {
    throw new IdentityError('PORTCULLIS_IDENTITY_KEY_UNKNOWN', `token: no key with kid ${JSON.stringify(header.kid)}`, { kid: header.kid })
  }
  if (candidates.length === 0) throw new IdentityError('PORTCULLIS_IDENTITY_KEY_UNKNOWN', 'token: no keys to verify it with', {})
  if (!candidates.some((k) => keyFitsAlgorithm(k, header.alg))) {
    throw new IdentityError('PORTCULLIS_IDENTITY_ALGORITHM', `token: algorithm ${header.alg} does not fit the key type${header.kid !== undefined ? ` of kid ${JSON.stringify(header.kid)}` : 's'}`, { alg: header.alg, kid: header.kid })
  }
}

/** Maps anything jose throws to an IdentityError with a stable code. */
export function fromJoseError (err: unknown, what: string): IdentityError {
  if (err instanceof IdentityError) return err
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`
  const make = (code: ErrorCode, details: Record<string, unknown> = {}): IdentityError => new IdentityError(code, message, details, { cause: err })
  if (err instanceof joseErrors.JWTExpired) return make('PORTCULLIS_IDENTITY_EXPIRED', { claim: err.claim })
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return make('PORTCULLIS_IDENTITY_AUDIENCE', { claim: 'aud', reason: err.reason })
    if (err.claim === 'nbf' && err.reason === 'check_failed') return make('PORTCULLIS_IDENTITY_NOT_YET_VALID', { claim: 'nbf' })
    if (err.claim === 'iat' && err.reason === 'check_failed') return make('PORTCULLIS_IDENTITY_NOT_YET_VALID', { claim: 'iat' })
    if (err.claim === 'iss' && err.reason === 'check_failed') return make('PORTCULLIS_IDENTITY_ISSUER', { claim: 'iss' })
    return make('PORTCULLIS_IDENTITY_CLAIM_MISSING', { claim: err.claim, reason: err.reason })
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return make('PORTCULLIS_IDENTITY_SIGNATURE')
  if (err instanceof joseErrors.JWKSNoMatchingKey) return make('PORTCULLIS_IDENTITY_KEY_UNKNOWN')
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) return make('PORTCULLIS_IDENTITY_ALGORITHM')
  if (err instanceof joseErrors.JWKSTimeout) return make('PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
  if (err instanceof joseErrors.JWKSInvalid) return make('PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
  // jose refuses an RSA key under 2048 bits for RS*/PS* (a TypeError naming modulusLength): the key does not fit the algorithm
  if (err instanceof TypeError && /modulusLength/.test(err.message)) return make('PORTCULLIS_IDENTITY_ALGORITHM')
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof TypeError) return make('PORTCULLIS_IDENTITY_MALFORMED')
  // Key-fetch failures were already turned into KEYS_UNAVAILABLE by the key resolver (oidc.ts).
  return make('PORTCULLIS_IDENTITY_MALFORMED')
}

/** Errors of a JWK Set's key selection, passed through the key resolver to verifyWithKeySet and fromJoseError. */
export function isKeySelectionError (err: unknown): boolean {
  return err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys
}

/** A key refused before its signature check (type, size, import): the next candidate may still fit. */
function isKeyRefusal (err: unknown): boolean {
  return err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof TypeError ||
    err instanceof joseErrors.JOSENotSupported || err instanceof joseErrors.JWKInvalid
}

/**
 * jwtVerify over a JWK Set, trying every candidate key when several fit the header.
 *
 * jose 6's JWK Set throws JWKSMultipleMatchingKeys when more than one key fits (no `kid` and
 * several keys of the algorithm's type, or one kid on different keys of several sources) and
 * jwtVerify does not try them; the error is an async iterator over the imported candidates
 * (jose docs, createLocalJWKSet / createRemoteJWKSet). Each is tried with the same options: the
 * first whose signature verifies decides (its claims verdict is the token's, as with that key
 * alone); a key whose signature fails or that is refused is passed over; when none verifies,
 * the last attempt's error stands (no importable candidate: a signature failure).
 */
export async function verifyWithKeySet (token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  try {
    return await jwtVerify(token, getKey, options)
  } catch (err) {
    if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err
    let last: unknown = new joseErrors.JWSSignatureVerificationFailed()
    for await (const key of err) {
      try {
        return await jwtVerify(token, key, options)
      } catch (inner) {
        if (!isKeyRefusal(inner)) throw inner
        last = inner
      }
    }
    throw last
  }
}

/** `aud` as a list. */
export function audienceList (aud: unknown): string[] {
  if (typeof aud === 'string') return [aud]
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string')
  return []
}

/**
 * A NumericDate claim (RFC 7519 §2) as an ISO time; undefined when the claim is absent or not
 * a number. A number no date can hold (beyond ±8.64e12 s) is refused by name
 * (PORTCULLIS_IDENTITY_CLAIM_MISSING, reason `invalid`), not thrown as a RangeError.
 */
export function epochToIso (v: unknown, claim = 'iat'): string | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined
  const at = new Date(v * 1000)
  if (Number.isNaN(at.getTime())) throw new IdentityError('PORTCULLIS_IDENTITY_CLAIM_MISSING', `token "${claim}" ${v} is not a time`, { claim, reason: 'invalid' })
  return at.toISOString()
}
