/**
 * Wire compatibility of proto/ with Envoy's API, checked against Envoy's own generated types
 * (go-control-plane, scripts/envoy-wire-check/main.go): a CheckRequest with every field set,
 * encoded by Go, must decode through our .proto files into exactly the input opa-envoy-plugin
 * builds; CheckResponses encoded through our .proto files must decode in Go with every field.
 *
 *   node --import tsx scripts/envoy-wire-check.ts      (needs Go and the module in GOMODCACHE or a proxy)
 *
 * Exits 1 on the first difference.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as protoLoader from '@grpc/proto-loader'
import { EXTERNAL_AUTH_PROTO, LOADER_OPTIONS } from '../src/envoy/grpc.js'
import { checkRequestToInput, type CheckRequest } from '../src/envoy/input.js'
import { checkResponseOf, errorResponseOf, refusedResponse, verdictOf } from '../src/envoy/response.js'
import { PortcullisError } from '../src/errors.js'

const dir = join(dirname(fileURLToPath(import.meta.url)), 'envoy-wire-check')
const go = (...args: string[]): string => execFileSync('go', ['run', '.', ...args], { cwd: dir, encoding: 'utf8' })

const def = protoLoader.loadSync(EXTERNAL_AUTH_PROTO, LOADER_OPTIONS)
const check = (def['envoy.service.auth.v3.Authorization'] as unknown as {
  Check: { requestDeserialize: (b: Buffer) => CheckRequest, responseSerialize: (o: unknown) => Buffer, responseDeserialize: (b: Buffer) => unknown }
}).Check

const [reqHex, okHex, errHex] = go().trim().split('\n') as [string, string, string]
const input = await checkRequestToInput(check.requestDeserialize(Buffer.from(reqHex, 'hex')), { skipRequestBodyParse: true })
const md = { k: 'v', n: 1.5 }
assert.deepEqual(input.attributes, {
  source: { address: { socketAddress: { protocol: 1, address: '10.0.0.1', portValue: 443, resolverName: 'r', ipv4Compat: true, networkNamespaceFilepath: '/ns' } }, service: 'svc', labels: { l: 'v' }, principal: 'spiffe://p', certificate: 'cert' },
  destination: { address: { pipe: { path: '/p', mode: 0o600 } } },
  request: {
    time: { seconds: 1700000000, nanos: 7 },
    http: { id: 'id', method: 'POST', headers: { h: 'v' }, headerMap: { headers: [{ key: 'k', value: 'v', rawValue: Buffer.from('rv').toString('base64') }] }, path: '/p?q', host: 'host', scheme: 'https', query: 'q', fragment: 'f', size: -1, protocol: 'HTTP/2', body: 'body', rawBody: Buffer.from([0xff, 0]).toString('base64') },
  },
  contextExtensions: { c: 'e' },
  metadataContext: { filterMetadata: { f: md } },
  routeMetadataContext: { filterMetadata: { r: md } },
  tlsSession: { sni: 'sni' },
})
assert.deepEqual(check.responseDeserialize(Buffer.from(okHex, 'hex')), {
  status: { code: 7, message: 'm' },
  okResponse: {
    headers: [{ header: { key: 'a', value: 'b' }, append: { value: true }, appendAction: 3, keepEmptyValue: true }],
    headersToRemove: ['x'],
    responseHeadersToAdd: [{ header: { key: 'c', value: 'd' } }],
    queryParametersToSet: [{ key: 'q', value: '1' }],
    queryParametersToRemove: ['r'],
  },
  dynamicMetadata: { fields: { k: { stringValue: 'v' }, n: { numberValue: 1.5 } } },
})
assert.deepEqual(check.responseDeserialize(Buffer.from(errHex, 'hex')), { errorResponse: { status: { code: 503 }, headers: [{ header: { key: 'a', value: 'b' } }], body: 'e' } })

const viaGo = (o: unknown): unknown => JSON.parse(go('decode', check.responseSerialize(o).toString('hex')))
const allow = verdictOf({ allowed: true, headers: { a: ['1', '2'] }, request_headers_to_remove: ['x'], response_headers_to_add: { r: 's' }, query_parameters_to_set: { q: '1' }, query_parameters_to_remove: ['z'], dynamic_metadata: { k: [1, 'a', null, { b: true }] } })
assert.deepEqual(viaGo(checkResponseOf(allow, 'id-1', { structured: true })), {
  status: {},
  okResponse: { headers: [{ header: { key: 'a', value: '1' } }, { header: { key: 'a', value: '2' } }], headersToRemove: ['x'], responseHeadersToAdd: [{ header: { key: 'r', value: 's' } }], queryParametersToSet: [{ key: 'q', value: '1' }], queryParametersToRemove: ['z'] },
  dynamicMetadata: { k: [1, 'a', null, { b: true }], decision_id: 'id-1' },
})
assert.deepEqual(viaGo(checkResponseOf(verdictOf({ allowed: false, http_status: 429, body: 'b', headers: { h: 'v' } }), 'id-2', { structured: true })), {
  status: { code: 7 }, deniedResponse: { status: { code: 'TooManyRequests' }, headers: [{ header: { key: 'h', value: 'v' } }], body: 'b' }, dynamicMetadata: { decision_id: 'id-2' },
})
assert.deepEqual(viaGo(errorResponseOf(new PortcullisError('PORTCULLIS_ENVOY_RESULT_INVALID', 'x'), 'id-3')), {
  status: { code: 13, message: 'PORTCULLIS_ENVOY_RESULT_INVALID: x' }, errorResponse: { body: 'PORTCULLIS_ENVOY_RESULT_INVALID' }, dynamicMetadata: { decision_id: 'id-3' },
})
assert.deepEqual(viaGo(refusedResponse(new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', 'x'))), {
  status: { code: 7, message: 'PORTCULLIS_ENVOY_REQUEST_INVALID: x' }, deniedResponse: { status: { code: 'BadRequest' }, body: 'PORTCULLIS_ENVOY_REQUEST_INVALID' },
})
console.log('proto/ is wire-compatible with go-control-plane envoy/service/auth/v3 (CheckRequest in, CheckResponse out)')
