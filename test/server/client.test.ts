/**
 * Client compatibility: the official TypeScript OPA client (@styra/opa, unchanged) drives a
 * real Portcullis over a loopback socket, with a real JWT-SVID in its Authorization header.
 */
import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OPAClient } from '@styra/opa'
import { startRuntime } from '../helpers/runtime.js'
import { jwtSvidIssuer, type JwtSvidIssuer } from '../helpers/jwt-svid.js'

const order = { service: 'orders', method: 'GET', path: '/orders/1' }

describe('@styra/opa against Portcullis over a socket', () => {
  let dir: string
  let issuer: JwtSvidIssuer
  let url: string
  let close: () => Promise<void>
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-client-'))
    issuer = await jwtSvidIssuer(dir)
    ;({ url, close } = await startRuntime({
      server: { default_decision: 'authz/allow' },
      identity: {
        on_missing: 'allow',
        trust_domains: { 'example.org': { jwt_authorities: [issuer.jwksFile] } },
        jwt_svid: { audiences: ['portcullis'] },
        watch: { enabled: false },
      },
    }))
  })
  after(async () => {
    await close()
    rmSync(dir, { recursive: true, force: true })
  })

  const client = async (spiffeId?: string): Promise<OPAClient> => {
    if (spiffeId === undefined) return new OPAClient(url)
    return new OPAClient(url, { headers: { authorization: `Bearer ${await issuer.sign(spiffeId)}` } })
  }

  test('evaluate: the verified caller identity decides', async () => {
    assert.equal(await (await client('spiffe://example.org/ns/shop/sa/frontend')).evaluate('authz/allow', order), true)
    assert.equal(await (await client('spiffe://example.org/ns/shop/sa/billing')).evaluate('authz/allow', { ...order, method: 'POST', path: '/orders' }), false)
    // anonymous (allowed to reach the policy by this deployment) is denied by the policy
    assert.equal(await (await client()).evaluate('authz/allow', order), false)
  })

  test('evaluate: object results and paths below an entrypoint', async () => {
    const c = await client('spiffe://example.org/ns/shop/sa/frontend')
    assert.deepEqual(await c.evaluate('authz/decision', { ...order, service: 'nope' }), { allow: false, reasons: ['service "nope" is not registered'] })
    assert.equal(await c.evaluate('authz/decision/allow', order), true)
  })

  test('evaluate: an undefined decision comes back to the client as undefined', async () => {
    const c = await client('spiffe://example.org/ns/shop/sa/frontend')
    assert.equal(await c.evaluate('authz/decision/nothing', order), undefined)
  })

  test('evaluateDefault: POST / with the configured default decision', async () => {
    assert.equal(await (await client('spiffe://example.org/ns/shop/sa/frontend')).evaluateDefault(order), true)
  })

  test('evaluateBatch: all succeed, and a mixed batch (207) keeps per-input errors', async () => {
    const c = await client('spiffe://example.org/ns/shop/sa/frontend')
    const all = await c.evaluateBatch('authz/allow', { a: order, b: { ...order, method: 'DELETE' } })
    assert.deepEqual(all, { a: true, b: false })
    // a non-object input cannot carry input.identity: that one fails, the other succeeds
    const mixed = await c.evaluateBatch('authz/allow', { good: order, bad: 'not-an-object' as unknown as Record<string, unknown> })
    assert.equal(mixed.good, true)
    assert.equal((mixed.bad as { httpStatusCode: string }).httpStatusCode, '500')
    assert.equal((mixed.bad as { code: string }).code, 'invalid_parameter')
  })

  test('a forged or expired token is rejected with OPA\'s unauthorized error', async () => {
    const expired = await issuer.sign('spiffe://example.org/ns/shop/sa/frontend', { expSeconds: -3600 })
    const c = new OPAClient(url, { headers: { authorization: `Bearer ${expired}` } })
    await assert.rejects(c.evaluate('authz/allow', order), (err: { httpMeta?: { response: { status: number } }, message: string }) => {
      assert.equal(err.httpMeta?.response.status, 401)
      return true
    })
  })
})
