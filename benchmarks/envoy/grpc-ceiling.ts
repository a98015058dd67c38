/**
 * The gRPC ceilings of benchmarks/envoy.ts: servers answering every Check with the same
 * constant OK — no input document, no policy — so Portcullis's gRPC figures can be read against
 * what the transport alone allows on one core. Both decode each CheckRequest with the
 * deserializer @grpc/proto-loader builds from the repository's proto/ files (as Portcullis does).
 *
 *   grpc-js: @grpc/grpc-js (what Portcullis's ext_authz gRPC listener is built on).
 *   http2:   node:http2 directly, unary gRPC framing written here (5-byte message prefix,
 *            grpc-status trailer): how much of the cost is grpc-js's own machinery.
 *
 *   node --import tsx benchmarks/envoy/grpc-ceiling.ts <port> [grpc-js|http2]
 */
import { createServer, constants } from 'node:http2'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { repoRoot } from '../../scripts/lib/opa.js'

const port = Number(process.argv[2])
const kind = process.argv[3] ?? 'grpc-js'
const protoDir = join(repoRoot, 'proto')
const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: false, longs: Number, enums: Number, defaults: false, oneofs: false, includeDirs: [protoDir] })
const answer = { status: { code: 0 }, okResponse: { headers: [{ header: { key: 'x-ext-authz', value: 'allow' } }] } }

if (kind === 'grpc-js') {
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } }
  const server = new grpc.Server()
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => { callback(null, answer) },
  })
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err !== null) throw err
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.forceShutdown(); process.exit(0) })
} else if (kind === 'http2') {
  const method = (definition['envoy.service.auth.v3.Authorization'] as unknown as Record<string, protoLoader.MethodDefinition<unknown, unknown>>).Check as protoLoader.MethodDefinition<unknown, unknown>
  const body = method.responseSerialize(answer)
  const frame = Buffer.alloc(5 + body.length)
  frame.writeUInt32BE(body.length, 1)
  body.copy(frame, 5)
  const server = createServer()
  // A load generator that stops at its time bound resets the streams still open: expected,
  // not a reason to crash (an unhandled stream 'error' would end the process).
  server.on('sessionError', () => {})
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      const msg = Buffer.concat(chunks)
      if (headers[constants.HTTP2_HEADER_PATH] !== '/envoy.service.auth.v3.Authorization/Check' || msg.length < 5) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true })
        return
      }
      method.requestDeserialize(msg.subarray(5, 5 + msg.readUInt32BE(1)))
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
      stream.end(frame)
    })
  })
  server.listen(port, '127.0.0.1')
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.close(); process.exit(0) })
} else {
  throw new Error(`unknown ceiling ${kind} (grpc-js, http2)`)
}
