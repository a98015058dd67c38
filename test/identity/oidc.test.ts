/**
 * OIDC issuers. A real HTTP server on 127.0.0.1:0 serves discovery and JWKS; keys and tokens
 * are generated in setup with jose. Nothing leaves loopback.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { kubernetesDetails, OidcIssuer } from '../../src/identity/oidc.js'
import { validateIdentityConfig } from '../../src/config/identity.js'
import type { OidcIssuerConfig } from '../../src/config/schema.js'
import { mergeBundle, parseJwks } from '../../src/identity/bundle.js'
import { epoch, HOUR, makeJwtKey, signJwt, T0, type JwtKey } from './support/pki.js'

let server: Server
let base: string
let k8sKey: JwtKey
let rotated: JwtKey
let jwks: { keys: unknown[] }
let discoveryIssuer: string | undefined
let hang = false
const hits: Record<string, number> = {}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

before(async () => {
  k8sKey = await makeJwtKey('RS256', 'k8s-1')
  rotated = await makeJwtKey('RS256', 'k8s-2')
  jwks = { keys: [{ ...k8sKey.publicJwk, use: 'sig', alg: 'RS256' }] }
  server = createServer((req, res) => {
    hits[req.url ?? ''] = (hits[req.url ?? ''] ?? 0) + 1
    if (hang) return
    if (req.url === '/.well-known/openid-configuration') send(res, 200, { issuer: discoveryIssuer ?? base, jwks_uri: `${base}/openid/v1/jwks`, id_token_signing_alg_values_supported: ['RS256'] })
    else if (req.url === '/openid/v1/jwks') send(res, 200, jwks)
    else send(res, 404, {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const issuerCfg = (over: Record<string, unknown> = {}): OidcIssuerConfig =>
  validateIdentityConfig({ oidc: { issuers: [{ issuer: base, audiences: ['portcullis'], discovery: true, cooldown_ms: 0, timeout_ms: 1000, ...over }] } }).oidc.issuers[0] as OidcIssuerConfig

/** A Kubernetes projected service-account token. */
function k8sClaims (extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: base,
    aud: ['portcullis'],
    sub: 'system:serviceaccount:payments:api',
    exp: epoch(HOUR),
    iat: epoch(-60),
    nbf: epoch(-60),
    'kubernetes.io': {
      namespace: 'payments',
      serviceaccount: { name: 'api', uid: 'sa-uid-1' },
      pod: { name: 'api-7d9f', uid: 'pod-uid-1' },
      node: { name: 'node-a', uid: 'node-uid-1' },
    },
    ...extra,
  }
}

async function expectCode (issuer: OidcIssuer, token: string, code: string, now: Date = T0): Promise<void> {
  await assert.rejects(issuer.verify(token, now), (err: { code?: string }) => {
    assert.equal(err.code, code)
    return true
  })
}

describe('OIDC: accepted', () => {
  test('Kubernetes token via discovery; claims normalized', async () => {
    const issuer = new OidcIssuer(issuerCfg(), { now: () => T0 })
    const { identity, expiresAt } = await issuer.verify(await signJwt(k8sKey, k8sClaims(), { typ: null }), T0)
    assert.equal(identity.type, 'oidc')
    assert.equal(identity.subject, 'system:serviceaccount:payments:api')
    assert.equal(identity.issuer, base)
    assert.deepEqual(identity.audience, ['portcullis'])
    assert.equal(identity.spiffe_id, undefined)
    assert.deepEqual(identity.kubernetes, {
      namespace: 'payments',
      service_account: { name: 'api', uid: 'sa-uid-1' },
      pod: { name: 'api-7d9f', uid: 'pod-uid-1' },
      node: { name: 'node-a', uid: 'node-uid-1' },
    })
    assert.equal(expiresAt.getTime(), epoch(HOUR) * 1000)
  })

  test('jwks_uri without discovery', async () => {
    const before = hits['/.well-known/openid-configuration'] ?? 0
    const issuer = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_uri: `${base}/openid/v1/jwks` }), { now: () => T0 })
    await issuer.verify(await signJwt(k8sKey, k8sClaims()), T0)
    assert.equal(hits['/.well-known/openid-configuration'] ?? 0, before)
  })

  test('keys from a JWKS file', async () => {
    const bundle = mergeBundle('oidc:file', [parseJwks(JSON.stringify(jwks), 'k8s-jwks.json')])
    const issuer = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_file: '/unused/jwks.json' }), { now: () => T0, fileBundle: () => bundle })
    const { identity } = await issuer.verify(await signJwt(k8sKey, k8sClaims()), T0)
    assert.equal(identity.kubernetes?.namespace, 'payments')
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims(), { kid: 'gone' }), 'PORTCULLIS_IDENTITY_KEY_UNKNOWN')
  })

  test('a token that several keys fit (no kid, two RSA keys): each key is tried', async () => {
    const noAlg = (k: JwtKey): Record<string, unknown> => ({ ...k.publicJwk, use: 'sig' })
    const file = mergeBundle('oidc:file', [parseJwks(JSON.stringify({ keys: [noAlg(k8sKey), noAlg(rotated)] }), 'k8s-jwks.json')])
    const fromFile = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_file: '/unused/jwks.json' }), { now: () => T0, fileBundle: () => file })
    jwks.keys.push({ ...rotated.publicJwk, use: 'sig', alg: 'RS256' })
    try {
      const fromUri = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_uri: `${base}/openid/v1/jwks` }), { now: () => T0 })
      for (const issuer of [fromFile, fromUri]) {
        for (const key of [k8sKey, rotated]) {
          const { identity } = await issuer.verify(await signJwt(key, k8sClaims(), { kid: null }), T0)
          assert.equal(identity.subject, 'system:serviceaccount:payments:api')
        }
        await expectCode(issuer, await signJwt(rotated, k8sClaims({ exp: epoch(-HOUR) }), { kid: null }), 'PORTCULLIS_IDENTITY_EXPIRED')
        await expectCode(issuer, await signJwt(await makeJwtKey('RS256', 'x'), k8sClaims(), { kid: null }), 'PORTCULLIS_IDENTITY_SIGNATURE')
      }
    } finally {
      jwks.keys.pop()
    }
  })

  test('key rotation: a token with a new kid makes the remote set refetch (cooldown 0)', async () => {
    const issuer = new OidcIssuer(issuerCfg(), { now: () => T0 })
    await issuer.verify(await signJwt(k8sKey, k8sClaims()), T0)
    jwks.keys.push({ ...rotated.publicJwk, use: 'sig', alg: 'RS256' })
    try {
      const { identity } = await issuer.verify(await signJwt(rotated, k8sClaims()), T0)
      assert.equal(identity.subject, 'system:serviceaccount:payments:api')
    } finally {
      jwks.keys.pop()
    }
  })
})

describe('OIDC: rejected', () => {
  let issuer: OidcIssuer
  before(() => { issuer = new OidcIssuer(issuerCfg(), { now: () => T0 }) })

  test('wrong issuer → ISSUER', async () => {
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims({ iss: 'https://elsewhere.example' })), 'PORTCULLIS_IDENTITY_ISSUER')
  })
  test('wrong or missing audience → AUDIENCE', async () => {
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims({ aud: ['vault'] })), 'PORTCULLIS_IDENTITY_AUDIENCE')
    const c = k8sClaims()
    delete c.aud
    await expectCode(issuer, await signJwt(k8sKey, c), 'PORTCULLIS_IDENTITY_AUDIENCE')
  })
  test('algorithm outside the issuer allow-list → ALGORITHM', async () => {
    await expectCode(issuer, await signJwt(await makeJwtKey('ES256', 'k8s-1'), k8sClaims()), 'PORTCULLIS_IDENTITY_ALGORITHM')
  })
  test('missing exp → CLAIM_MISSING; expired → EXPIRED; future nbf → NOT_YET_VALID', async () => {
    const c = k8sClaims()
    delete c.exp
    await expectCode(issuer, await signJwt(k8sKey, c), 'PORTCULLIS_IDENTITY_CLAIM_MISSING')
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims()), 'PORTCULLIS_IDENTITY_EXPIRED', new Date(T0.getTime() + 2 * HOUR))
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims({ nbf: epoch(HOUR / 2) })), 'PORTCULLIS_IDENTITY_NOT_YET_VALID')
    // an exp or iat no date can hold: refused by name (a RangeError before)
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims({ exp: 1e20 })), 'PORTCULLIS_IDENTITY_CLAIM_MISSING')
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims({ iat: 1e20 })), 'PORTCULLIS_IDENTITY_CLAIM_MISSING')
  })
  test('tampered payload → SIGNATURE; unknown kid → KEY_UNKNOWN', async () => {
    const [h, , s] = (await signJwt(k8sKey, k8sClaims())).split('.')
    const forged = Buffer.from(JSON.stringify(k8sClaims({ sub: 'system:serviceaccount:kube-system:admin' }))).toString('base64url')
    await expectCode(issuer, `${h}.${forged}.${s}`, 'PORTCULLIS_IDENTITY_SIGNATURE')
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims(), { kid: 'unknown' }), 'PORTCULLIS_IDENTITY_KEY_UNKNOWN')
  })
})

describe('OIDC: key source failures fail closed with KEYS_UNAVAILABLE', () => {
  test('discovery document naming another issuer', async () => {
    discoveryIssuer = 'https://impostor.example'
    try {
      const issuer = new OidcIssuer(issuerCfg(), { now: () => T0 })
      await expectCode(issuer, await signJwt(k8sKey, k8sClaims()), 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
    } finally {
      discoveryIssuer = undefined
    }
  })

  test('unreachable JWKS URL', async () => {
    const issuer = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_uri: 'http://127.0.0.1:1/jwks' }), { now: () => T0 })
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims()), 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
  })

  test('JWKS URL answering 404', async () => {
    const issuer = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_uri: `${base}/nope` }), { now: () => T0 })
    await expectCode(issuer, await signJwt(k8sKey, k8sClaims()), 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
  })

  test('a hanging JWKS endpoint times out', async () => {
    hang = true
    try {
      const issuer = new OidcIssuer(issuerCfg({ discovery: undefined, jwks_uri: `${base}/openid/v1/jwks`, timeout_ms: 150 }), { now: () => T0 })
      await expectCode(issuer, await signJwt(k8sKey, k8sClaims()), 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
    } finally {
      hang = false
      server.closeAllConnections()
    }
  })

  test('discovery failure is retried only after the cooldown', async () => {
    let now = T0
    const issuer = new OidcIssuer(issuerCfg({ cooldown_ms: 60_000 }), { now: () => now })
    discoveryIssuer = 'https://impostor.example'
    const token = await signJwt(k8sKey, k8sClaims())
    try {
      await expectCode(issuer, token, 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
      const count = hits['/.well-known/openid-configuration'] ?? 0
      await expectCode(issuer, token, 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE')
      assert.equal(hits['/.well-known/openid-configuration'], count)
    } finally {
      discoveryIssuer = undefined
    }
    now = new Date(T0.getTime() + 61_000)
    const { identity } = await issuer.verify(token, T0)
    assert.equal(identity.subject, 'system:serviceaccount:payments:api')
  })
})

test('kubernetesDetails: absent, malformed or inconsistent with sub gives nothing', () => {
  assert.equal(kubernetesDetails({ sub: 'x' }), undefined)
  assert.equal(kubernetesDetails({ sub: 'system:serviceaccount:a:b', 'kubernetes.io': { namespace: 'a' } }), undefined)
  assert.equal(kubernetesDetails({ sub: 'system:serviceaccount:a:c', 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } }), undefined)
  assert.deepEqual(kubernetesDetails({ sub: 'system:serviceaccount:a:b', 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } }), { namespace: 'a', service_account: { name: 'b' } })
})
