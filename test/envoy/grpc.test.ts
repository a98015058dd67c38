/**
 * envoy.service.auth.v3.Authorization/Check over gRPC: a real @grpc/grpc-js client, loaded
 * from our proto files, against the real server started through the runtime, answering with
 * a bundle compiled by the real opa (test/fixtures/bundles/envoy).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as http2 from 'node:http2'
import { connect as netConnect, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { protoPath as healthProtoPath } from 'grpc-health-check'
import * as protoLoader from '@grpc/proto-loader'
import { checkRequest, envoyBundles, fromStruct, OK, PERMISSION_DENIED, startEnvoy, type CheckResponse, type EnvoyEnv } from './support.js'
import { verifiedCaller } from '../helpers/identity.js'
import { DAY, HOUR, makeCa, makeLeaf, pemOf, urlEncodePem, type Issued } from '../identity/support/pki.js'

const FRONTEND = 'spiffe://example.org/ns/shop/sa/frontend'

const code = (r: CheckResponse): number => r.status?.code ?? OK
const metadata = (r: CheckResponse): Record<string, unknown> => fromStruct(r.dynamicMetadata)
const echoed = (r: CheckResponse): Record<string, unknown> => metadata(r).input as Record<string, unknown>
const headerPairs = (hs: Array<{ header: { key: string, value: string } }> | undefined): Array<[string, string]> => (hs ?? []).map((h) => [h.header.key, h.header.value])

async function metricValue (env: EnvoyEnv, name: string, labels: Record<string, string>): Promise<number> {
  const m = await env.runtime.metrics.registry.getSingleMetricAsString(name)
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of m.split('\n')) {
    if (line.startsWith('#')) continue
    if (want.every((w) => line.includes(w))) return Number(line.split(' ').pop())
  }
  return 0
}

describe('Envoy ext_authz over gRPC', () => {
  let bundles: ReturnType<typeof envoyBundles>
  let env: EnvoyEnv

  before(async () => {
    bundles = envoyBundles()
    env = await startEnvoy(bundles.dir)
  })
  after(async () => {
    await env.close()
    bundles.cleanup()
  })

  test('allow: OK with the policy\'s headers, header values as arrays, removals, query parameters and dynamic metadata with the decision_id', async () => {
    const r = await env.check(checkRequest('/public/x'))
    assert.equal(code(r), OK)
    assert.ok(r.okResponse !== undefined)
    assert.deepEqual(headerPairs(r.okResponse.headers).sort(), [['x-multi', 'a'], ['x-multi', 'b'], ['x-user', 'alice']])
    assert.deepEqual(r.okResponse.headersToRemove, ['x-secret'])
    assert.deepEqual(headerPairs(r.okResponse.responseHeadersToAdd), [['x-resp', '1']])
    assert.deepEqual(r.okResponse.queryParametersToSet, [{ key: 'q', value: '1' }, { key: 'q', value: '2' }])
    assert.deepEqual(r.okResponse.queryParametersToRemove, ['drop'])
    const md = metadata(r)
    assert.equal(md.team, 'shop')
    assert.match(String(md.decision_id), /^[0-9a-f-]{36}$/)
  })

  test('a boolean decision: OK or PERMISSION_DENIED without an http_response, decision_id still in metadata', async () => {
    const yes = await env.check(checkRequest('/bool'))
    assert.equal(code(yes), OK)
    assert.equal(yes.okResponse, undefined)
    assert.equal(typeof metadata(yes).decision_id, 'string')
    const no = await env.check(checkRequest('/boolno'))
    assert.equal(code(no), PERMISSION_DENIED)
    assert.equal(no.deniedResponse, undefined)
  })

  test('deny: PERMISSION_DENIED with the policy\'s status, body and headers (an array of objects, values as arrays)', async () => {
    const r = await env.check(checkRequest('/deny'))
    assert.equal(code(r), PERMISSION_DENIED)
    assert.equal(r.deniedResponse?.status?.code, 401)
    assert.equal(r.deniedResponse?.body, 'go away')
    assert.deepEqual(headerPairs(r.deniedResponse?.headers).sort(), [['x-multi', 'c'], ['x-multi', 'd'], ['x-reason', 'policy']])
    assert.equal(metadata(r).why, 'deny')
    const plain = await env.check(checkRequest('/plaindeny'))
    assert.equal(plain.deniedResponse?.status?.code, 403, 'http_status defaults to 403')
  })

  test('an invalid http_status, a malformed result and an undefined decision are gRPC errors, never an allow', async () => {
    for (const [path, want] of [['/teapot', 'PORTCULLIS_ENVOY_RESULT_INVALID'], ['/malformed', 'PORTCULLIS_ENVOY_RESULT_INVALID'], ['/nothing-matches', 'PORTCULLIS_POLICY_UNDEFINED']] as const) {
      await assert.rejects(env.check(checkRequest(path)), (err: grpc.ServiceError) => {
        assert.notEqual(err.code, grpc.status.OK)
        assert.equal(err.metadata.get('portcullis-error-code')[0], want, path)
        return true
      })
    }
  })

  test('a policy header with CR/LF/NUL or a bad name never reaches Envoy: an allow is an error (RESULT_INVALID), a deny drops the header', async () => {
    for (const seg of ['alice%0D%0Ax-admin:%20true', 'a%0Ab', 'a%00b']) {
      await assert.rejects(env.check(checkRequest(`/hdrallow/${seg}`)), (err: grpc.ServiceError) => {
        assert.notEqual(err.code, grpc.status.OK)
        assert.equal(err.metadata.get('portcullis-error-code')[0], 'PORTCULLIS_ENVOY_RESULT_INVALID', seg)
        return true
      })
      const d = await env.check(checkRequest(`/hdrdeny/${seg}`))
      assert.deepEqual([code(d), d.deniedResponse?.status?.code], [PERMISSION_DENIED, 409], seg)
      assert.deepEqual(headerPairs(d.deniedResponse?.headers).map(([k]) => k).sort(), ['__proto__', 'constructor'], seg)
    }
    const fine = await env.check(checkRequest('/hdrallow/abc'))
    assert.deepEqual(headerPairs(fine.okResponse?.headers), [['x-allowed-path', 'hdrallow/abc']])
  })

  test('a policy\'s connection or framing header never reaches Envoy: an allow is an error (RESULT_INVALID), a deny drops it', async () => {
    for (const name of ['transfer-encoding', 'content-length', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection']) {
      await assert.rejects(env.check(checkRequest(`/namedallow/${name}`)), (err: grpc.ServiceError) => err.metadata.get('portcullis-error-code')[0] === 'PORTCULLIS_ENVOY_RESULT_INVALID', name)
      const d = await env.check(checkRequest(`/nameddeny/${name}`))
      assert.deepEqual([code(d), headerPairs(d.deniedResponse?.headers)], [PERMISSION_DENIED, [['x-kept', '1']]], name)
    }
  })

  test('encode_raw_headers (header_map only): the body is parsed and a cut one is truncated', async () => {
    const hm = (k: string, v: string): unknown => ({ key: k, rawValue: Buffer.from(v) })
    const r = await env.check(checkRequest('/body', { method: 'POST', headers: undefined, headerMap: { headers: [hm(':path', '/body'), hm('content-type', 'application/x-www-form-urlencoded')] }, rawBody: Buffer.from('role=admin') }))
    assert.deepEqual([code(r), metadata(r).body, metadata(r).truncated], [OK, { role: ['admin'] }, false])
    const cut = await env.check(checkRequest('/body', { method: 'POST', headers: undefined, headerMap: { headers: [hm('content-type', 'application/x-www-form-urlencoded'), hm('x-envoy-auth-partial-body', 'true')] }, rawBody: Buffer.from('role=admin') }))
    assert.deepEqual([metadata(cut).body, metadata(cut).truncated], [null, true])
  })

  test('the input document is the one opa-envoy-plugin builds', async () => {
    const r = await env.check(checkRequest('/echo/a%2Fb/?x=1&x=2&y', { headers: { 'content-type': 'application/json', host: 'shop.example' }, body: '{"user":"alice","n":[1,2]}', size: 26 }, {
      source: { address: { socketAddress: { address: '10.0.0.7', portValue: 51234 } }, principal: 'spiffe://example.org/ns/shop/sa/frontend' },
      contextExtensions: { virtual_host: 'shop' },
      metadataContext: { filterMetadata: { 'envoy.filters.http.jwt_authn': { fields: { sub: { stringValue: 'alice' }, n: { numberValue: 3 } } } } },
    }))
    assert.equal(code(r), OK)
    const input = echoed(r)
    assert.deepEqual(input.parsed_path, ['echo', 'a', 'b', ''])
    assert.deepEqual(input.parsed_query, { x: ['1', '2'], y: [''] })
    assert.deepEqual(input.parsed_body, { user: 'alice', n: [1, 2] })
    assert.equal(input.truncated_body, false)
    assert.deepEqual(input.version, { ext_authz: 'v3', encoding: 'protojson' })
    assert.equal(input.source_principal, 'spiffe://example.org/ns/shop/sa/frontend')
    const attributes = input.attributes as Record<string, Record<string, unknown>>
    assert.deepEqual(attributes.source?.address, { socketAddress: { address: '10.0.0.7', portValue: 51234 } })
    assert.deepEqual(attributes.contextExtensions, { virtual_host: 'shop' })
    assert.deepEqual(attributes.metadataContext, { filterMetadata: { 'envoy.filters.http.jwt_authn': { sub: 'alice', n: 3 } } })
    const request = attributes.request as { time: unknown, http: Record<string, unknown> }
    assert.deepEqual(request.time, { seconds: 1767225600, nanos: 5 })
    assert.equal(request.http.size, 26)
    assert.equal(request.http.method, 'GET')
    assert.ok(!('identity' in input), 'no identity plugins configured')
  })

  test('parsed JSON, form and multipart bodies; truncated bodies; raw_body', async () => {
    const form = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=alice&role=a&role=b+c' })))
    assert.deepEqual(form.body, { user: ['alice'], role: ['a', 'b c'] })
    const boundary = 'XyZ'
    const multipart = [
      `--${boundary}`, 'Content-Disposition: form-data; name="user"', '', 'alice',
      `--${boundary}`, 'Content-Disposition: form-data; name="meta"', 'Content-Type: application/json', '', '{"k":[1]}',
      `--${boundary}`, 'Content-Disposition: form-data; name="user"', '', 'bob',
      `--${boundary}--`, '',
    ].join('\r\n')
    const mp = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart })))
    assert.deepEqual(mp.body, { user: ['alice', 'bob'], meta: [{ k: [1] }] })
    const raw = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json' }, rawBody: Buffer.from('{"user":"raw"}') })))
    assert.deepEqual(raw.body, { user: 'raw' })
    const partial = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'true' }, body: '{"user":' })))
    assert.deepEqual([partial.body, partial.truncated], [null, true])
    const short = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100' }, body: '{"user":"x"}' })))
    assert.deepEqual([short.body, short.truncated], [null, true])
  })

  test('a JSON body whose number is beyond a double (1e400, which JSON.parse makes Infinity and JSON null, below every number in Rego) or that nests past the limit is a 400 denial, never an allow or an error', async () => {
    const deep = '['.repeat(5000) + '1' + ']'.repeat(5000)
    for (const body of ['{"amount":1e400}', '{"amount":-1e400}', '[1e309]', deep]) {
      const r = await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json' }, body }))
      assert.equal(code(r), PERMISSION_DENIED, body.slice(0, 20))
      assert.equal(r.deniedResponse?.status?.code, 400)
      assert.equal(r.deniedResponse?.body, 'PORTCULLIS_ENVOY_REQUEST_INVALID')
    }
  })

  test('a lone surrogate escape in a JSON body reaches the policy as U+FFFD (as Go decodes it), not as an evaluation error', async () => {
    const r = echo(await env.check(checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":"a\\ud800b","\\udc00":1}' })))
    assert.deepEqual(r.body, { x: 'a\ufffdb', '\ufffd': 1 })
  })

  test('unparseable requests: PERMISSION_DENIED with a 400 denied response (bad JSON body, malformed query, bad escape, bad content-length)', async () => {
    const cases = [
      checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":' }),
      checkRequest('/public?a=%zz'),
      checkRequest('/public?a=1;b=2'),
      checkRequest('/pub%zzlic'),
      checkRequest('/body', { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 'many' }, body: '{}' }),
    ]
    for (const req of cases) {
      const r = await env.check(req)
      assert.equal(code(r), PERMISSION_DENIED)
      assert.equal(r.deniedResponse?.status?.code, 400)
      assert.equal(r.deniedResponse?.body, 'PORTCULLIS_ENVOY_REQUEST_INVALID')
    }
  })

  test('parsed_path: `//admin/people` is ["admin", "people"] (the policy\'s admin rule applies, no bypass)', async () => {
    const r = await env.check(checkRequest('//admin/people'))
    assert.equal(code(r), PERMISSION_DENIED)
    assert.equal(r.deniedResponse?.body, 'admin only')
    const people = await env.check(checkRequest('/people'))
    assert.equal(code(people), OK)
    const root = echoed(await env.check(checkRequest('/echo/')))
    assert.deepEqual(root.parsed_path, ['echo', ''])
  })

  test('a non-UTF-8 body: raw_body is base64 in the input; a non-UTF-8 JSON body is still parsed with replacement characters', async () => {
    const bytes = Buffer.from([0x7b, 0x22, 0x75, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]) // {"u":"\xff\xfe"}
    const r = await env.check(checkRequest('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, rawBody: bytes }))
    assert.equal(code(r), OK)
    const input = echoed(r)
    const http = ((input.attributes as Record<string, Record<string, Record<string, unknown>>>).request as Record<string, Record<string, unknown>>).http as Record<string, unknown>
    assert.equal(http.rawBody, bytes.toString('base64'))
    assert.deepEqual(input.parsed_body, { u: '\ufffd\ufffd' })
    // invalid UTF-8 in the `body` string field itself (Envoy sends UTF-8; a hostile client may
    // not): decoded with replacement characters, answered, never a crash. Hand-encoded:
    // CheckRequest{attributes{request{http{path: "/echo", body: 0xff 0xfe}}}}
    const httpBytes = Buffer.concat([Buffer.from([0x22, 5]), Buffer.from('/echo'), Buffer.from([0x5a, 2, 0xff, 0xfe])])
    const request = Buffer.concat([Buffer.from([0x12, httpBytes.length]), httpBytes])
    const attributes = Buffer.concat([Buffer.from([0x22, request.length]), request])
    const wire = Buffer.concat([Buffer.from([0x0a, attributes.length]), attributes])
    const viaWire = await new Promise<CheckResponse>((resolve, reject) => {
      env.client.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Check', (x: Buffer) => x, (b: Buffer) => protoResponse(b), wire, (err, res) => { if (err !== null) reject(err); else resolve(res as CheckResponse) })
    })
    assert.equal(code(viaWire), OK)
    const wireHttp = ((echoed(viaWire).attributes as Record<string, Record<string, unknown>>).request as Record<string, Record<string, unknown>>).http as Record<string, unknown>
    assert.equal(wireHttp.body, '\ufffd\ufffd')
    const bin = await env.check(checkRequest('/echo', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, rawBody: Buffer.from([0, 0xff, 0x80]) }))
    assert.equal(code(bin), OK)
    assert.equal(echoed(bin).parsed_body, null)
  })

  test('missing attributes: an empty CheckRequest is decided (parsed_path [""]), never a crash and never an allow', async () => {
    // parsed_path [""] matches no rule of the test policy: undefined -> an error status
    await assert.rejects(env.check({}), (err: grpc.ServiceError) => err.metadata.get('portcullis-error-code')[0] === 'PORTCULLIS_POLICY_UNDEFINED')
    const noHttp = await env.check({ attributes: { source: { principal: 'x' } } }).catch((e: grpc.ServiceError) => e)
    assert.ok(noHttp instanceof Error)
  })

  test('huge headers and unknown fields are handled; a message over max_recv_msg_size is refused', async () => {
    const big = 'v'.repeat(1024 * 1024)
    const r = await env.check(checkRequest('/echo', { headers: { 'x-big': big } }))
    assert.equal(code(r), OK)
    // unknown fields: encode with a field number our CheckRequest does not have
    const extra = Buffer.concat([Buffer.from([0xfa, 0x3e, 0x03]), Buffer.from('abc')]) // field 999, wire type 2
    const client = env.client
    const unknownAnswer = await new Promise<CheckResponse>((resolve, reject) => {
      client.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Check', (x: Buffer) => x, (b: Buffer) => protoResponse(b), extra, (err, res) => { if (err !== null) reject(err); else resolve(res as CheckResponse) })
    }).catch((e: unknown) => e as grpc.ServiceError)
    // parsed_path [""] again: the decision is undefined -> an error status, never OK
    assert.ok('code' in (unknownAnswer as object) && (unknownAnswer as grpc.ServiceError).code !== grpc.status.OK)
    await assert.rejects(env.check(checkRequest('/echo', { headers: { 'x-huge': 'v'.repeat(5 * 1024 * 1024) } })), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED)
    // the server is still serving
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
  })

  test('an exceeded deadline and a cancelled call end without an answer and without harm', async () => {
    await assert.rejects(env.check(checkRequest('/bool'), { deadline: Date.now() - 1 }), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED)
    await assert.rejects(env.check(checkRequest('/echo', { headers: { 'x-big': 'v'.repeat(2 * 1024 * 1024) } }), { deadline: Date.now() + 2 }), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED)
    await assert.rejects(env.check(checkRequest('/echo', { headers: { 'x-big': 'v'.repeat(2 * 1024 * 1024) } }), { cancelAfterMs: 0 }), (err: grpc.ServiceError) => err.code === grpc.status.CANCELLED)
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
  })

  test('metrics per transport and the audit hook for every Check', async () => {
    const seen: string[] = []
    env.runtime.decisions.setAuditHook((rec) => { seen.push(`${rec.request.transport}:${rec.error?.code ?? 'ok'}`) })
    try {
      const before = await metricValue(env, 'portcullis_decisions_total', { transport: 'envoy-grpc', outcome: 'deny' })
      await env.check(checkRequest('/deny'))
      await env.check(checkRequest('/bool'))
      await assert.rejects(env.check(checkRequest('/malformed')))
      await assert.rejects(env.check(checkRequest('/nothing')))
      assert.equal(code(await env.check(checkRequest('/bad%zz'))), PERMISSION_DENIED)
      assert.equal(await metricValue(env, 'portcullis_decisions_total', { transport: 'envoy-grpc', outcome: 'deny' }), before + 1)
      assert.ok(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-grpc', outcome: 'error' }) >= 2)
      assert.ok(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-grpc', outcome: 'refused' }) >= 1)
      // every Check is audited: decisions (the malformed result is a decision the adapter
      // rejects afterwards), the undefined one, and the request refused before a decision
      assert.deepEqual(seen, ['envoy-grpc:ok', 'envoy-grpc:ok', 'envoy-grpc:ok', 'envoy-grpc:ok', 'envoy-grpc:PORTCULLIS_ENVOY_REQUEST_INVALID'])
    } finally {
      env.runtime.decisions.setAuditHook(undefined)
    }
  })

  test('grpc.health.v1 answers SERVING', async () => {
    const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String })
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }
    const client = new pkg.grpc.health.v1.Health(env.grpcAddress, grpc.credentials.createInsecure())
    try {
      const res = await new Promise<{ status: string }>((resolve, reject) => {
        (client as unknown as { Check: (r: unknown, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service: 'envoy.service.auth.v3.Authorization' }, (e, r) => { if (e !== null) reject(e); else resolve(r) })
      })
      assert.equal(res.status, 'SERVING')
    } finally {
      client.close()
    }
  })
})

describe('Envoy ext_authz gRPC health follows readiness', () => {
  const healthOf = async (address: string): Promise<string> => {
    const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String })
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }
    const client = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure())
    try {
      const res = await new Promise<{ status: string }>((resolve, reject) => {
        (client as unknown as { Check: (r: unknown, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({ service: 'envoy.service.auth.v3.Authorization' }, (e, r) => { if (e !== null) reject(e); else resolve(r) })
      })
      return res.status
    } finally {
      client.close()
    }
  }

  test('NOT_SERVING while no bundle answers the decision path, SERVING once one activates, NOT_SERVING after it is removed', async () => {
    const bundles = envoyBundles()
    const empty = mkdtempSync(join(tmpdir(), 'portcullis-envoy-empty-'))
    const env = await startEnvoy(empty)
    try {
      assert.equal(await healthOf(env.grpcAddress), 'NOT_SERVING')
      // and a Check is an error Envoy's failure_mode_allow: false turns into a deny, never an allow
      const before = await env.check(checkRequest('/public/x')).then(() => 'answered', (e: grpc.ServiceError) => e.code)
      assert.notEqual(before, 'answered')
      assert.equal(await env.runtime.manager.load(join(bundles.dir, 'envoy.tar.gz'), 'envoy'), true)
      assert.equal(await healthOf(env.grpcAddress), 'SERVING')
      assert.equal(await env.runtime.manager.remove('envoy'), true)
      assert.equal(await healthOf(env.grpcAddress), 'NOT_SERVING')
    } finally {
      await env.close()
      rmSync(empty, { recursive: true, force: true })
      bundles.cleanup()
    }
  })

  test('NOT_SERVING when the active bundles do not compile the configured decision path', async () => {
    const bundles = envoyBundles()
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { path: 'envoy/authz/not_an_entrypoint' } })
    try {
      assert.equal(await healthOf(env.grpcAddress), 'NOT_SERVING')
    } finally {
      await env.close()
      bundles.cleanup()
    }
  })
})

function echo (r: CheckResponse): Record<string, unknown> {
  assert.equal(r.status?.code ?? OK, OK)
  return fromStruct(r.dynamicMetadata)
}

let responseType: protoLoader.PackageDefinition | undefined
function protoResponse (b: Buffer): unknown {
  responseType ??= protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', { includeDirs: [join(import.meta.dirname, '..', '..', 'proto')] })
  return (responseType['envoy.service.auth.v3.Authorization'] as unknown as { Check: { responseDeserialize: (b: Buffer) => unknown } }).Check.responseDeserialize(b)
}


describe('Envoy ext_authz identity', () => {
  let bundles: ReturnType<typeof envoyBundles>
  let root: Issued
  let leafPem: string
  let dir: string

  before(async () => {
    bundles = envoyBundles()
    dir = join(bundles.dir, '..')
    const now = Date.now()
    root = await makeCa({ name: 'example.org root', uri: 'spiffe://example.org', notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) })
    const leaf = await makeLeaf({ issuer: root, uris: [FRONTEND], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    leafPem = pemOf(leaf)
    writeFileSync(join(dir, 'bundle.pem'), root.pem)
  })
  after(() => bundles.cleanup())

  const identity = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    trust_domains: { 'example.org': { x509_authorities: [join(dir, 'bundle.pem')] } },
    x509_svid: { sources: ['ext_authz', 'xfcc'], xfcc: { trusted_proxies: ['127.0.0.1'] }, ...extra },
    on_missing: 'allow',
    watch: { enabled: false },
  })

  test('a real X.509-SVID in source.certificate from a trusted (loopback) caller is the verified identity', async (t) => {
    const env = await startEnvoy(bundles.dir, { identity: identity() })
    t.after(env.close)
    const r = await env.check(checkRequest('/whoami', {}, { source: { certificate: urlEncodePem(leafPem), principal: FRONTEND } }))
    assert.equal(code(r), OK)
    assert.deepEqual(metadata(r).spiffe_id, FRONTEND)
    assert.deepEqual(metadata(r).source, 'ext_authz')
  })

  test('source.principal alone is never an identity', async (t) => {
    const env = await startEnvoy(bundles.dir, { identity: identity() })
    t.after(env.close)
    const r = await env.check(checkRequest('/whoami', {}, { source: { principal: FRONTEND } }))
    assert.equal(code(r), PERMISSION_DENIED)
    assert.equal(r.deniedResponse?.body, 'no identity')
  })

  test('source.certificate from a caller outside trusted_callers is ignored and counted', async (t) => {
    const env = await startEnvoy(bundles.dir, { identity: identity({ ext_authz: { trusted_callers: ['10.9.9.9'] } }) })
    t.after(env.close)
    const r = await env.check(checkRequest('/whoami', {}, { source: { certificate: urlEncodePem(leafPem) } }))
    assert.equal(code(r), PERMISSION_DENIED)
    assert.equal(r.deniedResponse?.body, 'no identity')
    assert.equal(await metricValue(env, 'portcullis_envoy_peer_certificates_ignored_total', { transport: 'envoy-grpc' }), 1)
  })

  test('a certificate of another root is rejected: a denial (401), not an error Envoy could fail open on', async (t) => {
    const now = Date.now()
    const evil = await makeCa({ name: 'evil', uri: 'spiffe://example.org', notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) })
    const forged = await makeLeaf({ issuer: evil, uris: [FRONTEND], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    const env = await startEnvoy(bundles.dir, { identity: identity() })
    t.after(env.close)
    const r = await env.check(checkRequest('/whoami', {}, { source: { certificate: urlEncodePem(pemOf(forged)) } }))
    assert.equal(code(r), PERMISSION_DENIED)
    assert.equal(r.deniedResponse?.status?.code, 401)
    assert.equal(r.deniedResponse?.body, 'PORTCULLIS_IDENTITY_UNTRUSTED')
  })

  test('a JWT-SVID in the request\'s authorization header is the verified identity', async (t) => {
    const caller = await verifiedCaller()
    const env = await startEnvoy(bundles.dir, { identity: caller.config() })
    t.after(env.close)
    const r = await env.check(checkRequest('/whoami', { headers: { ...caller.headers } }))
    assert.equal(code(r), OK)
    assert.deepEqual([metadata(r).spiffe_id, metadata(r).source], [FRONTEND, 'header'])
    // a forged token is a rejection: a 401 denial
    const forged = await env.check(checkRequest('/whoami', { headers: { authorization: `${caller.headers.authorization as string}x` } }))
    assert.deepEqual([code(forged), forged.deniedResponse?.status?.code], [PERMISSION_DENIED, 401])
  })

  test('a token whose issuer\'s keys cannot be fetched (PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE) is a denial, never an error failure_mode_allow could let through', async (t) => {
    // a loopback port nobody listens on: the JWKS fetch fails as in an outage
    const closed = createNetServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as { port: number }).port
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const iss = 'https://issuer.example'
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    // forged: the signature is garbage, so it can never verify
    const token = `${b64({ alg: 'RS256', kid: 'k', typ: 'JWT' })}.${b64({ iss, sub: 'system:serviceaccount:prod:admin', aud: 'portcullis', exp: Math.floor(Date.now() / 1000) + 600 })}.${Buffer.from('forged').toString('base64url')}`
    const env = await startEnvoy(bundles.dir, {
      identity: {
        on_missing: 'deny', on_rejected: 'deny', watch: { enabled: false },
        oidc: { issuers: [{ issuer: iss, audiences: ['portcullis'], jwks_uri: `https://127.0.0.1:${port}/jwks`, timeout_ms: 2000 }] },
      },
    })
    t.after(env.close)
    const headers = { authorization: `Bearer ${token}` }
    const r = await env.check(checkRequest('/public', { headers }))
    assert.deepEqual([code(r), r.deniedResponse?.status?.code, r.deniedResponse?.body], [PERMISSION_DENIED, 503, 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE'])
    assert.equal(r.okResponse, undefined)
    const h = await fetch(`${env.httpUrl}/public`, { headers })
    assert.deepEqual([h.status, await h.text()], [403, 'PORTCULLIS_IDENTITY_KEYS_UNAVAILABLE'])
    assert.equal(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-grpc', outcome: 'refused' }), 1)
    assert.equal(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-grpc', outcome: 'error' }), 0)
  })

  test('XFCC in the CheckRequest headers, from a trusted proxy, is the verified identity', async (t) => {
    const env = await startEnvoy(bundles.dir, { identity: identity() })
    t.after(env.close)
    const xfcc = `By=spiffe://example.org/envoy;Cert="${urlEncodePem(leafPem)}";URI=${FRONTEND}`
    const r = await env.check(checkRequest('/whoami', { headers: { 'x-forwarded-client-cert': xfcc } }))
    assert.equal(code(r), OK)
    assert.deepEqual(metadata(r).spiffe_id, FRONTEND)
    assert.deepEqual(metadata(r).source, 'xfcc')
  })

  test('XFCC element injection through an unquoted URI SAN is refused in both element modes, over gRPC and HTTP', async (t) => {
    // The attacker's own client certificate, from a CA Envoy's downstream TLS accepts (not one
    // Portcullis trusts), whose URI SAN closes Envoy's element and appends the victim's public SVID.
    const now = Date.now()
    const partner = await makeCa({ name: 'partner CA', uri: 'spiffe://partner.example', notBefore: new Date(now - DAY), notAfter: new Date(now + DAY) })
    const uri = `https://partner.example/a,Cert="${urlEncodePem(leafPem)}"`
    const attacker = await makeLeaf({ issuer: partner, uris: [uri], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    // Envoy SANITIZE_SET, set_current_client_cert_details {cert: true, uri: true}, as Envoy builds it
    const xfcc = ['By=spiffe://example.org/envoy', `Hash=${createHash('sha256').update(attacker.der).digest('hex')}`, `Cert="${urlEncodePem(pemOf(attacker))}"`, `URI=${uri}`].join(';')
    // a normal two-hop APPEND_FORWARD header still works
    const gateway = await makeLeaf({ issuer: root, uris: ['spiffe://example.org/ns/edge/sa/gateway'], notBefore: new Date(now - HOUR), notAfter: new Date(now + DAY) })
    const hop = (pem: string, u: string): string => `By=spiffe://example.org/envoy;Cert="${urlEncodePem(pem)}";URI=${u}`
    for (const element of ['last', 'first'] as const) {
      const env = await startEnvoy(bundles.dir, { identity: { ...identity({ xfcc: { trusted_proxies: ['127.0.0.1'], element } }), on_rejected: 'deny' } })
      t.after(env.close)
      const r = await env.check(checkRequest('/whoami', { headers: { 'x-forwarded-client-cert': xfcc } }))
      assert.deepEqual([code(r), r.deniedResponse?.status?.code, r.deniedResponse?.body], [PERMISSION_DENIED, 401, 'PORTCULLIS_IDENTITY_MALFORMED'], element)
      const h = await fetch(`${env.httpUrl}/whoami`, { headers: { 'x-forwarded-client-cert': xfcc } })
      assert.deepEqual([h.status, await h.text()], [401, 'PORTCULLIS_IDENTITY_MALFORMED'], element)
      const edge = hop(pemOf(gateway), 'spiffe://example.org/ns/edge/sa/gateway')
      const normal = element === 'last' ? `${edge},${hop(leafPem, FRONTEND)}` : `${hop(leafPem, FRONTEND)},${edge}`
      const ok = await env.check(checkRequest('/whoami', { headers: { 'x-forwarded-client-cert': normal } }))
      assert.deepEqual([code(ok), metadata(ok).spiffe_id, metadata(ok).source], [OK, FRONTEND, 'xfcc'], element)
      assert.equal((await fetch(`${env.httpUrl}/whoami`, { headers: { 'x-forwarded-client-cert': normal } })).status, 200, element)
    }
  })
})

describe('Envoy ext_authz modes', () => {
  let bundles: ReturnType<typeof envoyBundles>
  before(() => { bundles = envoyBundles() })
  after(() => bundles.cleanup())

  test('dry run: a deny is answered OK, the real decision is counted as a deny', async (t) => {
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { dry_run: true } })
    t.after(env.close)
    const r = await env.check(checkRequest('/deny'))
    assert.equal(code(r), OK)
    assert.deepEqual(r.okResponse?.headers ?? [], [])
    assert.equal(metadata(r).why, 'deny', 'the real dynamic metadata is kept')
    assert.equal(await metricValue(env, 'portcullis_decisions_total', { transport: 'envoy-grpc', outcome: 'deny' }), 1)
    assert.equal(await metricValue(env, 'portcullis_envoy_checks_total', { transport: 'envoy-grpc', outcome: 'dry_run' }), 1)
    // an object deny: an ok_response without header mutations; a boolean deny: no ok_response
    assert.ok(r.okResponse !== undefined && r.okResponse !== null)
    assert.deepEqual([r.okResponse.headersToRemove ?? [], r.okResponse.responseHeadersToAdd ?? [], r.okResponse.queryParametersToSet ?? [], r.okResponse.queryParametersToRemove ?? []], [[], [], [], []])
    assert.equal(r.deniedResponse ?? undefined, undefined)
    const b = await env.check(checkRequest('/boolno'))
    assert.equal(code(b), OK)
    assert.equal(b.okResponse ?? undefined, undefined)
    // errors are still errors in a dry run
    await assert.rejects(env.check(checkRequest('/malformed')))
  })

  test('error_response: an evaluation error is answered with CheckResponse.error_response, not OK', async (t) => {
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { error_response: true } })
    t.after(env.close)
    const r = await env.check(checkRequest('/malformed'))
    assert.notEqual(code(r), OK)
    assert.equal(r.errorResponse?.body, 'PORTCULLIS_ENVOY_RESULT_INVALID')
    assert.equal(r.okResponse, undefined)
  })

  test('the cache key leaves out the configured input paths (and only those)', async (t) => {
    const env = await startEnvoy(bundles.dir, {
      cache: { enabled: true },
      envoy_ext_authz: { cache: { enabled: true, ignore_input_paths: ['attributes.request.http.id', 'attributes.request.time', 'attributes.source.address'] } },
    })
    t.after(env.close)
    const first = await env.check(checkRequest('/cached', { id: 'one' }))
    assert.equal(metadata(first).id, 'one')
    // another id, time and source port: the same key, so the first answer (the documented risk
    // for a policy that reads a left-out path)
    const second = await env.check(checkRequest('/cached', { id: 'two' }, { source: { address: { socketAddress: { address: '10.0.0.7', portValue: 40000 } } } }))
    assert.equal(metadata(second).id, 'one')
    assert.notEqual(metadata(second).decision_id, metadata(first).decision_id, 'a cache hit has its own decision_id')
    // a field that is not left out is in the key
    const third = await env.check(checkRequest('/cached', { id: 'three', method: 'POST' }))
    assert.equal(metadata(third).id, 'three')
    assert.equal(await metricValue(env, 'portcullis_decisions_total', { transport: 'envoy-grpc', cached: 'true' }), 1)
  })

  test('cache off for Checks by default, even with the decision cache on', async (t) => {
    const env = await startEnvoy(bundles.dir, { cache: { enabled: true } })
    t.after(env.close)
    await env.check(checkRequest('/cached', { id: 'a' }))
    const again = await env.check(checkRequest('/cached', { id: 'a' }))
    assert.equal(metadata(again).id, 'a')
    assert.equal(await metricValue(env, 'portcullis_decisions_total', { transport: 'envoy-grpc', cached: 'true' }), 0)
  })

  test('skip_request_body_parse: no parsed_body and no truncated_body', async (t) => {
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { skip_request_body_parse: true } })
    t.after(env.close)
    const input = echoed(await env.check(checkRequest('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'not json' })))
    assert.ok(!('parsed_body' in input))
    assert.ok(!('truncated_body' in input))
  })

  test('a unix socket address', async (t) => {
    const sock = join(bundles.dir, '..', 'authz.sock')
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { addr: `unix:${sock}` } } })
    t.after(env.close)
    assert.equal(env.grpcAddress, `unix:${sock}`)
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
  })
})

/**
 * A real stale socket file: a child process listens on `path` and is killed with SIGKILL, so it
 * never unlinks the file (as a crashed process leaves it); nothing accepts connections there.
 */
async function staleSocket (path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('ready'))", path], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`socket child exited early (${String(code)})`)))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGKILL')
  await exited
  assert.ok(lstatSync(path).isSocket(), 'the killed process left its socket file')
}

describe('Envoy ext_authz gRPC on a unix socket left by a crashed process', () => {
  let bundles: ReturnType<typeof envoyBundles>
  before(() => { bundles = envoyBundles() })
  after(() => bundles.cleanup())

  // Regression: a leftover socket file made the restart fail with EADDRINUSE.
  test('a stale socket file (nobody listening) is removed and the listener binds', async (t) => {
    const sock = join(bundles.dir, '..', 'stale.sock')
    await staleSocket(sock)
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { addr: `unix:${sock}` } } })
    t.after(env.close)
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
  })

  test('a socket something else listens on is not taken: the start fails with PORTCULLIS_LISTEN_FAILED', async (t) => {
    const sock = join(bundles.dir, '..', 'live.sock')
    const other = createNetServer((c) => {
      c.on('error', () => {}) // the probe hangs up at once
      c.end('other service')
    })
    await new Promise<void>((resolve) => other.listen(sock, resolve))
    t.after(async () => { await new Promise<void>((resolve) => other.close(() => resolve())) })
    await assert.rejects(startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { addr: `unix:${sock}` } } }), (err: { code: string, details: { reason: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_LISTEN_FAILED')
      assert.equal(err.details.reason, 'in_use')
      return true
    })
    // The other process still owns its socket and still answers.
    const reply = await new Promise<string>((resolve, reject) => {
      const c = netConnect(sock)
      let got = ''
      c.on('data', (d) => { got += String(d) })
      c.on('end', () => resolve(got))
      c.on('error', reject)
    })
    assert.equal(reply, 'other service')
  })

  test('a path that is not a socket is never removed', async () => {
    const file = join(bundles.dir, '..', 'not-a-socket')
    writeFileSync(file, 'precious')
    await assert.rejects(startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { addr: `unix:${file}` } } }), (err: { code: string, details: { reason: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_LISTEN_FAILED')
      assert.equal(err.details.reason, 'not_a_socket')
      return true
    })
    assert.equal(readFileSync(file, 'utf8'), 'precious')
  })
})

describe('Envoy ext_authz gRPC reflection', () => {
  let bundles: ReturnType<typeof envoyBundles>
  before(() => { bundles = envoyBundles() })
  after(() => bundles.cleanup())

  const listServices = async (address: string): Promise<string[] | grpc.ServiceError> => {
    const protoFile = join(import.meta.dirname, '..', '..', 'node_modules', '@grpc', 'reflection', 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto')
    const def = protoLoader.loadSync(protoFile, { keepCase: true })
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }
    const client = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure())
    try {
      return await new Promise((resolve) => {
        const call = (client as unknown as { ServerReflectionInfo: () => grpc.ClientDuplexStream<unknown, { list_services_response?: { service: Array<{ name: string }> } }> }).ServerReflectionInfo()
        call.on('data', (m) => { resolve((m.list_services_response?.service ?? []).map((s: { name: string }) => s.name)); call.end() })
        call.on('error', (e: grpc.ServiceError) => resolve(e))
        call.write({ list_services: '' })
      })
    } finally {
      client.close()
    }
  }

  test('enable_reflection lists the Authorization service; off by default (UNIMPLEMENTED)', async (t) => {
    const on = await startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { enable_reflection: true } } })
    t.after(on.close)
    const names = await listServices(on.grpcAddress)
    assert.ok(Array.isArray(names) && names.includes('envoy.service.auth.v3.Authorization'), JSON.stringify(names))
    const off = await startEnvoy(bundles.dir)
    t.after(off.close)
    const refused = await listServices(off.grpcAddress)
    assert.ok(!Array.isArray(refused) && refused.code === grpc.status.UNIMPLEMENTED)
  })
})

describe('Envoy ext_authz gRPC transport limits', () => {
  let bundles: ReturnType<typeof envoyBundles>
  before(() => { bundles = envoyBundles() })
  after(() => bundles.cleanup())

  /** A raw call on `session`: the bytes as written (a gRPC frame need not be whole); the status it ends with. */
  const rawCall = async (session: http2.ClientHttp2Session, bytes: Buffer, end: boolean): Promise<http2.IncomingHttpHeaders> => {
    const stream = session.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', te: 'trailers' })
    stream.resume()
    const status = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      // a trailers-only answer carries grpc-status in its headers
      stream.on('response', (h) => { if (h['grpc-status'] !== undefined) resolve(h) })
      stream.on('trailers', resolve)
      stream.on('error', reject)
    })
    if (end) stream.end(bytes)
    else stream.write(bytes)
    return await status
  }
  const frame = (declared: number, body: Buffer): Buffer => {
    const head = Buffer.alloc(5)
    head.writeUInt32BE(declared, 1)
    return Buffer.concat([head, body])
  }

  test('a call whose message does not arrive whole within receive_timeout_ms is ended (DEADLINE_EXCEEDED) and counted; max_concurrent_streams is advertised', async (t) => {
    const env = await startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { receive_timeout_ms: 300, max_concurrent_streams: 7 } } })
    const session = http2.connect(`http://${env.grpcAddress}`)
    // the session goes before the server, which would otherwise wait for it to close
    t.after(async () => { session.destroy(); await env.close() })
    await new Promise((resolve) => session.once('remoteSettings', resolve))
    assert.equal(session.remoteSettings.maxConcurrentStreams, 7)
    // 10 bytes of a message declared 100 bytes long: it never completes (it held its buffer for good)
    const h = await rawCall(session, frame(100, Buffer.alloc(10)), false)
    assert.equal(h['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED))
    assert.equal(h['portcullis-error-code'], 'PORTCULLIS_ENVOY_REQUEST_TIMEOUT')
    assert.equal(await metricValue(env, 'portcullis_connection_errors_total', { listener: 'envoy-grpc', kind: 'grpc_request', code: 'PORTCULLIS_ENVOY_REQUEST_TIMEOUT' }), 1)
    // whole Checks are answered as before, and are not ended by the timer
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
    await new Promise((resolve) => setTimeout(resolve, 400))
    assert.equal(await metricValue(env, 'portcullis_connection_errors_total', { listener: 'envoy-grpc', kind: 'grpc_request', code: 'PORTCULLIS_ENVOY_REQUEST_TIMEOUT' }), 1)
  })

  test('a CheckRequest protobuf cannot decode is an error (never OK), counted', async (t) => {
    const env = await startEnvoy(bundles.dir)
    const session = http2.connect(`http://${env.grpcAddress}`)
    // the session goes before the server, which would otherwise wait for it to close
    t.after(async () => { session.destroy(); await env.close() })
    // field 1 (attributes), length-delimited, with a length varint that never ends
    const h = await rawCall(session, frame(3, Buffer.from([0x0a, 0xff, 0xff])), true)
    assert.notEqual(h['grpc-status'], String(grpc.status.OK))
    assert.equal(await metricValue(env, 'portcullis_connection_errors_total', { listener: 'envoy-grpc', kind: 'grpc_request', code: 'PORTCULLIS_ENVOY_REQUEST_INVALID' }), 1)
  })

  test('a unix socket is never open to every local user, whatever the umask', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-sock-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const sock = join(dir, 'authz.sock')
    const old = process.umask(0)
    let env: EnvoyEnv
    try {
      env = await startEnvoy(bundles.dir, { envoy_ext_authz: { grpc: { addr: `unix:${sock}` } } })
    } finally {
      process.umask(old)
    }
    t.after(env.close)
    assert.equal(lstatSync(sock).mode & 0o007, 0)
    assert.equal(lstatSync(sock).mode & 0o660, 0o660)
    assert.equal(code(await env.check(checkRequest('/bool'))), OK)
  })
})
