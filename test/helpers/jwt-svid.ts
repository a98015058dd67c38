/**
 * A JWT-SVID issuer for tests: an ES256 key generated in setup (jose), its public half
 * written as a SPIFFE JWKS file (`use: jwt-svid`), and tokens really signed with it.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'

export interface JwtSvidIssuer {
  jwksFile: string
  sign: (sub: string, opts?: { aud?: string, expSeconds?: number }) => Promise<string>
}

export async function jwtSvidIssuer (dir: string, trustDomain = 'example.org'): Promise<JwtSvidIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(publicKey)
  const jwksFile = join(dir, `${trustDomain}.jwks.json`)
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...jwk, kid: 'k1', use: 'jwt-svid', alg: 'ES256' }] }))
  return {
    jwksFile,
    sign: async (sub, opts = {}) => new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setSubject(sub)
      .setAudience(opts.aud ?? 'portcullis')
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expSeconds ?? 300))
      .sign(privateKey as CryptoKey),
  }
}
