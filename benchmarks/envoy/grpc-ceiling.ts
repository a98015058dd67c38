/**
 * The gRPC ceiling of benchmarks/envoy.ts: @grpc/grpc-js with @grpc/proto-loader over the
 * repository's proto/ files (what Portcullis's ext_authz gRPC listener is built on), answering
 * every Check with the same constant OK — no input document, no policy. What Node and grpc-js
 * alone allow on one core, so Portcullis's gRPC figures can be read against it.
 *
 *   node --import tsx benchmarks/envoy/grpc-ceiling.ts <port>
 */
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { repoRoot } from '../../scripts/lib/opa.js'

const port = Number(process.argv[2])
const protoDir = join(repoRoot, 'proto')
const definition = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', { keepCase: false, longs: Number, enums: Number, defaults: false, oneofs: false, includeDirs: [protoDir] })
const pkg = grpc.loadPackageDefinition(definition) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } }
const answer = { status: { code: 0 }, okResponse: { headers: [{ header: { key: 'x-ext-authz', value: 'allow' } }] } }
const server = new grpc.Server()
server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => { callback(null, answer) },
})
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err !== null) throw err
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { server.forceShutdown(); process.exit(0) })
