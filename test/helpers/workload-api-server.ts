/**
 * A small real Workload API server (grpc-js over a Unix socket, serving our
 * proto/spiffe/workload/workload.proto) whose answers each test scripts: for the client's edge
 * cases that a real SPIRE agent cannot be made to produce (malformed bundles, InvalidArgument,
 * Unimplemented, a stream ended cleanly). Everything SPIRE can produce is tested against SPIRE.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { LOADER_OPTIONS, SECURITY_HEADER, WORKLOAD_PROTO } from '../../src/identity/workload-api/index.js'

export type Method = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles'
export type Handler = (call: grpc.ServerWritableStream<unknown, unknown>, n: number) => void

export interface FakeAgent {
  endpoint: string
  /** Calls received per method. */
  calls: Record<Method, number>
  /** The security header's values, one per call (undefined when absent). */
  headers: Array<string | undefined>
  /** How each new call of `method` is answered (n: the call's index, from 0). */
  handle: (method: Method, handler: Handler) => void
  close: () => Promise<void>
}

/** Never answers: the stream stays open (the default). */
const idle: Handler = () => {}

/** On a Unix socket (the default), or on TCP loopback (`tcp: true`, the endpoint standard's tcp://ip:port). */
export async function startFakeAgent (opts: { tcp?: boolean } = {}): Promise<FakeAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-wapi-'))
  const socket = join(dir, 'agent.sock')
  const definition = protoLoader.loadSync(WORKLOAD_PROTO, LOADER_OPTIONS)
  const service = (grpc.loadPackageDefinition(definition) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor }).SpiffeWorkloadAPI.service
  const handlers: Record<Method, Handler> = { FetchX509SVID: idle, FetchX509Bundles: idle, FetchJWTBundles: idle }
  const calls: Record<Method, number> = { FetchX509SVID: 0, FetchX509Bundles: 0, FetchJWTBundles: 0 }
  const headers: Array<string | undefined> = []
  const open = new Set<grpc.ServerWritableStream<unknown, unknown>>()
  const server = new grpc.Server()
  const impl = (m: Method) => (call: grpc.ServerWritableStream<unknown, unknown>) => {
    const h = call.metadata.get(SECURITY_HEADER)[0]
    headers.push(h === undefined ? undefined : String(h))
    // SPIFFE Workload API §4.1: a request without the header is refused with InvalidArgument.
    if (h !== 'true') {
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' })
      return
    }
    open.add(call)
    call.on('cancelled', () => open.delete(call))
    call.on('finish', () => open.delete(call))
    handlers[m](call, calls[m]++)
  }
  server.addService(service, {
    FetchX509SVID: impl('FetchX509SVID'),
    FetchX509Bundles: impl('FetchX509Bundles'),
    FetchJWTBundles: impl('FetchJWTBundles'),
    FetchJWTSVID: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => { cb({ code: grpc.status.UNIMPLEMENTED }) },
    ValidateJWTSVID: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => { cb({ code: grpc.status.UNIMPLEMENTED }) },
  })
  const port = await new Promise<number>((res, rej) => server.bindAsync(opts.tcp === true ? '127.0.0.1:0' : `unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err, p) => { if (err !== null) rej(err); else res(p) }))
  return {
    endpoint: opts.tcp === true ? `tcp://127.0.0.1:${port}` : `unix://${socket}`,
    calls,
    headers,
    handle: (m, h) => { handlers[m] = h },
    close: async () => {
      for (const c of open) c.end()
      await new Promise<void>((res) => server.tryShutdown(() => res()))
      server.forceShutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
