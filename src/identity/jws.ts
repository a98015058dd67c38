/**
 * Synchronous signature check of a compact JWS (RFC 7515 §5.2) with node:crypto over cached
 * KeyObjects, for the JWT-SVID path (jwt-svid.ts). jose's jwtVerify does the same through
 * WebCrypto, whose asynchronous verify and per-call setup cost more than the signature itself.
 *
 * It mirrors, step for step, what jose 6 does before and during its signature check: the key
 * is chosen as jose's createLocalJWKSet chooses it (isUsableJWK), RSA keys under 2048 bits
 * are jose's to refuse, the signature is decoded as jose decodes it. Wherever that mirror is
 * not exact — several candidate keys, a key jose would import differently, a signature jose
 * cannot decode — the answer is DEFER and jose decides, so the acceptance rules are jose's.
 * test/identity/jwt-svid-differential.test.ts holds the two paths to the same answers.
 */
import { constants, createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { JWK } from 'jose'

interface JwsAlgorithm {
  kty: 'RSA' | 'EC'
  hash: string
  /** ES*: the JWK curve (RFC 7518 §3.4). */
  crv?: string
  /** PS*: the salt length jose passes to WebCrypto (RFC 7518 §3.5: the hash length). */
  saltLength?: number
}

/** The JWT-SVID algorithms (JWT-SVID §3: RS, ES and PS with SHA-256/384/512). */
const ALGORITHMS: Record<string, JwsAlgorithm> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', saltLength: 32 },
  PS384: { kty: 'RSA', hash: 'sha384', saltLength: 48 },
  PS512: { kty: 'RSA', hash: 'sha512', saltLength: 64 },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256' },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384' },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521' },
}

export const DEFER = Symbol('defer')
export type Defer = typeof DEFER

/** Counts of tokens each path checked (tests and the benchmark read them). */
export const jwsPathStats = { fast: 0, deferred: 0 }

/** jose's isUsableJWK (jwks/local.js) for the members a bundle key can carry. */
function usable (jwk: JWK, alg: string, entry: JwsAlgorithm, kid: string | undefined): boolean {
  return jwk.kty === entry.kty &&
    (kid === undefined || kid === jwk.kid) &&
    (jwk.alg === undefined || jwk.alg === alg) &&
    (entry.crv === undefined || jwk.crv === entry.crv)
}

/** A bundle key as the signature check uses it: its KeyObject and the facts read from it once. */
interface PreparedKey {
  key: KeyObject
  type: string | undefined
  /** RSA modulus length in bits (0 for other keys). */
  modulusLength: number
}

/** One prepared key per bundle JWK object (bundles are immutable; a reload brings new objects); null when node:crypto cannot import it. */
const preparedKeys = new WeakMap<JWK, PreparedKey | null>()

function preparedKeyOf (jwk: JWK): PreparedKey | undefined {
  let k = preparedKeys.get(jwk)
  if (k === undefined) {
    k = null
    try {
      const key = createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' })
      if (key.type === 'public') k = { key, type: key.asymmetricKeyType, modulusLength: key.asymmetricKeyDetails?.modulusLength ?? 0 }
    } catch {
      k = null
    }
    preparedKeys.set(jwk, k)
  }
  return k ?? undefined
}

/**
 * Checks the signature of `token` (already inspected: three base64url segments, `alg` allowed,
 * no `crit`) with the one key of `keys` jose would select.
 *
 * @returns true / false for a signature that verifies / does not (jose: JWSSignatureVerificationFailed), or DEFER.
 */
export function verifyJwsSignature (token: string, header: { alg: string, kid?: string }, keys: readonly JWK[]): boolean | Defer {
  const entry = ALGORITHMS[header.alg]
  if (entry === undefined) return DEFER
  let jwk: JWK | undefined
  for (const k of keys) {
    if (!usable(k, header.alg, entry, header.kid)) continue
    if (jwk !== undefined) return DEFER // several candidates: jose tries each (verifyWithKeySet)
    jwk = k
  }
  if (jwk === undefined) return DEFER
  // Members that change jose's selection or import (key_ops, ext, use) are jose's to judge.
  if (jwk.key_ops !== undefined || jwk.ext !== undefined || jwk.use !== undefined) return DEFER
  const prepared = preparedKeyOf(jwk)
  if (prepared === undefined) return DEFER
  const key = prepared.key
  if (entry.kty === 'RSA' && (prepared.type !== 'rsa' || prepared.modulusLength < 2048)) return DEFER
  if (entry.kty === 'EC' && prepared.type !== 'ec') return DEFER

  const dot = token.lastIndexOf('.')
  const encoded = token.slice(dot + 1)
  // atob (jose's decoder) refuses a base64 length of 4n+1; Buffer would decode it.
  if (encoded.length % 4 === 1) return DEFER
  const signature = Buffer.from(encoded, 'base64url')
  // The signing input is ASCII (inspectToken checked both segments are base64url).
  const signingInput = Buffer.from(token, 'latin1').subarray(0, dot)
  try {
    if (entry.kty === 'EC') return cryptoVerify(entry.hash, signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature)
    if (entry.saltLength !== undefined) return cryptoVerify(entry.hash, signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: entry.saltLength }, signature)
    return cryptoVerify(entry.hash, signingInput, key, signature)
  } catch {
    // jose turns a throwing WebCrypto verify into JWSSignatureVerificationFailed too.
    return false
  }
}
