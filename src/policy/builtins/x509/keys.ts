/**
 * crypto.x509.* and crypto.parse_private_keys private keys: PEM block types to KeyObjects, and
 * keys as Go's *rsa.PrivateKey / *ecdsa.PrivateKey / ed25519.PrivateKey marshal.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { b64 } from './fields.js'

const b64url2big = (s: string): bigint => BigInt('0x' + (Buffer.from(s, 'base64url').toString('hex') || '0'))

export function keyJson (k: KeyObject): unknown {
  const jwk = k.export({ format: 'jwk' })
  if (jwk.kty === 'RSA') {
    const p = b64url2big(jwk.p as string); const q = b64url2big(jwk.q as string)
    return {
      N: b64url2big(jwk.n as string), E: Number(b64url2big(jwk.e as string)), D: b64url2big(jwk.d as string), Primes: [p, q],
      Precomputed: { Dp: b64url2big(jwk.dp as string), Dq: b64url2big(jwk.dq as string), Qinv: b64url2big(jwk.qi as string), CRTValues: [] },
    }
  }
  if (jwk.kty === 'EC') return { Curve: {}, X: b64url2big(jwk.x as string), Y: b64url2big(jwk.y as string), D: b64url2big(jwk.d as string) }
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return b64(Buffer.concat([Buffer.from(jwk.d as string, 'base64url'), Buffer.from(jwk.x as string, 'base64url')]))
  return null
}

export function privateKeyFromBlock (type: string, bytes: Buffer): KeyObject | undefined {
  try {
    if (type === 'RSA PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs1' })
    if (type === 'EC PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'sec1' })
    if (type === 'PRIVATE KEY') return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' })
  } catch {
    return undefined
  }
  return undefined
}
