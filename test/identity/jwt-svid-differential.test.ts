/**
 * Differential property test: the node:crypto signature path of verifyJwtSvid (jws.ts) and
 * the jose-only reference (verifyJwtSvidReference) must agree on every token — accept with the
 * same identity document, or reject with the same code. fast-check generates hostile tokens:
 * algorithm and key mismatches (alg none, HS256, ES256 header over an RSA key, a 1024-bit RSA
 * key), crit and b64 headers, kid games, signatures that are truncated, padded, re-encoded or
 * in DER instead of JOSE's r||s, segments with invalid UTF-8 or a BOM, and claims of every
 * wrong type. Tokens are signed with node:crypto here, so the test can make what jose refuses
 * to make. Keys are generated in setup.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import fc from 'fast-check'
import { mergeBundle, parseJwks, type TrustBundle } from '../../src/identity/bundle.js'
import { jwsPathStats } from '../../src/identity/jws.js'
import { verifyJwtSvid, verifyJwtSvidReference, type JwtSvidOptions } from '../../src/identity/jwt-svid.js'
import { epoch, HOUR, T0 } from './support/pki.js'

interface Key { name: string, alg: string, priv: KeyObject, jwk: Record<string, unknown> }

const keys: Key[] = []
const bundles: TrustBundle[] = []
const OPTS: JwtSvidOptions = { audiences: ['portcullis', 'other'], algorithms: ['ES256', 'ES384', 'RS256', 'PS256'], leewaySeconds: 30 }

function makeKey (name: string, alg: string, kind: 'ec' | 'rsa', opt: { namedCurve?: string, modulusLength?: number }): Key {
  const { privateKey, publicKey } = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: opt.namedCurve ?? 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: opt.modulusLength ?? 2048 })
  return { name, alg, priv: privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid: name } }
}

before(() => {
  keys.push(
    makeKey('es', 'ES256', 'ec', {}),
    makeKey('es2', 'ES256', 'ec', {}),
    makeKey('es384', 'ES384', 'ec', { namedCurve: 'P-384' }),
    makeKey('rs', 'RS256', 'rsa', {}),
    makeKey('rs1024', 'RS256', 'rsa', { modulusLength: 1024 }),
  )
  const jwks = (members: Array<Record<string, unknown>>): TrustBundle => mergeBundle('example.org', [parseJwks(JSON.stringify({ keys: members }), 'jwks.json')])
  const k = (name: string): Record<string, unknown> => (keys.find((x) => x.name === name) as Key).jwk
  bundles.push(
    jwks([k('es'), k('rs'), k('es384')]),
    jwks([k('es'), k('es2')]), // two ES256 keys: without a kid jose must choose
    jwks([{ ...k('es'), kid: undefined }, k('rs')]), // a key without kid
    jwks([{ ...k('rs'), alg: 'PS256' }, { ...k('es'), alg: 'ES384' }]), // alg pinned on the keys
    jwks([k('rs1024'), k('es')]),
    jwks([]),
  )
})

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url')

function signature (key: Key, alg: string, input: string, form: 'jose' | 'der'): Buffer {
  const hash = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }[alg.slice(2)] ?? 'sha256'
  const data = Buffer.from(input)
  if (key.priv.asymmetricKeyType === 'ec') return sign(hash, data, { key: key.priv, dsaEncoding: form === 'jose' ? 'ieee-p1363' : 'der' })
  if (alg.startsWith('PS')) return sign(hash, data, { key: key.priv, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
  return sign(hash, data, key.priv)
}

/** Mostly the good value, sometimes one of the hostile ones: most tokens then differ from a valid one in a field or two. */
function mostly<T> (good: fc.Arbitrary<T>, ...bad: Array<fc.Arbitrary<T>>): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: good, weight: 6 }, ...bad.map((arbitrary) => ({ arbitrary, weight: 1 })))
}
const badTime = fc.oneof(fc.integer({ min: -10, max: 10 }).map((h) => epoch(h * HOUR / 2)), fc.constant('1700000000'), fc.constant(null), fc.double({ noNaN: true }), fc.constant(1e20)) as fc.Arbitrary<unknown>

const tokenArb = fc.record({
  // signer index: 0 es (ES256), 2 es384, 3 rs (RS256 / PS256), 1 es2, 4 rs1024
  pair: mostly(fc.constantFrom(['ES256', 0], ['ES384', 2], ['RS256', 3], ['PS256', 3]) as fc.Arbitrary<[string, number]>,
    fc.tuple(fc.constantFrom('ES256', 'RS256', 'PS256', 'ES384', 'none', 'HS256', 'EdDSA', 'RS384'), fc.integer({ min: 0, max: 4 }))),
  kid: mostly(fc.constantFrom('same', 'none') as fc.Arbitrary<unknown>, fc.constantFrom('es', 'es2', 'rs', 'es384', 'rs1024', 'nope'), fc.constant(7)),
  typ: mostly(fc.constantFrom(undefined, 'JWT', 'JOSE') as fc.Arbitrary<unknown>, fc.constantFrom('jwt', 'at+jwt', 5)),
  extraHeader: mostly(fc.constant({}) as fc.Arbitrary<Record<string, unknown>>, fc.constantFrom({ crit: ['b64'], b64: false }, { b64: false }, { crit: ['exp'] }, { jku: 'https://evil' }, { x5c: ['AAAA'] })),
  sub: mostly(fc.constant('spiffe://example.org/ns/prod/sa/api') as fc.Arbitrary<unknown>, fc.constantFrom('spiffe://example.org', 'spiffe://other.test/x', 'https://example.org/x', 5, undefined)),
  aud: mostly(fc.constantFrom('portcullis', ['x', 'other']) as fc.Arbitrary<unknown>, fc.constantFrom(['x'], 'nope', undefined, 5, ['portcullis', 5])),
  exp: mostly(fc.integer({ min: 1, max: 4 }).map((h) => epoch(h * HOUR / 2)) as fc.Arbitrary<unknown>, badTime, fc.constant(undefined)),
  nbf: mostly(fc.constantFrom(undefined, epoch(-HOUR)) as fc.Arbitrary<unknown>, badTime),
  iat: mostly(fc.constantFrom(undefined, epoch(-HOUR)) as fc.Arbitrary<unknown>, badTime),
  extraClaims: fc.dictionary(fc.constantFrom('iss', 'jti', 'x', 'sub '), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
  sigForm: mostly(fc.constant('jose'), fc.constant('der')),
  mutation: mostly(fc.constant('none'), fc.constantFrom('flip', 'truncate', 'append', 'append1', 'empty', 'badUtf8Header', 'badUtf8Payload', 'bomHeader', 'trailingBits', 'swapSig')),
  at: mostly(fc.constant(2), fc.integer({ min: 0, max: 12 })),
  bundle: mostly(fc.constant(0), fc.integer({ min: 1, max: 5 })),
})

type TokenSpec = typeof tokenArb extends fc.Arbitrary<infer T> ? T : never

function buildToken (t: TokenSpec): string {
  const [alg, signer] = t.pair
  const key = keys[signer] as Key
  const header: Record<string, unknown> = { alg, ...t.extraHeader }
  if (t.kid === 'same') header.kid = key.name
  else if (t.kid !== 'none') header.kid = t.kid
  if (t.typ !== undefined) header.typ = t.typ
  const claims: Record<string, unknown> = { ...t.extraClaims }
  for (const [k, v] of Object.entries({ sub: t.sub, aud: t.aud, exp: t.exp, nbf: t.nbf, iat: t.iat })) if (v !== undefined) claims[k] = v
  let h = b64(JSON.stringify(header))
  let p = b64(JSON.stringify(claims))
  if (t.mutation === 'badUtf8Header') h = b64(Buffer.concat([Buffer.from(JSON.stringify(header).slice(0, -1)), Buffer.from(',"x":"\xff\xfe"}', 'latin1')]))
  if (t.mutation === 'badUtf8Payload') p = b64(Buffer.concat([Buffer.from(JSON.stringify(claims).slice(0, -1) + (Object.keys(claims).length > 0 ? ',' : '')), Buffer.from('"x":"\xc3"}', 'latin1')]))
  if (t.mutation === 'bomHeader') h = b64(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(header))]))
  let s = b64(signature(key, alg, `${h}.${p}`, t.sigForm as 'jose' | 'der'))
  if (t.mutation === 'flip') s = s.slice(0, 5) + (s[5] === 'A' ? 'B' : 'A') + s.slice(6)
  if (t.mutation === 'truncate') s = s.slice(0, -4)
  if (t.mutation === 'append') s = s + 'AAAA'
  if (t.mutation === 'append1') s = s + 'A'
  if (t.mutation === 'empty') s = ''
  if (t.mutation === 'swapSig') s = b64(signature(keys[(signer + 1) % keys.length] as Key, alg, `${h}.${p}`, 'jose'))
  // Non-canonical trailing bits: atob and Buffer both ignore them; the paths must too.
  if (t.mutation === 'trailingBits' && s.length % 4 !== 0) s = s.slice(0, -1) + (s.endsWith('A') ? 'B' : s.slice(-1) === 'B' ? 'C' : 'A')
  return `${h}.${p}.${s}`
}

type Outcome = { ok: true, identity: unknown, expiresAt: number } | { ok: false, code: string }

async function outcome (p: Promise<{ identity: unknown, expiresAt: Date }>): Promise<Outcome> {
  try {
    const r = await p
    return { ok: true, identity: r.identity, expiresAt: r.expiresAt.getTime() }
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code ?? `not an IdentityError: ${String(err)}` }
  }
}

test('JWT-SVID: node:crypto path and jose reference agree on hostile tokens', async () => {
  const before = { ...jwsPathStats }
  let accepted = 0
  await fc.assert(fc.asyncProperty(tokenArb, async (t) => {
    const token = buildToken(t)
    const bundle = bundles[t.bundle] as TrustBundle
    const now = new Date(T0.getTime() + (t.at - 2) * HOUR / 4)
    const fast = await outcome(verifyJwtSvid(token, () => bundle, OPTS, now))
    const reference = await outcome(verifyJwtSvidReference(token, () => bundle, OPTS, now))
    assert.deepEqual(fast, reference, `token ${token}`)
    if (fast.ok) accepted++
  }), { numRuns: 1500, seed: Number(process.env.FC_SEED ?? 20261130) })
  // The property must exercise the fast path and see acceptances, or it proves nothing.
  assert.ok(jwsPathStats.fast - before.fast > 300, `fast path decided ${jwsPathStats.fast - before.fast} tokens`)
  assert.ok(accepted > 20, `${accepted} tokens accepted`)
})

test('JWT-SVID: valid tokens of every fast algorithm are accepted identically', async () => {
  const bundle = bundles[0] as TrustBundle
  for (const [alg, signer] of [['ES256', 0], ['ES384', 2], ['RS256', 3], ['PS256', 3]] as const) {
    const h = b64(JSON.stringify({ alg, kid: (keys[signer] as Key).name, typ: 'JWT' }))
    const p = b64(JSON.stringify({ sub: 'spiffe://example.org/w', aud: 'portcullis', exp: epoch(HOUR), iat: epoch(), iss: 'spire' }))
    const token = `${h}.${p}.${b64(signature(keys[signer] as Key, alg, `${h}.${p}`, 'jose'))}`
    const before = jwsPathStats.fast
    const fast = await outcome(verifyJwtSvid(token, () => bundle, OPTS, T0))
    assert.equal(jwsPathStats.fast, before + 1, `${alg} took the fast path`)
    assert.equal(fast.ok, true, alg)
    assert.deepEqual(fast, await outcome(verifyJwtSvidReference(token, () => bundle, OPTS, T0)))
  }
})

/**
 * The claim checks the fast path makes itself (jwt-svid.ts validateClaims, in place of jose's
 * validateClaimsSet) at their edges: each payload is written as raw JSON (so it can hold what
 * JSON.stringify cannot write: 1e400, duplicate members, a `__proto__` member), signed by the one
 * ES256 key, and judged by both paths at several instants and leeways, all on the fast path.
 */
test('JWT-SVID claims at their edges: the fast path and jose agree (times, leeway, aud, types, encodings)', async () => {
  const bundle = bundles[0] as TrustBundle
  const key = keys[0] as Key
  const sub = '"sub":"spiffe://example.org/ns/prod/sa/api"'
  const t = epoch()
  const payloads: string[] = [
    // exp around now − leeway (expired when exp <= now − leeway), fractional and extreme values.
    ...[-31, -30, -29.5, -29, 0, 0.5, 3600].map((d) => `{${sub},"aud":"portcullis","exp":${t + d}}`),
    `{${sub},"aud":"portcullis","exp":1e400}`, `{${sub},"aud":"portcullis","exp":-1e400}`, `{${sub},"aud":"portcullis","exp":-0}`,
    `{${sub},"aud":"portcullis","exp":"${t + 60}"}`, `{${sub},"aud":"portcullis","exp":null}`, `{${sub},"aud":"portcullis","exp":true}`,
    // nbf around now + leeway (not yet valid when nbf > now + leeway).
    ...[29, 30, 30.5, 31, 1e400].map((d) => `{${sub},"aud":"portcullis","exp":${t + 3600},"nbf":${d === 1e400 ? '1e400' : t + d}}`),
    `{${sub},"aud":"portcullis","exp":${t + 3600},"nbf":null}`, `{${sub},"aud":"portcullis","exp":${t + 3600},"nbf":"0"}`,
    // iat is only type-checked (no maxTokenAge), before nbf and exp.
    `{${sub},"aud":"portcullis","exp":${t + 3600},"iat":${t + 86400}}`, `{${sub},"aud":"portcullis","exp":${t - 3600},"iat":"x"}`,
    `{${sub},"aud":"portcullis","exp":"x","nbf":"y","iat":null}`, `{${sub},"aud":"portcullis","exp":${t - 3600},"nbf":${t + 3600}}`,
    // aud: string, arrays, wrong types, case; its presence is checked before exp's.
    ...['"PORTCULLIS"', '"other"', '[]', '["x","other"]', '[5,"portcullis"]', '[null]', 'null', '{}', '5', '[["portcullis"]]'].map((a) => `{${sub},"aud":${a},"exp":${t + 3600}}`),
    `{${sub}}`, `{${sub},"exp":${t + 3600}}`, `{${sub},"aud":"portcullis"}`, `{${sub},"aud":"nope"}`,
    // Duplicate members (the last one counts for both parsers), __proto__ members, nested objects.
    `{${sub},"aud":"portcullis","exp":${t - 3600},"exp":${t + 3600}}`, `{${sub},"aud":"portcullis","exp":${t + 3600},"exp":${t - 3600}}`,
    `{${sub},"aud":"nope","aud":"portcullis","exp":${t + 3600}}`, `{${sub},"__proto__":{"exp":${t + 3600},"aud":"portcullis"}}`,
    `{${sub},"aud":"portcullis","exp":${t + 3600},"__proto__":null,"x":{"y":[1,{"z":2}]}}`,
    `{${sub},"aud":"portcullis","exp":${t + 3600},"iss":5}`, `{${sub},"aud":"portcullis","exp":${t + 3600},"iss":"spire","iat":${t}}`,
  ]
  const segments = payloads.map((p) => b64(p))
  // Octets that are not UTF-8 (jose's strict decode refuses them; the inspection's lenient one does not), and a BOM.
  segments.push(b64(Buffer.concat([Buffer.from(`{${sub},"aud":"portcullis","exp":${t + 3600},"x":"`), Buffer.from([0xc3]), Buffer.from('"}')])))
  // (A leading BOM: jose's decoder drops it, the inspection's JSON.parse refuses it before any key is chosen.)
  const bom = b64(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{${sub},"aud":"portcullis","exp":${t + 3600}}`)]))
  segments.push(bom)
  // Non-canonical base64url: the last character's unused bits set (both decoders ignore them; the signature covers the text).
  const valid = b64(`{${sub},"aud":"portcullis","exp":${t + 3600}}`)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  if (valid.length % 4 !== 0) segments.push(valid.slice(0, -1) + (alphabet[alphabet.indexOf(valid.slice(-1)) + 1] as string))

  const instants = [T0, new Date(T0.getTime() + 999), new Date(T0.getTime() - 1)]
  const leeways = [0, 30]
  let fastDecided = 0
  const codes = new Set<string>()
  for (const p of segments) {
    const h = b64(JSON.stringify({ alg: 'ES256', kid: 'es', typ: 'JWT' }))
    const token = `${h}.${p}.${b64(signature(key, 'ES256', `${h}.${p}`, 'jose'))}`
    for (const now of instants) {
      for (const leewaySeconds of leeways) {
        const opts = { ...OPTS, leewaySeconds }
        const before = jwsPathStats.fast
        const fast = await outcome(verifyJwtSvid(token, () => bundle, opts, now))
        fastDecided += jwsPathStats.fast - before
        const reference = await outcome(verifyJwtSvidReference(token, () => bundle, opts, now))
        assert.deepEqual(fast, reference, `payload ${Buffer.from(p, 'base64url').toString('latin1')} at ${now.toISOString()}, leeway ${leewaySeconds}`)
        codes.add(fast.ok ? 'accepted' : fast.code)
      }
    }
  }
  // Every token but the BOM one reached the claim checks on the fast path (none was deferred to jose), and every verdict occurred.
  assert.equal(fastDecided, (segments.length - 1) * instants.length * leeways.length)
  for (const c of ['accepted', 'PORTCULLIS_IDENTITY_EXPIRED', 'PORTCULLIS_IDENTITY_NOT_YET_VALID', 'PORTCULLIS_IDENTITY_AUDIENCE', 'PORTCULLIS_IDENTITY_CLAIM_MISSING', 'PORTCULLIS_IDENTITY_MALFORMED']) {
    assert.ok(codes.has(c), `${c} among ${[...codes].join(', ')}`)
  }
})

test('JWT-SVID options jose refuses (a negative or non-finite leeway, an invalid date) are refused alike', async () => {
  const bundle = bundles[0] as TrustBundle
  const key = keys[0] as Key
  const h = b64(JSON.stringify({ alg: 'ES256', kid: 'es' }))
  const p = b64(JSON.stringify({ sub: 'spiffe://example.org/w', aud: 'portcullis', exp: epoch(HOUR) }))
  const token = `${h}.${p}.${b64(signature(key, 'ES256', `${h}.${p}`, 'jose'))}`
  for (const [leewaySeconds, now] of [[-1, T0], [Number.NaN, T0], [Number.POSITIVE_INFINITY, T0], [0, new Date(Number.NaN)]] as const) {
    const opts = { ...OPTS, leewaySeconds }
    const fast = await outcome(verifyJwtSvid(token, () => bundle, opts, now))
    assert.deepEqual(fast, { ok: false, code: 'PORTCULLIS_IDENTITY_MALFORMED' }, `leeway ${leewaySeconds}, now ${now.getTime()}`)
    assert.deepEqual(fast, await outcome(verifyJwtSvidReference(token, () => bundle, opts, now)))
  }
})
