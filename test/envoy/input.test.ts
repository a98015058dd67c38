/**
 * input.ts against opa-envoy-plugin's own examples (envoyauth/protomap_test.go Test_protomap,
 * request_test.go TestParsedPathAndQuery, TestGetParsedBody), with the CheckRequest encoded
 * and decoded on the wire through our proto files, as the gRPC server receives it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as protoLoader from '@grpc/proto-loader'
import { checkRequestToInput, headerLookup, parsedBody, parsedPath, parseQuery, parsedQuery, type CheckRequest } from '../../src/envoy/input.js'
import { EXTERNAL_AUTH_PROTO, LOADER_OPTIONS } from '../../src/envoy/grpc.js'
import { isPortcullisError } from '../../src/errors.js'
import { runBounded } from '../helpers/bounded.js'

const def = protoLoader.loadSync(EXTERNAL_AUTH_PROTO, LOADER_OPTIONS)
const method = (def['envoy.service.auth.v3.Authorization'] as unknown as { Check: { requestSerialize: (o: unknown) => Buffer, requestDeserialize: (b: Buffer) => CheckRequest } }).Check
/** What the server decodes for `obj` sent by a client. */
const overTheWire = (obj: unknown): CheckRequest => method.requestDeserialize(method.requestSerialize(obj))

const invalidRequest = (err: unknown): boolean => isPortcullisError(err) && err.code === 'PORTCULLIS_ENVOY_REQUEST_INVALID'

test('protomap: the example of opa-envoy-plugin\'s Test_protomap (set fields only, JSON names, Struct metadata as a map)', async () => {
  const req = overTheWire({
    attributes: {
      source: { address: { socketAddress: { address: '127.0.0.1' } }, service: 'dummy', labels: { foo: 'bar' } },
      metadataContext: { filterMetadata: { dummy: { fields: { hello: { stringValue: 'world' }, count: { numberValue: 1 } } } } },
      contextExtensions: { hello: 'world' },
      request: {
        http: {
          id: '13359530607844510314',
          method: 'GET',
          headers: { ':authority': '192.168.99.100:31380', ':method': 'GET', ':path': '/api/v1/products', accept: '*/*' },
          path: '/api/v1/products',
          host: '192.168.99.100:31380',
          protocol: 'HTTP/1.1',
          body: '{"firstname": "foo", "lastname": "bar"}',
        },
      },
    },
  })
  const input = await checkRequestToInput(req)
  assert.deepEqual(input.attributes, {
    source: { service: 'dummy', labels: { foo: 'bar' }, address: { socketAddress: { address: '127.0.0.1' } } },
    metadataContext: { filterMetadata: { dummy: { hello: 'world', count: 1 } } },
    contextExtensions: { hello: 'world' },
    request: {
      http: {
        id: '13359530607844510314',
        method: 'GET',
        path: '/api/v1/products',
        host: '192.168.99.100:31380',
        protocol: 'HTTP/1.1',
        body: '{"firstname": "foo", "lastname": "bar"}',
        headers: { ':authority': '192.168.99.100:31380', ':method': 'GET', ':path': '/api/v1/products', accept: '*/*' },
      },
    },
  })
  assert.deepEqual(input.parsed_path, ['api', 'v1', 'products'])
  assert.deepEqual(input.parsed_query, {})
  // no content-type: no body parsing (request.go), but the keys are present
  assert.deepEqual([input.parsed_body, input.truncated_body], [null, false])
  assert.deepEqual(input.version, { ext_authz: 'v3', encoding: 'protojson' })
  assert.ok(!('source_principal' in input))
})

test('protomap: time as {seconds, nanos}, int64 size as a number (-1 kept), enums as numbers, bytes as base64, zero values left out but a oneof member kept at zero', async () => {
  const input = await checkRequestToInput(overTheWire({
    attributes: {
      source: { address: { socketAddress: { protocol: 1, address: '10.0.0.1', portValue: 0 } }, principal: 'spiffe://example.org/a' },
      request: { time: { seconds: 1700000000, nanos: 0 }, http: { size: -1, rawBody: Buffer.from([1, 2, 255]), method: '', headerMap: { headers: [{ key: 'a', value: 'b' }, { key: 'c', rawValue: Buffer.from('d') }] } } },
      tlsSession: { sni: 'shop.example' },
    },
  }), { skipRequestBodyParse: true })
  const attributes = input.attributes as Record<string, Record<string, unknown>>
  // port_value is a oneof member: on the wire at 0 it is populated, as Go's protoreflect sees it
  assert.deepEqual(attributes.source, { address: { socketAddress: { protocol: 1, address: '10.0.0.1', portValue: 0 } }, principal: 'spiffe://example.org/a' })
  assert.deepEqual(attributes.request, { time: { seconds: 1700000000 }, http: { size: -1, rawBody: Buffer.from([1, 2, 255]).toString('base64'), headerMap: { headers: [{ key: 'a', value: 'b' }, { key: 'c', rawValue: Buffer.from('d').toString('base64') }] } } })
  assert.deepEqual(attributes.tlsSession, { sni: 'shop.example' })
  assert.equal(input.source_principal, 'spiffe://example.org/a')
  assert.ok(!('parsed_body' in input) && !('truncated_body' in input))
})

test('parsed_path and parsed_query: opa-envoy-plugin\'s TestParsedPathAndQuery table', () => {
  const table: Array<[string, string[], Record<string, string[]>]> = [
    ['/my/test/path', ['my', 'test', 'path'], {}],
    ['/my/test/path?a=1', ['my', 'test', 'path'], { a: ['1'] }],
    ['/my/test/path?a=1&a=2', ['my', 'test', 'path'], { a: ['1', '2'] }],
    ['/my/test/path?a=1&b=2', ['my', 'test', 'path'], { a: ['1'], b: ['2'] }],
    ['/my/test/path?a=1&a=new%0aline', ['my', 'test', 'path'], { a: ['1', 'new\nline'] }],
    ['%2Fmy%2Ftest%2Fpath?a=1&a=new%0aline', ['my', 'test', 'path'], { a: ['1', 'new\nline'] }],
    ['//x/people', ['x', 'people'], {}],
    ['//admin/dashboard', ['admin', 'dashboard'], {}],
    ['//x/people?a=1', ['x', 'people'], { a: ['1'] }],
  ]
  for (const [path, wantPath, wantQuery] of table) {
    assert.deepEqual(parsedPath(path), wantPath, path)
    assert.deepEqual(parsedQuery(path), wantQuery, path)
  }
})

test('parsed_path: the issue\'s cases', () => {
  assert.deepEqual(parsedPath('/'), [''])
  assert.deepEqual(parsedPath(''), [''])
  assert.deepEqual(parsedPath('/a/'), ['a', ''])
  assert.deepEqual(parsedPath('/a%2Fb'), ['a', 'b'])
  assert.deepEqual(parsedPath('//admin/people'), ['admin', 'people'])
  assert.deepEqual(parsedPath('/a+b/%C3%A9'), ['a+b', 'é'])
  assert.deepEqual(parsedPath('/%ff'), ['\ufffd'])
  assert.throws(() => parsedPath('/a%2'), invalidRequest)
  assert.throws(() => parsedPath('/a%zz'), invalidRequest)
})

test('parsed_query: Go url.ParseQuery rules (+ is a space, ; is an error, empty pairs skipped)', () => {
  assert.deepEqual(parseQuery('a=b+c&&d&=e'), { a: ['b c'], d: [''], '': ['e'] })
  assert.throws(() => parseQuery('a=1;b=2'), invalidRequest)
  assert.throws(() => parseQuery('a=%'), invalidRequest)
  // a byte-order mark is data (Go keeps it): %EF%BB%BFtenant is not the key tenant
  assert.deepEqual(parseQuery('%EF%BB%BFtenant=mine&tenant=victim'), { '\ufefftenant': ['mine'], tenant: ['victim'] })
  assert.deepEqual(parseQuery('t=%EF%BB%BFx'), { t: ['\ufeffx'] })
  // Go's net/url: at most 10,000 parameters
  assert.equal(Object.keys(parseQuery(Array.from({ length: 10_000 }, (_, i) => `k${i}=1`).join('&'))).length, 10_000)
  assert.throws(() => parseQuery(Array.from({ length: 10_001 }, (_, i) => `k${i}=1`).join('&')), invalidRequest)
})

test('parsed_body: a leading BOM stays (a JSON body with one does not parse, a form key keeps it); a content-length beyond int64 is a 400', async () => {
  await assert.rejects(parsedBody({ 'content-type': 'application/json' }, '\ufeff{"role":"admin"}', undefined), invalidRequest)
  assert.deepEqual(await parsedBody({ 'content-type': 'application/x-www-form-urlencoded' }, '\ufeffrole=admin', undefined), { parsed: { '\ufeffrole': ['admin'] }, truncated: false })
  await assert.rejects(parsedBody({ 'content-type': 'application/json', 'content-length': '99999999999999999999' }, '{"a":1}', undefined), invalidRequest)
})

test('parsed_body: JSON, form, multipart, truncation, unsupported types (TestGetParsedBody)', async () => {
  assert.deepEqual(await parsedBody({ 'content-type': 'application/json' }, '{"firstname": "foo", "lastname": "bar"}', undefined), { parsed: { firstname: 'foo', lastname: 'bar' }, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/json', 'content-length': '1000' }, '{"firstname": "foo"}', undefined), { parsed: null, truncated: true })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/json', 'content-length': '-1' }, '{"a":1}', undefined), { parsed: { a: 1 }, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/json' }, '', undefined), { parsed: null, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/json', 'x-envoy-auth-partial-body': 'true' }, '{"a"', undefined), { parsed: null, truncated: true })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/x-www-form-urlencoded' }, 'firstname=foo&lastname=bar&lastname=baz', undefined), { parsed: { firstname: ['foo'], lastname: ['bar', 'baz'] }, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'text/plain' }, 'hello', undefined), { parsed: null, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'application/grpc' }, '', Buffer.from([0, 0, 0, 0, 1, 8])), { parsed: null, truncated: false })
  assert.deepEqual(await parsedBody({}, '{"a":1}', undefined), { parsed: null, truncated: false })
  const mp = '--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Disposition: form-data; name=""\r\n\r\nignored\r\n--b--\r\n'
  assert.deepEqual(await parsedBody({ 'content-type': 'multipart/form-data; boundary=b' }, mp, undefined), { parsed: { file: ['hello'] }, truncated: false })
  assert.deepEqual(await parsedBody({ 'content-type': 'multipart/form-data' }, mp, undefined), { parsed: null, truncated: false }, 'no boundary: nothing parsed')
  await assert.rejects(parsedBody({ 'content-type': 'application/json' }, '{"a":', undefined), invalidRequest)
  await assert.rejects(parsedBody({ 'content-type': 'application/json', 'content-length': 'x' }, '{}', undefined), invalidRequest)
  await assert.rejects(parsedBody({ 'content-type': 'multipart/form-data; boundary=b' }, '--b\r\nContent-Disposition: form-data; name="j"\r\nContent-Type: application/json\r\n\r\n{bad\r\n--b--\r\n', undefined), invalidRequest)
})

test('map keys such as __proto__ stay ordinary keys', async () => {
  const req = JSON.parse('{"attributes":{"contextExtensions":{"__proto__":"x","a":"b"},"request":{"http":{"path":"/"}}}}') as CheckRequest
  const input = await checkRequestToInput(req)
  const ext = (input.attributes as Record<string, Record<string, unknown>>).contextExtensions as Record<string, unknown>
  assert.deepEqual(Object.keys(ext), ['__proto__', 'a'])
  assert.equal(Object.getPrototypeOf(ext), Object.prototype)
  const mp = '--b\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\nv\r\n--b--\r\n'
  const { parsed } = await parsedBody({ 'content-type': 'multipart/form-data; boundary=b' }, mp, undefined)
  assert.deepEqual(Object.entries(parsed as object), [['__proto__', ['v']]])
})

test('encode_raw_headers: Envoy sends only header_map, and parsed_body / truncated_body read it (content-type, x-envoy-auth-partial-body)', async () => {
  const raw = (k: string, v: string): unknown => ({ key: k, rawValue: Buffer.from(v) })
  const request = (headers: unknown[], body: string): CheckRequest => overTheWire({ attributes: { request: { http: { method: 'POST', path: '/form', headerMap: { headers }, rawBody: Buffer.from(body) } } } })
  const form = await checkRequestToInput(request([raw(':path', '/form'), raw('Content-Type', 'application/x-www-form-urlencoded')], 'role=admin&role=x'))
  assert.deepEqual([form.parsed_body, form.truncated_body], [{ role: ['admin', 'x'] }, false])
  const cut = await checkRequestToInput(request([raw('content-type', 'application/x-www-form-urlencoded'), raw('x-envoy-auth-partial-body', 'true')], 'role=admin'))
  assert.deepEqual([cut.parsed_body, cut.truncated_body], [null, true])
  const short = await checkRequestToInput(request([raw('content-type', 'application/json'), raw('content-length', '100')], '{"a":1}'))
  assert.deepEqual([short.parsed_body, short.truncated_body], [null, true])
  // string values (header_map's value field) too
  const json = await checkRequestToInput(overTheWire({ attributes: { request: { http: { path: '/', headerMap: { headers: [{ key: 'content-type', value: 'application/json' }] }, body: '{"b":2}' } } } }))
  assert.deepEqual(json.parsed_body, { b: 2 })
  await assert.rejects(checkRequestToInput(request([raw('content-type', 'application/json')], '{"a":')), invalidRequest)
})

test('a header_map key repeated 200,000 times is one list, built in one pass', () => {
  // within a bound in a child process (test/helpers/bounded.ts): a copy per repeat took 35 s at 80,000
  const bounded = runBounded(`import { headerLookup } from './src/envoy/input.ts'
    const headers = Array.from({ length: 200_000 }, (_, i) => ({ key: 'a', value: String(i) }))
    process.stdout.write(String(headerLookup({ path: '/', headerMap: { headers } }).a.length))`)
  assert.deepEqual(bounded, { ok: true, stdout: '200000' })
  const headers = Array.from({ length: 200_000 }, (_, i) => ({ key: 'a', value: String(i) }))
  const lookup = headerLookup(overTheWire({ attributes: { request: { http: { path: '/', headerMap: { headers } } } } }).attributes?.request?.http)
  const a = lookup.a as string[]
  assert.equal(a.length, 200_000)
  assert.deepEqual([a[0], a[199_999]], ['0', '199999'])
})
