import { keys, token } from './keys.js'
import { table, type Group } from './types.js'

const b64u = (s: string): string => Buffer.from(s).toString('base64url')
const NOW = 1_700_000_000 // seconds
const T = NOW * 1e9

export async function jwtGroup (): Promise<Group> {
  const k = await keys()
  const claims = { sub: 'alice', iss: 'https://issuer.example', aud: 'portcullis', exp: NOW + 3600, nbf: NOW - 60, big: 12345678901234567890n.toString() }
  const rs256 = token('RS256', { typ: 'JWT' }, claims, k.rsa.privateKey)
  const rs384 = token('RS384', {}, claims, k.rsa.privateKey)
  const rs512 = token('RS512', {}, claims, k.rsa.privateKey)
  const ps256 = token('PS256', {}, claims, k.rsa.privateKey)
  const ps384 = token('PS384', {}, claims, k.rsa.privateKey)
  const ps512 = token('PS512', {}, claims, k.rsa.privateKey)
  const es256 = token('ES256', {}, claims, k.p256.privateKey)
  const es384 = token('ES384', {}, claims, k.p384.privateKey)
  const es512 = token('ES512', {}, claims, k.p521.privateKey)
  const eddsa = token('EdDSA', {}, claims, k.ed.privateKey)
  const hs256 = token('HS256', {}, claims, 'secret')
  const hs384 = token('HS384', {}, claims, 'secret')
  const hs512 = token('HS512', {}, claims, 'secret')
  const kid = token('RS256', { kid: 'k2' }, claims, k.rsa2.privateKey)
  const nested = token('HS256', { cty: 'JWT' }, hs256, 'secret')
  const expired = token('HS256', {}, { ...claims, exp: NOW - 1 }, 'secret')
  const early = token('HS256', {}, { ...claims, nbf: NOW + 60 }, 'secret')
  const audArr = token('HS256', {}, { ...claims, aud: ['x', 'portcullis'] }, 'secret')
  const critBad = token('HS256', { crit: ['foo'], foo: 1 }, claims, 'secret')
  const noAlg = token('HS256', '{"typ":"JWT"}', claims, 'secret')
  const bigNum = token('HS256', {}, '{"n":123456789012345678901234567890,"f":1.5e300,"d":{"a":[1,2]}}', 'secret')
  const jwks = JSON.stringify({ keys: [{ ...k.rsa.jwk, kid: 'k1', alg: 'RS256' }, { ...k.rsa2.jwk, kid: 'k2' }] })
  const jwkRsa = JSON.stringify(k.rsa.jwk)
  const jwkAlgMismatch = JSON.stringify({ keys: [{ ...k.rsa.jwk, alg: 'RS512' }] })
  const jwkUnknownAlg = JSON.stringify({ keys: [{ ...k.rsa.jwk, alg: 'XX1' }] })
  const malformed = ['', 'abc', 'a.b', 'a.b.c.d', `${b64u('{"alg":"HS256"}')}.!!!.sig`, `${b64u('[1]')}.${b64u('{}')}.`, `${b64u('{"alg":"x","enc":"A128GCM"}')}.${b64u('{}')}.`,
    `${b64u('{"alg":"HS256"}')}.${b64u('"str"')}.`, `${b64u('{"alg":"HS256"}')}.${b64u('{}')}.a`, `${b64u('{"alg":"HS256"}')}=.${b64u('{}')}.`, `${b64u('{"alg":1}')}.${b64u('{}')}.`]

  const verifyCases = (good: string, keyPem: string): unknown[][] => [
    [good, keyPem], [good, k.rsaCertPem], [good, jwkRsa], [good, jwks], [kid, jwks], [good, k.rsa2.spkiPem], [good, k.p256.spkiPem], [good, keyPem + '\n'],
    [good, 'not a key'], [good, '{"keys":[]}'], [good, jwkAlgMismatch], [good, jwkUnknownAlg], [good.slice(0, -4) + 'AAAA', keyPem], [rs384, keyPem], ...malformed.map((m) => [m, keyPem]),
    [good, '-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n'], [good, 5],
  ]
  const ecCases = (good: string, pem: string): unknown[][] => [[good, pem], [good, JSON.stringify(k.p256.jwk)], [good, k.rsa.spkiPem], [good, k.ecCertPem], [good.slice(0, -6) + 'AAAAAA', pem], [es256, k.p384.spkiPem], ...malformed.slice(0, 4).map((m) => [m, pem])]

  const hsJwk = JSON.stringify({ kty: 'oct', k: b64u('secret') })
  return {
    name: 'jwt',
    tables: [
      table('io.jwt.decode', [[rs256], [es512], [eddsa], [hs256], [nested], [bigNum], [critBad], [noAlg], ...malformed.map((m) => [m]), [`"${hs256}"`], [1]]),
      table('io.jwt.verify_rs256', verifyCases(rs256, k.rsa.spkiPem)),
      table('io.jwt.verify_rs384', [[rs384, k.rsa.spkiPem], [rs256, k.rsa.spkiPem], [rs384, k.rsaCertPem]]),
      table('io.jwt.verify_rs512', [[rs512, k.rsa.spkiPem], [rs512, jwks], [rs512, k.rsa2.spkiPem]]),
      table('io.jwt.verify_ps256', [[ps256, k.rsa.spkiPem], [ps256, k.rsaCertPem], [rs256, k.rsa.spkiPem], [ps256, k.rsa2.spkiPem]]),
      table('io.jwt.verify_ps384', [[ps384, k.rsa.spkiPem], [ps256, k.rsa.spkiPem]]),
      table('io.jwt.verify_ps512', [[ps512, JSON.stringify(k.rsa.jwk)], [ps512, k.p256.spkiPem]]),
      table('io.jwt.verify_es256', ecCases(es256, k.p256.spkiPem)),
      table('io.jwt.verify_es384', [[es384, k.p384.spkiPem], [es384, k.p256.spkiPem], [es256, k.p256.spkiPem]]),
      table('io.jwt.verify_es512', [[es512, k.p521.spkiPem], [es512, JSON.stringify(k.p521.jwk)], [es384, k.p384.spkiPem]]),
      table('io.jwt.verify_eddsa', [[eddsa, k.ed.spkiPem], [eddsa, JSON.stringify(k.ed.jwk)], [eddsa, k.p256.spkiPem], [eddsa.slice(0, -4) + 'AAAA', k.ed.spkiPem]]),
      table('io.jwt.verify_hs256', [[hs256, 'secret'], [hs256, 'wrong'], [hs384, 'secret'], [hs256, ''], ...malformed.slice(0, 5).map((m) => [m, 'secret']), [hs256, 1]]),
      table('io.jwt.verify_hs384', [[hs384, 'secret'], [hs256, 'secret']]),
      table('io.jwt.verify_hs512', [[hs512, 'secret'], [hs512, 'Secret']]),
      table('io.jwt.decode_verify', [
        [hs256, { secret: 'secret', time: T }], [hs256, { secret: 'secret', time: T, aud: 'portcullis', iss: 'https://issuer.example' }], [hs256, { secret: 'secret', time: T, iss: 'other' }],
        [hs256, { secret: 'secret', time: T, aud: 'other' }], [hs256, { secret: 'wrong', time: T }], [hs256, { secret: 'secret', time: (NOW + 3600) * 1e9 }], [hs256, { secret: 'secret', time: (NOW + 3599) * 1e9 }],
        [hs256, { secret: 'secret', time: (NOW - 60) * 1e9 }], [hs256, { secret: 'secret', time: (NOW - 61) * 1e9 }], [expired, { secret: 'secret', time: T }], [early, { secret: 'secret', time: T }],
        [audArr, { secret: 'secret', time: T, aud: 'portcullis' }], [audArr, { secret: 'secret', time: T }], [hs256, { secret: 'secret' }], [hs256, { secret: 'secret', time: T, alg: 'RS256' }],
        [rs256, { cert: k.rsa.spkiPem, time: T }], [rs256, { cert: k.rsaCertPem, time: T, alg: 'RS256' }], [kid, { cert: jwks, time: T }], [es256, { cert: k.p256.spkiPem, time: T }],
        [es384, { cert: k.p384.spkiPem, time: T }], [es512, { cert: k.p521.spkiPem, time: T }], [eddsa, { cert: k.ed.spkiPem, time: T }], [ps256, { cert: k.rsa.spkiPem, time: T }],
        [rs256, { cert: k.rsa2.spkiPem, time: T }], [rs256, { secret: 'secret', time: T }], [hs256, { cert: k.rsa.spkiPem, time: T }], [nested, { secret: 'secret', time: T }],
        [critBad, { secret: 'secret', time: T }], [noAlg, { secret: 'secret', time: T }], [bigNum, { secret: 'secret', time: T }],
        [hs256, {}], [hs256, { secret: 'secret', cert: k.rsa.spkiPem }], [hs256, { secret: 'secret', foo: 1 }], [hs256, { secret: 'secret', time: -1 }], [hs256, { secret: 'secret', time: 'now' }],
        [hs256, { cert: 'bogus' }], [hs256, { secret: 5 }], [hs256, 'x'], ...malformed.map((m) => [m, { secret: 'secret', time: T }]),
      ]),
      table('io.jwt.encode_sign_raw', [
        ['{"alg":"HS256","typ":"JWT"}', '{"sub":"x"}', hsJwk], ['{"alg":"RS256"}', '{"sub":"x"}', JSON.stringify(k.rsa.privateJwk)], ['{"alg":"EdDSA"}', '{"a":1}', JSON.stringify(k.ed.privateJwk)],
        ['{"alg":"HS512"}', '{"sub":"x"}', JSON.stringify({ keys: [{ kty: 'oct', k: b64u('k') }] })], ['{"alg":"none"}', '{}', hsJwk], ['{"typ":"JWT"}', '{}', hsJwk], ['{"alg":"HS256"}', 'not json', hsJwk],
        ['{"alg":"HS256","typ":"text"}', 'not json', hsJwk], ['{"alg":"RS256"}', '{}', JSON.stringify(k.rsa.jwk)], ['{"alg":"HS256"}', '{}', 'nope'],
      ]),
      { builtin: 'io.jwt.encode_sign_raw', call: 'io.jwt.verify_es256(io.jwt.encode_sign_raw($0, $1, $2), $3)', cases: [{ args: ['{"alg":"ES256"}', '{"sub":"x"}', JSON.stringify(k.p256.privateJwk), k.p256.spkiPem] }] },
      { builtin: 'io.jwt.encode_sign_raw', call: 'io.jwt.verify_ps256(io.jwt.encode_sign_raw($0, $1, $2), $3)', cases: [{ args: ['{"alg":"PS256"}', '{"sub":"x"}', JSON.stringify(k.rsa.privateJwk), k.rsa.spkiPem] }] },
      table('io.jwt.encode_sign', [
        [{ alg: 'HS256', typ: 'JWT' }, { sub: 'x', n: 1, html: '<&>' }, { kty: 'oct', k: b64u('secret') }], [{ alg: 'RS384' }, { b: [1, 2], a: null }, k.rsa.privateJwk],
        [{ alg: 'EdDSA' }, {}, k.ed.privateJwk], [{ alg: 'XX' }, {}, { kty: 'oct', k: 'AA' }],
      ]),
      { builtin: 'io.jwt.encode_sign', call: 'io.jwt.verify_es384(io.jwt.encode_sign($0, $1, $2), $3)', cases: [{ args: [{ alg: 'ES384' }, { sub: 'x' }, k.p384.privateJwk, k.p384.spkiPem] }] },
    ],
  }
}
