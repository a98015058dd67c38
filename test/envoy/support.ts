/**
 * Shared setup of the Envoy ext_authz tests: the envoy test policy (test/fixtures/bundles/envoy)
 * compiled by the real opa, a real runtime (config -> createRuntime, with envoy/'s listeners)
 * on loopback, and a real @grpc/grpc-js client loaded from our proto files.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { pino } from 'pino'
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js'
import { envoyExtAuthz, type EnvoyListeners } from '../../src/envoy/listeners.js'
import { EXTERNAL_AUTH_PROTO, LOADER_OPTIONS } from '../../src/envoy/grpc.js'
import { createRuntime, type Runtime } from '../../src/server/runtime.js'
import { buildFixture } from '../helpers/bundles.js'

export interface CheckResponse {
  status?: { code?: number, message?: string }
  okResponse?: {
    headers?: Array<{ header: { key: string, value: string } }>
    headersToRemove?: string[]
    responseHeadersToAdd?: Array<{ header: { key: string, value: string } }>
    queryParametersToSet?: Array<{ key: string, value: string }>
    queryParametersToRemove?: string[]
  }
  deniedResponse?: { status?: { code?: number }, headers?: Array<{ header: { key: string, value: string } }>, body?: string }
  errorResponse?: { status?: { code?: number }, body?: string }
  dynamicMetadata?: { fields?: Record<string, unknown> }
}

export type Checker = (req: unknown, opts?: { deadline?: grpc.Deadline, cancelAfterMs?: number }) => Promise<CheckResponse>

export interface EnvoyEnv {
  runtime: Runtime
  envoy: EnvoyListeners
  grpcAddress: string
  httpUrl: string
  check: Checker
  client: grpc.Client
  close: () => Promise<void>
}

/** The bundles directory with the envoy test policy, built once per test file. */
export function envoyBundles (): { dir: string, cleanup: () => void } {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-envoy-'))
  const dir = join(work, 'bundles')
  mkdirSync(dir)
  buildFixture('envoy', work, { out: join('bundles', 'envoy.tar.gz') })
  return { dir, cleanup: () => rmSync(work, { recursive: true, force: true }) }
}

function structValue (v: unknown): unknown {
  const x = v as Record<string, unknown>
  if ('structValue' in x) return fromStruct(x.structValue as { fields?: Record<string, unknown> })
  if ('listValue' in x) return ((x.listValue as { values?: unknown[] }).values ?? []).map(structValue)
  if ('stringValue' in x) return x.stringValue
  if ('numberValue' in x) return x.numberValue
  if ('boolValue' in x) return x.boolValue
  return null
}

/** google.protobuf.Struct as decoded by proto-loader -> plain JSON. */
export function fromStruct (s: { fields?: Record<string, unknown> } | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = structValue(v)
  return out
}

/** A grpc-js Authorization client from our proto files. */
export function authorizationClient (address: string): { client: grpc.Client, check: Checker } {
  const def = protoLoader.loadSync(EXTERNAL_AUTH_PROTO, LOADER_OPTIONS)
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } }
  const Client = pkg.envoy.service.auth.v3.Authorization
  const client = new Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024 })
  const check: Checker = async (req, opts = {}) => await new Promise((resolve, reject) => {
    const options: grpc.CallOptions = {}
    if (opts.deadline !== undefined) options.deadline = opts.deadline
    const call = (client as unknown as { Check: (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: CheckResponse) => void) => grpc.ClientUnaryCall })
      .Check(req, options, (err, res) => { if (err !== null) reject(err); else resolve(res) })
    if (opts.cancelAfterMs !== undefined) setTimeout(() => call.cancel(), opts.cancelAfterMs)
  })
  return { client, check }
}

/** Starts a runtime with the Envoy listeners on loopback (ephemeral ports) over `bundlesDir`. */
export async function startEnvoy (bundlesDir: string, overrides: Record<string, unknown> = {}): Promise<EnvoyEnv> {
  const o = overrides as Record<string, Record<string, unknown> | undefined>
  const envoyOver = (o.envoy_ext_authz ?? {}) as Record<string, Record<string, unknown> | undefined>
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      server: { addr: '127.0.0.1:0', workers: 1, ...o.server },
      bundles: { dir: bundlesDir, watch: false, ...o.bundles },
      logging: { level: 'silent' },
      envoy_ext_authz: {
        ...envoyOver,
        grpc: { enabled: true, addr: '127.0.0.1:0', ...envoyOver.grpc },
        http: { enabled: true, addr: '127.0.0.1:0', ...envoyOver.http },
      },
    } as ConfigOverrides,
  })
  const runtime = await createRuntime(config, {}, { logger: pino({ level: 'silent' }), listeners: [envoyExtAuthz] })
  try {
    await runtime.start()
  } catch (err) {
    // A listener that cannot bind: stop what did start, so the test leaves nothing open.
    await runtime.stop()
    throw err
  }
  const envoy = runtime.listeners[0] as EnvoyListeners
  const grpcAddress = envoy.grpcAddress as string
  const { client, check } = authorizationClient(grpcAddress)
  return {
    runtime,
    envoy,
    grpcAddress,
    httpUrl: envoy.httpUrl as string,
    check,
    client,
    close: async () => {
      client.close()
      await runtime.stop()
    },
  }
}

/** A CheckRequest for `path` with the given http fields. */
export function checkRequest (path: string, http: Record<string, unknown> = {}, attributes: Record<string, unknown> = {}): unknown {
  return {
    attributes: {
      source: { address: { socketAddress: { address: '10.0.0.7', portValue: 51234 } } },
      destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 8080 } } },
      request: {
        time: { seconds: 1767225600, nanos: 5 },
        http: { id: 'req-1', method: 'GET', path, host: 'shop.example', scheme: 'https', protocol: 'HTTP/1.1', headers: { ':path': path, host: 'shop.example' }, ...http },
      },
      ...attributes,
    },
  }
}

export const OK = 0
export const PERMISSION_DENIED = 7
