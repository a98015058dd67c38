/**
 * io.jwt.* (OPA v1/topdown/tokens.go): decoding, signature verification with PEM certificates,
 * PEM public keys and JWK (sets), full decode_verify with constraints, and signing from a JWK.
 * All synchronous over node:crypto.
 */
import { constants, createHmac, createPrivateKey, createPublicKey, KeyObject, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify, X509Certificate, type JsonWebKey } from 'node:crypto'
import type { BuiltinSpec, EvalContext } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { ExactNumber, parseExact, stringifyExact } from './exact-json.js'
import { isNum, isObj, str } from './args.js'
import { goJson } from './json.js'
import { pemDecode } from './pem.js'

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** OPA's base64url.decode: pads unpadded input (RFC 7515 App. C), then strict URL-safe decoding. */
export function base64UrlDecode (b: string, s: string): Buffer {
  if (!s.endsWith('=')) {
    switch (s.length % 4) {
      case 0: break
      case 2: s += '=='; break
      case 3: s += '='; break
      default: throw new BuiltinError(b, `illegal base64url string: ${s}`)
    }
  }
  const clean = s.replace(/[\r\n]/g, '')
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9_-]*(?:[A-Za-z0-9_-]={0,2})?$/.test(clean) || /=[^=]/.test(clean)) throw new BuiltinError(b, 'illegal base64 data')
  return Buffer.from(clean, 'base64url')
}

interface Token { header: string, payload: string, signature: string }

function decodeJWT (b: string, v: unknown): Token {
  const s = str(b, v, 1)
  if (!s.includes('.')) throw new BuiltinError(b, 'encoded JWT had no period separators')
  const parts = s.split('.')
  if (parts.length !== 3) throw new BuiltinError(b, `encoded JWT must have 3 sections, found ${parts.length}`)
  return { header: parts[0] as string, payload: parts[1] as string, signature: parts[2] as string }
}

function extractJSONObject (b: string, s: string): Record<string, unknown> {
  let v: unknown
  try {
    v = parseExact(s)
  } catch {
    throw new BuiltinError(b, 'invalid JSON')
  }
  if (!isObj(v)) throw new BuiltinError(b, 'decoded JSON type was not an Object')
  return v
}

function decodeHeader (b: string, t: Token): Record<string, unknown> {
  const h = extractJSONObject(b, utf8.decode(base64UrlDecode(b, t.header)))
  if (Object.hasOwn(h, 'enc')) throw new BuiltinError(b, 'JWT is a JWE object, which is not supported')
  return h
}

interface Header { alg: string, kid: string, typ: string, cty: string, crit: Set<string> | undefined, unknown: string[] }

function parseTokenHeader (b: string, h: Record<string, unknown>): Header {
  const out: Header = { alg: '', kid: '', typ: '', cty: '', crit: undefined, unknown: [] }
  for (const [k, v] of Object.entries(h)) {
    if (k === 'alg' || k === 'kid' || k === 'typ' || k === 'cty') {
      if (typeof v !== 'string') throw new BuiltinError(b, `${k}: must be a string`)
      out[k] = v
    } else if (k === 'crit') {
      if (!Array.isArray(v)) throw new BuiltinError(b, 'crit: must be a list')
      out.crit = new Set(v.filter((x): x is string => typeof x === 'string'))
      if (out.crit.size === 0) throw new BuiltinError(b, 'crit: must be a nonempty list')
    } else out.unknown.push(k)
  }
  return out
}

const headerValid = (h: Header): boolean => h.alg !== '' && !h.unknown.some((u) => h.crit?.has(u) === true)

// ---- keys ----

const TOKEN_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA'])

interface VerificationKey { key: KeyObject | Buffer, alg: string, kid: string, isPrivate: boolean }

const keyCache = new Map<string, VerificationKey[]>()

/** OPA getKeysFromCertOrJWK: one PEM certificate or public key, or a JWK / JWK Set. */
export function keysFromCertOrJWK (b: string, s: string): VerificationKey[] {
  const hit = keyCache.get(s)
  if (hit !== undefined) return hit
  const keys = parseKeys(b, s)
  if (keyCache.size > 256) keyCache.clear()
  keyCache.set(s, keys)
  return keys
}

function parseKeys (b: string, s: string): VerificationKey[] {
  const block = pemDecode(s)
  if (block !== undefined) {
    if (block.rest.length > 0) throw new BuiltinError(b, 'extra data after a PEM certificate block')
    if (block.type === 'CERTIFICATE') {
      try {
        return [{ key: new X509Certificate(block.bytes).publicKey, alg: '', kid: '', isPrivate: false }]
      } catch {
        throw new BuiltinError(b, 'failed to parse a PEM certificate')
      }
    }
    if (block.type === 'PUBLIC KEY') {
      try {
        return [{ key: createPublicKey({ key: block.bytes, format: 'der', type: 'spki' }), alg: '', kid: '', isPrivate: false }]
      } catch {
        throw new BuiltinError(b, 'failed to parse a PEM public key')
      }
    }
    throw new BuiltinError(b, 'failed to extract a Key from the PEM certificate')
  }
  let doc: unknown
  try {
    doc = JSON.parse(s)
  } catch {
    throw new BuiltinError(b, 'failed to parse a JWK key (set)')
  }
  const list = isObj(doc) && Array.isArray(doc.keys) ? doc.keys : isObj(doc) && !Object.hasOwn(doc, 'keys') ? [doc] : undefined
  if (list === undefined) throw new BuiltinError(b, 'failed to parse a JWK key (set)')
  const out: VerificationKey[] = []
  for (const jwk of list) {
    if (!isObj(jwk)) throw new BuiltinError(b, 'failed to parse a JWK key (set)')
    const alg = typeof jwk.alg === 'string' ? jwk.alg : ''
    if (alg !== '' && !TOKEN_ALGS.has(alg)) {
      // jwx rejects algorithm names it does not know; OPA skips known ones it cannot verify with.
      if (!/^(none|RSA1_5|RSA-OAEP(-256|-384|-512)?|A(128|192|256)(KW|GCMKW)|dir|ECDH-ES(\+A(128|192|256)KW)?|PBES2-HS(256\+A128|384\+A192|512\+A256)KW|ES256K|Ed25519|Ed448)$/.test(alg)) {
        throw new BuiltinError(b, `failed to parse a JWK key (set): unknown algorithm ${alg}`)
      }
      continue
    }
    out.push({ key: jwkKey(b, jwk), alg, kid: typeof jwk.kid === 'string' ? jwk.kid : '', isPrivate: Object.hasOwn(jwk, 'd') })
  }
  return out
}

function jwkKey (b: string, jwk: Record<string, unknown>): KeyObject | Buffer {
  try {
    if (jwk.kty === 'oct') return base64UrlDecode(b, str(b, jwk.k, 1))
    if (Object.hasOwn(jwk, 'd')) return createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' })
    return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
  } catch (err) {
    if (err instanceof BuiltinError) throw err
    throw new BuiltinError(b, 'failed to parse a JWK key (set)')
  }
}

// ---- signatures ----

const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }

/** DER-encodes an ECDSA signature split into halves, as Go's verifyES reads r and s. */
function ecdsaDer (sig: Buffer): Buffer {
  const n = Math.floor(sig.length / 2)
  const int = (x: Buffer): Buffer => {
    let i = 0
    while (i < x.length - 1 && x[i] === 0) i++
    let v = x.subarray(i)
    if (v.length === 0) v = Buffer.from([0])
    if ((v[0] as number) & 0x80) v = Buffer.concat([Buffer.from([0]), v])
    return Buffer.concat([Buffer.from([0x02]), derLen(v.length), v])
  }
  const body = Buffer.concat([int(sig.subarray(0, n)), int(sig.subarray(n))])
  return Buffer.concat([Buffer.from([0x30]), derLen(body.length), body])
}

function derLen (n: number): Buffer {
  if (n < 0x80) return Buffer.from([n])
  if (n < 0x100) return Buffer.from([0x81, n])
  return Buffer.from([0x82, n >> 8, n & 0xff])
}

function publicOf (k: KeyObject): KeyObject {
  return k.type === 'private' ? createPublicKey(k) : k
}

/** Verification for the io.jwt.verify_<alg> builtins (Go's crypto verify functions, as OPA calls them). */
function verifyWith (family: string, bits: string, key: VerificationKey, data: Buffer, sig: Buffer): boolean {
  const k = key.key
  if (!(k instanceof KeyObject) || key.isPrivate) return false
  try {
    switch (family) {
      case 'RS':
        if (k.asymmetricKeyType !== 'rsa') return false
        return cryptoVerify(HASH[bits] as string, data, { key: k, padding: constants.RSA_PKCS1_PADDING }, sig)
      case 'PS':
        if (k.asymmetricKeyType !== 'rsa') return false
        return cryptoVerify(HASH[bits] as string, data, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)
      case 'ES':
        if (k.asymmetricKeyType !== 'ec') return false
        return cryptoVerify(HASH[bits] as string, data, { key: k, dsaEncoding: 'der' }, ecdsaDer(sig))
      case 'EdDSA':
        if (k.asymmetricKeyType !== 'ed25519') return false
        return cryptoVerify(null, data, k, sig)
    }
  } catch {
    return false
  }
  return false
}

const CURVE_SIZE: Record<string, number> = { 'prime256v1': 32, 'secp384r1': 48, 'secp521r1': 66 }
const CURVE_FOR: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }

/** jwx jwsbb.Verify: the algorithm decides the key type, the hash and the signature format. */
function jwsVerify (key: KeyObject | Buffer, alg: string, data: Buffer, sig: Buffer): boolean {
  try {
    if (alg.startsWith('HS')) {
      if (!(key instanceof Buffer)) return false
      const mac = createHmac(HASH[alg.slice(2)] as string, key).update(data).digest()
      return mac.length === sig.length && timingSafeEqual(mac, sig)
    }
    if (!(key instanceof KeyObject)) return false
    const k = publicOf(key)
    if (alg.startsWith('RS')) return k.asymmetricKeyType === 'rsa' && cryptoVerify(HASH[alg.slice(2)] as string, data, { key: k, padding: constants.RSA_PKCS1_PADDING }, sig)
    if (alg.startsWith('PS')) return k.asymmetricKeyType === 'rsa' && cryptoVerify(HASH[alg.slice(2)] as string, data, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)
    if (alg.startsWith('ES')) {
      if (k.asymmetricKeyType !== 'ec') return false
      const curve = k.asymmetricKeyDetails?.namedCurve ?? ''
      if (curve !== CURVE_FOR[alg] || sig.length !== 2 * (CURVE_SIZE[curve] ?? 0)) return false
      return cryptoVerify(HASH[alg.slice(2)] as string, data, { key: k, dsaEncoding: 'ieee-p1363' }, sig)
    }
    if (alg === 'EdDSA') return k.asymmetricKeyType === 'ed25519' && cryptoVerify(null, data, k, sig)
  } catch {
    return false
  }
  return false
}

function verifyBuiltin (name: string, family: string, bits: string): BuiltinSpec {
  return {
    name,
    impl: (_ctx, [jwt, keyStr]) => {
      const t = decodeJWT(name, jwt)
      const keys = keysFromCertOrJWK(name, str(name, keyStr, 2))
      const sig = base64UrlDecode(name, t.signature)
      const header = parseTokenHeader(name, decodeHeader(name, t))
      const data = Buffer.from(t.header + '.' + t.payload)
      if (header.kid !== '') {
        const k = keys.find((x) => x.kid === header.kid)
        if (k !== undefined) return verifyWith(family, bits, k, data, sig)
      }
      for (const k of keys) {
        if (k.alg !== '' && k.alg !== header.alg) continue
        if (verifyWith(family, bits, k, data, sig)) return true
      }
      return false
    },
  }
}

function verifyHS (name: string, bits: string): BuiltinSpec {
  return {
    name,
    impl: (_ctx, [jwt, secret]) => {
      const s = str(name, jwt, 1)
      const k = str(name, secret, 2)
      const t = decodeJWT(name, s)
      const mac = createHmac(HASH[bits] as string, Buffer.from(k, 'utf8')).update(t.header + '.' + t.payload).digest()
      const sig = base64UrlDecode(name, t.signature)
      return mac.length === sig.length && timingSafeEqual(mac, sig)
    },
  }
}

// ---- decode / decode_verify ----

function decode (b: string, jwt: unknown): [Record<string, unknown>, Record<string, unknown>, string] {
  const t = decodeJWT(b, jwt)
  const header = decodeHeader(b, t)
  let p = utf8.decode(base64UrlDecode(b, t.payload))
  if (header.cty === 'JWT') {
    p = p.replace(/^["']+|["']+$/g, '')
    return decode(b, p)
  }
  const payload = extractJSONObject(b, p)
  const sig = base64UrlDecode(b, t.signature).toString('hex')
  return [header, payload, sig]
}

function numberValue (v: number | ExactNumber): number {
  return typeof v === 'number' ? v : Number(v.text)
}

function decodeVerify (ctx: EvalContext, jwt: unknown, c: unknown): unknown {
  const b = 'io.jwt.decode_verify'
  if (!isObj(c)) throw new BuiltinError(b, 'operand 2 must be object')
  const unverified = [false, {}, {}]
  let keys: VerificationKey[] | undefined
  let secret = ''; let alg = ''; let iss = ''; let aud = ''
  let time: number | undefined
  for (const [k, v] of Object.entries(c)) {
    switch (k) {
      case 'cert':
        if (typeof v !== 'string') throw new BuiltinError(b, 'cert constraint: must be a string')
        keys = keysFromCertOrJWK(b, v)
        break
      case 'secret': case 'alg': case 'iss': case 'aud':
        if (typeof v !== 'string') throw new BuiltinError(b, `${k} constraint: must be a string`)
        if (k === 'secret') secret = v; else if (k === 'alg') alg = v; else if (k === 'iss') iss = v; else aud = v
        break
      case 'time':
        if (!isNum(v)) throw new BuiltinError(b, 'token time constraint: must be a number')
        time = numberValue(v)
        if (time < 0) throw new BuiltinError(b, 'token time constraint: must not be negative')
        break
      default:
        throw new BuiltinError(b, `unknown token validation constraint: ${k}`)
    }
  }
  time ??= Number(ctx.nowNs())
  const nKeys = (keys !== undefined ? 1 : 0) + (secret !== '' ? 1 : 0)
  if (nKeys > 1) throw new BuiltinError(b, 'duplicate key constraints')
  if (nKeys < 1) throw new BuiltinError(b, 'no key constraint')

  let token = jwt
  let header: Record<string, unknown>
  let p: string
  for (;;) {
    const t = decodeJWT(b, token)
    header = decodeHeader(b, t)
    const h = parseTokenHeader(b, header)
    if (!headerValid(h)) return unverified
    if (alg !== '' && alg !== h.alg) return unverified
    const sig = base64UrlDecode(b, t.signature)
    const data = Buffer.from(t.header + '.' + t.payload)
    let ok = false
    if (keys !== undefined) {
      const byKid = h.kid !== '' ? keys.find((k) => k.kid === h.kid) : undefined
      if (byKid !== undefined) ok = jwsVerify(byKid.key, h.alg, data, sig)
      else ok = keys.some((k) => (k.alg === '' || k.alg === h.alg) && jwsVerify(k.key, h.alg, data, sig))
    } else {
      ok = jwsVerify(Buffer.from(secret, 'utf8'), h.alg, data, sig)
    }
    if (!ok) return unverified
    p = utf8.decode(base64UrlDecode(b, t.payload))
    if (h.cty.toLowerCase() === 'jwt') { token = p; continue }
    break
  }
  const payload = extractJSONObject(b, p)
  if (iss !== '') {
    if (payload.iss !== iss) return unverified
  }
  if (Object.hasOwn(payload, 'aud')) {
    const a = payload.aud
    const valid = typeof a === 'string' ? a === aud : Array.isArray(a) ? a.some((x) => x === aud) : false
    if (!valid) return unverified
  } else if (aud !== '') return unverified
  const now = time / 1e9
  if (Object.hasOwn(payload, 'exp')) {
    const exp = payload.exp
    if (!isNum(exp)) throw new BuiltinError(b, 'exp value must be a number')
    if (!(now < numberValue(exp))) return unverified
  }
  if (Object.hasOwn(payload, 'nbf')) {
    const nbf = payload.nbf
    if (!isNum(nbf)) throw new BuiltinError(b, 'nbf value must be a number')
    if (now < numberValue(nbf)) return unverified
  }
  return new RawJson(stringifyExact([true, header, payload]))
}

// ---- signing ----

function encodeSign (b: string, headers: string, payload: string, jwkSrc: string): string {
  let doc: unknown
  try {
    doc = JSON.parse(jwkSrc)
  } catch {
    throw new BuiltinError(b, 'failed to parse JWK')
  }
  const first = isObj(doc) && Array.isArray(doc.keys) ? doc.keys[0] : doc
  if (!isObj(first)) throw new BuiltinError(b, 'no keys found in JWK set')
  let h: unknown
  try {
    h = JSON.parse(headers)
  } catch {
    throw new BuiltinError(b, 'invalid headers')
  }
  if (!isObj(h) || typeof h.alg !== 'string') throw new BuiltinError(b, "missing or invalid 'alg' header")
  const alg = h.alg
  if (!TOKEN_ALGS.has(alg)) throw new BuiltinError(b, `unknown JWS algorithm: ${alg}`)
  if (typeof h.typ !== 'string' || h.typ === 'JWT') {
    try { JSON.parse(payload) } catch { throw new BuiltinError(b, 'type is JWT but payload is not JSON') }
  }
  const signingInput = Buffer.from(headers).toString('base64url') + '.' + Buffer.from(payload).toString('base64url')
  const key = jwkKey(b, first)
  const data = Buffer.from(signingInput)
  let sig: Buffer
  try {
    if (alg.startsWith('HS')) {
      if (!(key instanceof Buffer)) throw new BuiltinError(b, 'HS algorithms need an oct key')
      sig = createHmac(HASH[alg.slice(2)] as string, key).update(data).digest()
    } else {
      if (!(key instanceof KeyObject) || key.type !== 'private') throw new BuiltinError(b, `${alg} needs a private key`)
      if (alg.startsWith('RS')) sig = cryptoSign(HASH[alg.slice(2)] as string, data, { key, padding: constants.RSA_PKCS1_PADDING })
      else if (alg.startsWith('PS')) sig = cryptoSign(HASH[alg.slice(2)] as string, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST })
      else if (alg.startsWith('ES')) sig = cryptoSign(HASH[alg.slice(2)] as string, data, { key, dsaEncoding: 'ieee-p1363' })
      else sig = cryptoSign(null, data, key)
    }
  } catch (err) {
    if (err instanceof BuiltinError) throw err
    throw new BuiltinError(b, `signing failed: ${(err as Error).message}`)
  }
  return signingInput + '.' + sig.toString('base64url')
}

/**
 * io.jwt.decode results by token. The builtin is pure (no clock, no keys), and a client sends
 * the same bearer token with every request of its session, so a policy that decodes the token
 * on every decision (the usual ext_authz policy) pays for base64url, the JSON parse and the
 * re-serialization once per token rather than once per request. Bounded in entries and in token
 * size; least recently used entries go first. Errors are not kept (they are rare and cheap).
 */
const DECODE_MEMO_ENTRIES = 512
const DECODE_MEMO_MAX_TOKEN = 16 * 1024
const decodeMemo = new Map<string, RawJson>()

function decodeMemoized (jwt: unknown): RawJson {
  if (typeof jwt !== 'string' || jwt.length > DECODE_MEMO_MAX_TOKEN) return new RawJson(stringifyExact(decode('io.jwt.decode', jwt)))
  const hit = decodeMemo.get(jwt)
  if (hit !== undefined) {
    // re-inserted: a Map iterates in insertion order, so the first key is the least recently used
    decodeMemo.delete(jwt)
    decodeMemo.set(jwt, hit)
    return hit
  }
  const out = new RawJson(stringifyExact(decode('io.jwt.decode', jwt)))
  if (decodeMemo.size >= DECODE_MEMO_ENTRIES) decodeMemo.delete(decodeMemo.keys().next().value as string)
  decodeMemo.set(jwt, out)
  return out
}

export const jwtBuiltins: BuiltinSpec[] = [
  {
    name: 'io.jwt.decode',
    // RawJson is immutable text, so one instance can answer every decision with that token.
    impl: (_ctx, [jwt]) => decodeMemoized(jwt),
  },
  {
    name: 'io.jwt.decode_verify',
    nondeterministic: true, // reads the clock unless the constraints carry `time`
    impl: (ctx, [jwt, c]) => decodeVerify(ctx, jwt, c),
  },
  verifyBuiltin('io.jwt.verify_rs256', 'RS', '256'),
  verifyBuiltin('io.jwt.verify_rs384', 'RS', '384'),
  verifyBuiltin('io.jwt.verify_rs512', 'RS', '512'),
  verifyBuiltin('io.jwt.verify_ps256', 'PS', '256'),
  verifyBuiltin('io.jwt.verify_ps384', 'PS', '384'),
  verifyBuiltin('io.jwt.verify_ps512', 'PS', '512'),
  verifyBuiltin('io.jwt.verify_es256', 'ES', '256'),
  verifyBuiltin('io.jwt.verify_es384', 'ES', '384'),
  verifyBuiltin('io.jwt.verify_es512', 'ES', '512'),
  verifyBuiltin('io.jwt.verify_eddsa', 'EdDSA', ''),
  verifyHS('io.jwt.verify_hs256', '256'),
  verifyHS('io.jwt.verify_hs384', '384'),
  verifyHS('io.jwt.verify_hs512', '512'),
  {
    name: 'io.jwt.encode_sign_raw',
    nondeterministic: true, // ECDSA and RSA-PSS signatures are randomized
    impl: (_ctx, [h, p, k]) => {
      const b = 'io.jwt.encode_sign_raw'
      return encodeSign(b, str(b, h, 1), str(b, p, 2), str(b, k, 3))
    },
  },
  {
    name: 'io.jwt.encode_sign',
    nondeterministic: true,
    impl: (_ctx, [h, p, k]) => {
      const b = 'io.jwt.encode_sign'
      if (!isObj(h)) throw new BuiltinError(b, 'operand 1 must be object')
      if (!isObj(p)) throw new BuiltinError(b, 'operand 2 must be object')
      if (!isObj(k)) throw new BuiltinError(b, 'operand 3 must be object')
      return encodeSign(b, goJson(h), goJson(p), goJson(k))
    },
  },
]
