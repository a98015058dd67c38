/**
 * jws.ts: the node:crypto signature check answers true / false only where jose's answer is
 * known, and DEFER (jose decides) everywhere else. Keys are generated in setup.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import type { JWK } from 'jose'
import { DEFER, verifyJwsSignature } from '../../src/identity/jws.js'

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url')
let ec: { priv: KeyObject, jwk: JWK }
let ec2: { priv: KeyObject, jwk: JWK }
let rsa1024: { priv: KeyObject, jwk: JWK }

function pair (type: 'ec' | 'rsa', kid: string, bits = 2048): { priv: KeyObject, jwk: JWK } {
  const k = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: bits })
  return { priv: k.privateKey, jwk: { ...(k.publicKey.export({ format: 'jwk' }) as JWK), kid } }
}

function es256 (priv: KeyObject, header: Record<string, unknown>): string {
  const input = `${b64(JSON.stringify(header))}.${b64('{"sub":"x"}')}`
  return `${input}.${b64(sign('sha256', Buffer.from(input), { key: priv, dsaEncoding: 'ieee-p1363' }))}`
}

before(() => {
  ec = pair('ec', 'a')
  ec2 = pair('ec', 'b')
  rsa1024 = pair('rsa', 'r', 1024)
})

test('one selected key: true for its signature, false for another key\'s or a DER-encoded one', () => {
  assert.equal(verifyJwsSignature(es256(ec.priv, { alg: 'ES256', kid: 'a' }), { alg: 'ES256', kid: 'a' }, [ec.jwk, ec2.jwk]), true)
  assert.equal(verifyJwsSignature(es256(ec2.priv, { alg: 'ES256', kid: 'a' }), { alg: 'ES256', kid: 'a' }, [ec.jwk, ec2.jwk]), false)
  const input = `${b64('{"alg":"ES256"}')}.${b64('{}')}`
  const der = `${input}.${b64(sign('sha256', Buffer.from(input), ec.priv))}`
  assert.equal(verifyJwsSignature(der, { alg: 'ES256' }, [ec.jwk]), false, 'JOSE ES256 signatures are r||s, not DER')
})

test('DEFER where jose decides: several candidates, no candidate, a small RSA key, an undecodable signature, members that change selection', () => {
  const t = es256(ec.priv, { alg: 'ES256' })
  assert.equal(verifyJwsSignature(t, { alg: 'ES256' }, [ec.jwk, ec2.jwk]), DEFER)
  assert.equal(verifyJwsSignature(t, { alg: 'ES256', kid: 'zz' }, [ec.jwk]), DEFER)
  assert.equal(verifyJwsSignature(t, { alg: 'RS256' }, [rsa1024.jwk]), DEFER)
  assert.equal(verifyJwsSignature(`${t}A`.replace(/\.([^.]*)$/, (_, s: string) => `.${s.slice(0, 4 * Math.floor(s.length / 4)) + 'A'}`), { alg: 'ES256' }, [ec.jwk]), DEFER)
  assert.equal(verifyJwsSignature(t, { alg: 'ES256' }, [{ ...ec.jwk, key_ops: ['verify'] }]), DEFER)
  assert.equal(verifyJwsSignature(t, { alg: 'HS256' }, [ec.jwk]), DEFER)
  assert.equal(verifyJwsSignature(t, { alg: 'ES256' }, [{ ...ec.jwk, alg: 'ES384' }]), DEFER)
})
