/**
 * JWT-SVID verification. Keys and tokens are generated in setup with jose (WebCrypto);
 * tokens jose refuses to produce (crit, alg none) are signed by hand with node:crypto.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, sign as nodeSign, createHmac } from 'node:crypto'
import { SignJWT } from 'jose'
import { mergeBundle, parseSpiffeBundle, type TrustBundle } from '../../src/identity/bundle.js'
import { verifyJwtSvid, verifyJwtSvidReference, type JwtSvidOptions } from '../../src/identity/jwt-svid.js'
import { JWT_SVID_ALGORITHMS } from '../../src/config/schema.js'
import { epoch, HOUR, makeJwtKey, signJwt, spiffeBundle, T0, type JwtKey } from './support/pki.js'

const SUB = 'spiffe://example.org/ns/prod/sa/api'
const AUD = 'portcullis'
const opts: JwtSvidOptions = { audiences: [AUD], algorithms: JWT_SVID_ALGORITHMS, leewaySeconds: 30 }

let es256: JwtKey
let rs256: JwtKey
let ps256: JwtKey
let otherTd: JwtKey
let eddsa: JwtKey
let bundles: Map<string, TrustBundle>
const lookup = (td: string): TrustBundle | undefined => bundles.get(td)

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ sub: SUB, aud: [AUD], exp: epoch(HOUR), iat: epoch(-60), ...extra })

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')

/** Signs header.payload by hand (jose will not produce some of the hostile tokens). */
function rawToken (key: JwtKey, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`
  const ko = KeyObject.from(key.privateKey)
  const sig = key.alg.startsWith('ES')
    ? nodeSign('sha256', Buffer.from(input), { key: ko, dsaEncoding: 'ieee-p1363' })
    : nodeSign('sha256', Buffer.from(input), ko)
  return `${input}.${sig.toString('base64url')}`
}

async function expectCode (token: string, code: string, now: Date = T0, o: JwtSvidOptions = opts): Promise<void> {
  await assert.rejects(verifyJwtSvid(token, lookup, o, now), (err: { code?: string }) => {
    assert.equal(err.code, code)
    return true
  })
}

before(async () => {
  es256 = await makeJwtKey('ES256', 'es-1')
  rs256 = await makeJwtKey('RS256', 'rs-1')
  ps256 = await makeJwtKey('PS256', 'ps-1')
  otherTd = await makeJwtKey('ES256', 'other-1')
  eddsa = await makeJwtKey('EdDSA', 'ed-1')
  bundles = new Map([
    ['example.org', mergeBundle('example.org', [parseSpiffeBundle(await spiffeBundle({ jwt: [es256, rs256, ps256] }), 'example.org.json')])],
    ['other.test', mergeBundle('other.test', [parseSpiffeBundle(await spiffeBundle({ jwt: [otherTd] }), 'other.json')])],
  ])
})

describe('JWT-SVID: accepted', () => {
  for (const name of ['ES256', 'RS256', 'PS256'] as const) {
    test(`${name} signed by a jwt-svid key of the sub's trust domain`, async () => {
      const key = name === 'ES256' ? es256 : name === 'RS256' ? rs256 : ps256
      const token = await signJwt(key, claims({ iss: 'https://oidc.example.org' }))
      const { identity, expiresAt } = await verifyJwtSvid(token, lookup, opts, T0)
      assert.equal(identity.type, 'jwt-svid')
      assert.equal(identity.spiffe_id, SUB)
      assert.equal(identity.trust_domain, 'example.org')
      assert.equal(identity.path, '/ns/prod/sa/api')
      assert.deepEqual(identity.audience, [AUD])
      assert.equal(identity.issuer, 'https://oidc.example.org')
      assert.equal(expiresAt.getTime(), epoch(HOUR) * 1000)
      assert.equal(identity.claims?.sub, SUB)
    })
  }

  test('kid is optional, typ may be absent or JOSE, aud may be a string among others', async () => {
    await verifyJwtSvid(await signJwt(es256, claims(), { kid: null }), lookup, opts, T0)
    await verifyJwtSvid(await signJwt(es256, claims(), { typ: null }), lookup, opts, T0)
    await verifyJwtSvid(await signJwt(es256, claims(), { typ: 'JOSE' }), lookup, opts, T0)
    await verifyJwtSvid(await signJwt(es256, claims({ aud: AUD })), lookup, opts, T0)
    await verifyJwtSvid(await signJwt(es256, claims({ aud: ['other', AUD] })), lookup, opts, T0)
  })

  test('leeway tolerates a token that expired seconds ago', async () => {
    const token = await signJwt(es256, claims({ exp: epoch(-10_000) }))
    await verifyJwtSvid(token, lookup, opts, T0)
    await expectCode(token, 'PORTCULLIS_IDENTITY_EXPIRED', T0, { ...opts, leewaySeconds: 0 })
  })
})

describe('JWT-SVID negative suite: each case has its own code', () => {
  test('alg none → ALGORITHM', async () => {
    await expectCode(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`, 'PORTCULLIS_IDENTITY_ALGORITHM')
    await expectCode(`${b64({ alg: 'none' })}.${b64(claims())}.c2ln`, 'PORTCULLIS_IDENTITY_ALGORITHM')
  })

  test('an RSA key under 2048 bits in the bundle → ALGORITHM (the key does not fit RS256), not MALFORMED', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 })
    const jwk = { ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak-1' }
    const bundle = mergeBundle('example.org', [parseSpiffeBundle(JSON.stringify({ keys: [{ ...jwk, use: 'jwt-svid' }] }), 'weak.json')])
    const input = `${b64({ alg: 'RS256', kid: 'weak-1', typ: 'JWT' })}.${b64(claims())}`
    const token = `${input}.${nodeSign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`
    for (const f of [verifyJwtSvid, verifyJwtSvidReference]) {
      await assert.rejects(f(token, () => bundle, opts, T0), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
    }
  })

  test('HS256 keyed with the public key → ALGORITHM', async () => {
    const secret = Buffer.from(JSON.stringify(es256.publicJwk))
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: es256.kid }).sign(secret)
    await expectCode(token, 'PORTCULLIS_IDENTITY_ALGORITHM')
    const input = `${b64({ alg: 'HS256', kid: rs256.kid })}.${b64(claims())}`
    const mac = createHmac('sha256', Buffer.from(String(rs256.publicJwk.n))).update(input).digest('base64url')
    await expectCode(`${input}.${mac}`, 'PORTCULLIS_IDENTITY_ALGORITHM')
  })

  test('EdDSA → ALGORITHM', async () => {
    await expectCode(await signJwt(eddsa, claims()), 'PORTCULLIS_IDENTITY_ALGORITHM')
  })

  test('alg / key-type mismatch → ALGORITHM', async () => {
    // RS256 header and signature, but the kid names the EC key.
    await expectCode(await signJwt(rs256, claims(), { kid: es256.kid }), 'PORTCULLIS_IDENTITY_ALGORITHM')
    // ES384 header: no P-384 key in the trust domain at all.
    await expectCode(rawToken(es256, { alg: 'ES384', typ: 'JWT' }, claims()), 'PORTCULLIS_IDENTITY_ALGORITHM')
  })

  test('missing aud → AUDIENCE', async () => {
    const c = claims()
    delete c.aud
    await expectCode(await signJwt(es256, c), 'PORTCULLIS_IDENTITY_AUDIENCE')
  })

  test('wrong aud → AUDIENCE', async () => {
    await expectCode(await signJwt(es256, claims({ aud: ['someone-else'] })), 'PORTCULLIS_IDENTITY_AUDIENCE')
    await expectCode(await signJwt(es256, claims({ aud: [] })), 'PORTCULLIS_IDENTITY_AUDIENCE')
  })

  test('missing exp → CLAIM_MISSING', async () => {
    const c = claims()
    delete c.exp
    await expectCode(await signJwt(es256, c), 'PORTCULLIS_IDENTITY_CLAIM_MISSING')
  })

  test('expired → EXPIRED', async () => {
    await expectCode(await signJwt(es256, claims({ exp: epoch(-HOUR) })), 'PORTCULLIS_IDENTITY_EXPIRED')
    await expectCode(await signJwt(es256, claims()), 'PORTCULLIS_IDENTITY_EXPIRED', new Date(T0.getTime() + 2 * HOUR))
  })

  test('future nbf → NOT_YET_VALID', async () => {
    await expectCode(await signJwt(es256, claims({ nbf: epoch(10 * 60_000) })), 'PORTCULLIS_IDENTITY_NOT_YET_VALID')
  })

  test('tampered payload → SIGNATURE', async () => {
    const [h, , s] = (await signJwt(es256, claims())).split('.')
    await expectCode(`${h}.${b64(claims({ sub: 'spiffe://example.org/ns/prod/sa/admin' }))}.${s}`, 'PORTCULLIS_IDENTITY_SIGNATURE')
    await expectCode(`${h}.${b64(claims({ exp: epoch(100 * HOUR) }))}.${s}`, 'PORTCULLIS_IDENTITY_SIGNATURE')
  })

  test('tampered signature → SIGNATURE', async () => {
    for (const key of [es256, rs256]) {
      const [h, p, s] = (await signJwt(key, claims())).split('.') as [string, string, string]
      const i = Math.floor(s.length / 2)
      const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
      await expectCode(`${h}.${p}.${flipped}`, 'PORTCULLIS_IDENTITY_SIGNATURE')
    }
  })

  test('unknown kid → KEY_UNKNOWN', async () => {
    await expectCode(await signJwt(es256, claims(), { kid: 'no-such-key' }), 'PORTCULLIS_IDENTITY_KEY_UNKNOWN')
  })

  test('sub in trust domain B signed with trust domain A\'s key is refused', async () => {
    const subB = 'spiffe://other.test/ns/prod/sa/api'
    // With A's kid: B's bundle has no such key.
    await expectCode(await signJwt(es256, claims({ sub: subB })), 'PORTCULLIS_IDENTITY_KEY_UNKNOWN')
    // Without a kid: B's keys are tried and none verifies.
    await expectCode(await signJwt(es256, claims({ sub: subB }), { kid: null }), 'PORTCULLIS_IDENTITY_SIGNATURE')
    // And the other way round: A's sub with B's key.
    await expectCode(await signJwt(otherTd, claims(), { kid: null }), 'PORTCULLIS_IDENTITY_SIGNATURE')
  })

  test('sub of an unconfigured trust domain → TRUST_DOMAIN_UNKNOWN', async () => {
    await expectCode(await signJwt(es256, claims({ sub: 'spiffe://nowhere.test/x' })), 'PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN')
  })

  test('bad typ → TOKEN_TYPE', async () => {
    await expectCode(await signJwt(es256, claims(), { typ: 'at+jwt' }), 'PORTCULLIS_IDENTITY_TOKEN_TYPE')
    await expectCode(await signJwt(es256, claims(), { typ: 'jwt' }), 'PORTCULLIS_IDENTITY_TOKEN_TYPE')
  })

  test('unknown crit → UNSUPPORTED_CRIT', async () => {
    await expectCode(rawToken(es256, { alg: 'ES256', kid: es256.kid, crit: ['exp-ext'], 'exp-ext': true }, claims()), 'PORTCULLIS_IDENTITY_UNSUPPORTED_CRIT')
    await expectCode(rawToken(es256, { alg: 'ES256', kid: es256.kid, crit: ['b64'], b64: false }, claims()), 'PORTCULLIS_IDENTITY_UNSUPPORTED_CRIT')
  })

  test('JWS JSON serialization → MALFORMED', async () => {
    const [h, p, s] = (await signJwt(es256, claims())).split('.')
    await expectCode(JSON.stringify({ protected: h, payload: p, signature: s }), 'PORTCULLIS_IDENTITY_MALFORMED')
    await expectCode(JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] }), 'PORTCULLIS_IDENTITY_MALFORMED')
  })

  test('garbage → MALFORMED', async () => {
    for (const g of ['', 'garbage', 'a.b', 'a.b.c.d', '...', '!!.??.##', `${b64({ alg: 'ES256' })}.not-json.sig`, `${b64([1])}.${b64(claims())}.c2ln`, 'eyJ.eyJ.eyJ', '\u0000'.repeat(10)]) {
      await expectCode(g, 'PORTCULLIS_IDENTITY_MALFORMED')
    }
  })

  test('missing sub → CLAIM_MISSING; non-SPIFFE or root sub → BAD_SPIFFE_ID', async () => {
    const c = claims()
    delete c.sub
    await expectCode(await signJwt(es256, c), 'PORTCULLIS_IDENTITY_CLAIM_MISSING')
    await expectCode(await signJwt(es256, claims({ sub: 'system:serviceaccount:prod:api' })), 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
    await expectCode(await signJwt(es256, claims({ sub: 'spiffe://example.org' })), 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
    await expectCode(await signJwt(es256, claims({ sub: 42 })), 'PORTCULLIS_IDENTITY_BAD_SPIFFE_ID')
  })

  test('a trust domain whose bundle has no JWT authorities trusts nothing → UNTRUSTED', async () => {
    const empty = mergeBundle('example.org', [{ x509Authorities: [], jwtAuthorities: [] }])
    await assert.rejects(verifyJwtSvid(await signJwt(es256, claims()), () => empty, opts, T0), { code: 'PORTCULLIS_IDENTITY_UNTRUSTED' })
  })
})

describe('JWT-SVID: several keys fit the token, each is tried', () => {
  let k1: JwtKey
  let k2: JwtKey
  let stranger: JwtKey
  let rotatedSameKid: JwtKey
  before(async () => {
    k1 = await makeJwtKey('ES256', 'k-1')
    k2 = await makeJwtKey('ES256', 'k-2')
    stranger = await makeJwtKey('ES256', 'k-1')
    rotatedSameKid = await makeJwtKey('ES256', 'k-1')
  })

  /** Both paths (node:crypto first, jose only) must give the same verdict. */
  async function bothAccept (token: string, bundle: TrustBundle): Promise<void> {
    for (const verify of [verifyJwtSvid, verifyJwtSvidReference]) {
      const { identity } = await verify(token, () => bundle, opts, T0)
      assert.equal(identity.spiffe_id, SUB)
    }
  }
  async function bothRefuse (token: string, bundle: TrustBundle, code: string): Promise<void> {
    for (const verify of [verifyJwtSvid, verifyJwtSvidReference]) {
      await assert.rejects(verify(token, () => bundle, opts, T0), (err: { code?: string }) => {
        assert.equal(err.code, code)
        return true
      })
    }
  }

  test('no kid and two keys of the trust domain fit: the one that signed it verifies', async () => {
    const bundle = mergeBundle('example.org', [parseSpiffeBundle(await spiffeBundle({ jwt: [k1, k2] }), 'two.json')])
    assert.equal(bundle.jwtAuthorities.length, 2)
    await bothAccept(await signJwt(k1, claims(), { kid: null }), bundle)
    await bothAccept(await signJwt(k2, claims(), { kid: null }), bundle)
    await bothRefuse(await signJwt(stranger, claims(), { kid: null }), bundle, 'PORTCULLIS_IDENTITY_SIGNATURE')
    // The claims are judged once a key verifies the signature, whichever candidate it is.
    await bothRefuse(await signJwt(k2, claims({ exp: epoch(-HOUR) }), { kid: null }), bundle, 'PORTCULLIS_IDENTITY_EXPIRED')
    await bothRefuse(await signJwt(k1, claims({ aud: ['someone-else'] }), { kid: null }), bundle, 'PORTCULLIS_IDENTITY_AUDIENCE')
  })

  test('the same key in two sources of a trust domain is one key', async () => {
    const doc = await spiffeBundle({ jwt: [k1, k2] })
    const bundle = mergeBundle('example.org', [parseSpiffeBundle(doc, 'a.json'), parseSpiffeBundle(doc, 'b.json')])
    assert.equal(bundle.jwtAuthorities.length, 2)
    await bothAccept(await signJwt(k1, claims()), bundle)
    await bothAccept(await signJwt(k2, claims(), { kid: null }), bundle)
  })

  test('one kid on different keys of two sources: either key verifies, a third does not', async () => {
    const bundle = mergeBundle('example.org', [
      parseSpiffeBundle(await spiffeBundle({ jwt: [k1] }), 'a.json'),
      parseSpiffeBundle(await spiffeBundle({ jwt: [rotatedSameKid] }), 'b.json'),
    ])
    assert.equal(bundle.jwtAuthorities.length, 2)
    await bothAccept(await signJwt(k1, claims()), bundle)
    await bothAccept(await signJwt(rotatedSameKid, claims()), bundle)
    await bothRefuse(await signJwt(stranger, claims()), bundle, 'PORTCULLIS_IDENTITY_SIGNATURE')
    await bothRefuse(await signJwt(rotatedSameKid, claims({ exp: epoch(-HOUR) })), bundle, 'PORTCULLIS_IDENTITY_EXPIRED')
  })
})

describe('JWT-SVID claims (checked by jwt-svid.ts as jose checks them): codes and details on both paths', () => {
  const SUBJ = `"sub":"${SUB}"`
  const t = (d = 0): number => epoch() + d

  /** A token over a raw JSON payload (or raw payload octets), signed by the ES256 key. */
  function signedRaw (payload: string | Buffer, header: Record<string, unknown> = { alg: 'ES256', kid: es256.kid, typ: 'JWT' }): string {
    const input = `${b64(header)}.${Buffer.from(payload).toString('base64url')}`
    return `${input}.${nodeSign('sha256', Buffer.from(input), { key: KeyObject.from(es256.privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }

  async function both (token: string, expected: { code: string, details?: Record<string, unknown> } | 'accepted', now: Date = T0): Promise<void> {
    for (const verify of [verifyJwtSvid, verifyJwtSvidReference]) {
      if (expected === 'accepted') {
        assert.equal((await verify(token, lookup, opts, now)).identity.spiffe_id, SUB, verify.name)
        continue
      }
      await assert.rejects(verify(token, lookup, opts, now), (err: { code?: string, details?: Record<string, unknown> }) => {
        assert.equal(err.code, expected.code, verify.name)
        if (expected.details !== undefined) assert.deepEqual(err.details, expected.details, verify.name)
        return true
      })
    }
  }

  test('exp: expired when exp <= now − leeway (30 s), in whole seconds of now', async () => {
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(-30)}}`), { code: 'PORTCULLIS_IDENTITY_EXPIRED', details: { claim: 'exp' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(-29)}}`), 'accepted')
    // now = T0 + 0.999 s is still T0's second.
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(-29)}}`), 'accepted', new Date(T0.getTime() + 999))
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(-29)}}`), { code: 'PORTCULLIS_IDENTITY_EXPIRED' }, new Date(T0.getTime() + 1000))
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":-1e400}`), { code: 'PORTCULLIS_IDENTITY_EXPIRED' })
  })

  test('nbf: not yet valid when nbf > now + leeway', async () => {
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"nbf":${t(30)}}`), 'accepted')
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"nbf":${t(30.5)}}`), { code: 'PORTCULLIS_IDENTITY_NOT_YET_VALID', details: { claim: 'nbf' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"nbf":${t(31)}}`), { code: 'PORTCULLIS_IDENTITY_NOT_YET_VALID', details: { claim: 'nbf' } })
  })

  test('aud: missing, mismatched, array, wrong type', async () => {
    await both(signedRaw(`{${SUBJ},"exp":${t(3600)}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE', details: { claim: 'aud', reason: 'missing' } })
    // aud's presence is checked before exp's.
    await both(signedRaw(`{${SUBJ}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE', details: { claim: 'aud', reason: 'missing' } })
    await both(signedRaw(`{${SUBJ},"aud":"Portcullis","exp":${t(3600)}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE', details: { claim: 'aud', reason: 'check_failed' } })
    await both(signedRaw(`{${SUBJ},"aud":null,"exp":${t(3600)}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE', details: { claim: 'aud', reason: 'check_failed' } })
    await both(signedRaw(`{${SUBJ},"aud":[["${AUD}"]],"exp":${t(3600)}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE', details: { claim: 'aud', reason: 'check_failed' } })
    await both(signedRaw(`{${SUBJ},"aud":[5,"${AUD}"],"exp":${t(3600)}}`), 'accepted')
    // Of duplicate members the last one counts, in the inspection and in jose alike.
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","aud":"nope","exp":${t(3600)}}`), { code: 'PORTCULLIS_IDENTITY_AUDIENCE' })
  })

  test('exp missing, exp / nbf / iat of the wrong type → CLAIM_MISSING with the claim and reason', async () => {
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}"}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'exp', reason: 'missing' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":"${t(3600)}"}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'exp', reason: 'invalid' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"nbf":null}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'nbf', reason: 'invalid' } })
    // iat is checked first (only its type: no maximum token age is configured).
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(-3600)},"iat":"now"}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'iat', reason: 'invalid' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"iat":${t(86400)}}`), 'accepted')
    // A number that is no date (beyond ±8.64e12 s, or Infinity) is refused by name on both paths.
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":1e20}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'exp', reason: 'invalid' } })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":1e999}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'exp', reason: 'invalid' } })
    // the same for iat (a RangeError before, from the time it was printed)
    for (const iat of ['1e20', '-1e20', '8640000000001']) {
      await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"iat":${iat}}`), { code: 'PORTCULLIS_IDENTITY_CLAIM_MISSING', details: { claim: 'iat', reason: 'invalid' } })
    }
  })

  test('payload octets: not UTF-8 → MALFORMED after the signature; a BOM or padding → MALFORMED; non-canonical base64url as jose decodes it', async () => {
    await both(signedRaw(Buffer.concat([Buffer.from(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"x":"`), Buffer.from([0xff]), Buffer.from('"}')])), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
    await both(signedRaw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)}}`)])), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
    // A payload whose segment length is not a multiple of 4, so its last character has unused bits.
    const pad = ['', 'x', 'xx'].find((x) => b64(JSON.parse(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"p":"${x}"}`)).length % 4 !== 0) as string
    const [h, p] = signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"p":"${pad}"}`).split('.') as [string, string]
    const sign = (input: string): string => `${input}.${nodeSign('sha256', Buffer.from(input), { key: KeyObject.from(es256.privateKey), dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
    await both(sign(`${h}.${p}${'='.repeat(4 - p.length % 4)}`), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
    await both(sign(`${h}.${p.replace(/-/g, '+').replace(/_/g, '/')}+`), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
    // The same claims with the last character's unused bits set: both decoders ignore them, and the signature covers the text.
    assert.notEqual(p.length % 4, 0, 'the payload segment has unused bits to set')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = alphabet.indexOf(p.slice(-1))
    assert.equal(last % 2, 0, 'a canonical last character leaves its unused bits 0')
    await both(sign(`${h}.${p.slice(0, -1)}${alphabet[last + 1] as string}`), 'accepted')
  })

  test('header and parts on both paths: alg none / HS256 / key mismatch, crit, extra or oversized parts', async () => {
    const good = `{${SUBJ},"aud":"${AUD}","exp":${t(3600)}}`
    await both(`${b64({ alg: 'none' })}.${b64(JSON.parse(good))}.`, { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
    await both(signedRaw(good, { alg: 'HS256', kid: es256.kid }), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
    await both(signedRaw(good, { alg: 'ES384', kid: es256.kid }), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
    await both(signedRaw(good, { alg: 'RS256', kid: es256.kid }), { code: 'PORTCULLIS_IDENTITY_ALGORITHM' })
    await both(signedRaw(good, { alg: 'ES256', kid: es256.kid, crit: ['exp'] }), { code: 'PORTCULLIS_IDENTITY_UNSUPPORTED_CRIT' })
    await both(signedRaw(good, { alg: 'ES256', kid: 'gone' }), { code: 'PORTCULLIS_IDENTITY_KEY_UNKNOWN' })
    const token = signedRaw(good)
    await both(`${token}.${token.split('.')[2] as string}`, { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
    await both(signedRaw(`{${SUBJ},"aud":"${AUD}","exp":${t(3600)},"pad":"${'x'.repeat(16 * 1024)}"}`), { code: 'PORTCULLIS_IDENTITY_MALFORMED' })
  })

  test('the accepted document is the same on both paths, claims included', async () => {
    const token = signedRaw(`{${SUBJ},"aud":["x","${AUD}"],"exp":${t(3600)},"iat":${t(-60)},"iss":"spire","x":{"y":[1]}}`)
    const fast = await verifyJwtSvid(token, lookup, opts, T0)
    assert.deepEqual(fast, await verifyJwtSvidReference(token, lookup, opts, T0))
    assert.deepEqual(fast.identity.audience, ['x', AUD])
    assert.equal(fast.identity.issuer, 'spire')
    assert.deepEqual(fast.identity.claims?.x, { y: [1] })
  })
})
