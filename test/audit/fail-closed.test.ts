/**
 * Fail closed when a decision cannot be recorded (security review, issue 11):
 * - a decision that fails AND whose failure cannot be recorded is PORTCULLIS_AUDIT_UNAVAILABLE,
 *   a refusal: Envoy denies it over real gRPC and in HTTP service mode (an internal error would
 *   be a gRPC error / 5xx that Envoy's failure_mode_allow lets through, unrecorded);
 * Real runtimes on loopback, bundles compiled by the real opa.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { AuditTrail, type AuditSink } from '../../src/audit/trail.js'
import { checkRequest, envoyBundles, OK, PERMISSION_DENIED, startEnvoy } from '../envoy/support.js'

function httpGet (url: string, path: string): Promise<number> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'GET', path, headers: { host: 'shop.example' } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('a failed decision whose record also fails is refused, not an error', () => {
  test('no bundle answers (a failed decision) and the sink rejects: Envoy gRPC PERMISSION_DENIED, HTTP mode 403', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'portcullis-afix-empty-'))
    const env = await startEnvoy(empty)
    try {
      // without an audit hook the failed decision is an error (Envoy's failure_mode decides)
      const plain = await env.check(checkRequest('/public/x')).then((r) => r.status?.code ?? OK, (e: grpc.ServiceError) => `error:${e.code}`)
      assert.match(String(plain), /^error:/)
      const broken: AuditSink = { append: () => Promise.reject(new Error('disk full')), close: async () => {} }
      new AuditTrail({ sinks: [{ name: 'broken', sink: broken }] }).install(env.runtime.decisions)
      const r = await env.check(checkRequest('/public/x'))
      assert.equal(r.status?.code, PERMISSION_DENIED)
      assert.equal(r.okResponse, undefined)
      assert.equal(r.deniedResponse?.status?.code, 503)
      assert.equal(await httpGet(env.httpUrl, '/public/x'), 403)
      // a working hook: the failed decision is recorded and stays the error it was
      env.runtime.decisions.setAuditHook(() => undefined)
      const again = await env.check(checkRequest('/public/x')).then((x) => x.status?.code ?? OK, (e: grpc.ServiceError) => `error:${e.code}`)
      assert.equal(again, plain)
    } finally {
      await env.close()
      rmSync(empty, { recursive: true, force: true })
    }
  })

  test('Envoy with a working bundle and a failing sink still denies (regression guard for the success path)', async () => {
    const bundles = envoyBundles()
    const env = await startEnvoy(bundles.dir)
    try {
      const broken: AuditSink = { append: () => Promise.reject(new Error('disk full')), close: async () => {} }
      new AuditTrail({ sinks: [{ name: 'broken', sink: broken }] }).install(env.runtime.decisions)
      assert.equal((await env.check(checkRequest('/public/x'))).status?.code, PERMISSION_DENIED)
    } finally {
      await env.close()
      bundles.cleanup()
    }
  })
})
