/**
 * A verified caller for tests that need the example policy to allow: a JWT-SVID trust domain
 * (example.org) generated in setup, the identity configuration that trusts it, and a really
 * signed token for the example policy's frontend workload. Callers can no longer claim an
 * identity in their input (Portcullis removes input.identity), so an allowed decision needs one.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jwtSvidIssuer, type JwtSvidIssuer } from './jwt-svid.js'

export const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'

export interface VerifiedCaller {
  issuer: JwtSvidIssuer
  /** The `identity:` configuration section; anonymous callers reach the policy (on_missing: allow) unless told otherwise. */
  config: (onMissing?: 'allow' | 'deny') => Record<string, unknown>
  /** `authorization: Bearer <JWT-SVID>` for the frontend workload. */
  headers: Record<string, string>
}

export async function verifiedCaller (spiffeId = FRONTEND): Promise<VerifiedCaller> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-caller-'))
  const issuer = await jwtSvidIssuer(dir)
  const token = await issuer.sign(spiffeId, { expSeconds: 3600 })
  return {
    issuer,
    config: (onMissing = 'allow') => ({
      trust_domains: { 'example.org': { jwt_authorities: [issuer.jwksFile] } },
      jwt_svid: { audiences: ['portcullis'] },
      watch: { enabled: false },
      on_missing: onMissing,
    }),
    headers: { authorization: `Bearer ${token}` },
  }
}
