/**
 * A real Portcullis runtime wired to a Workload API endpoint, and a TLS client that checks the
 * served certificate's SPIFFE ID (an SVID has no DNS name: the URI SAN is the server's identity).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import type { ConfigOverrides } from '../../src/config/load.js'
import type { ListenerFactory, Runtime } from '../../src/server/runtime.js'
import { buildFixture } from './bundles.js'
import { startRuntime } from './runtime.js'

/** startRuntime (helpers/runtime.ts) over the `whoami` fixture, built by the real opa. */
export async function startWapiRuntime (overrides: ConfigOverrides, opts: { listeners?: ListenerFactory[] } = {}): Promise<{ runtime: Runtime, url: string, close: () => Promise<void> }> {
  const work = mkdtempSync(join(tmpdir(), 'portcullis-wapi-rt-'))
  const dir = join(work, 'bundles')
  mkdirSync(dir)
  buildFixture('whoami', work, { out: join('bundles', 'whoami.tar.gz') })
  return await startRuntime(overrides, { bundles: { dir, watch: false }, ...opts, cleanup: () => { rmSync(work, { recursive: true, force: true }) } })
}

export interface TlsReply { status: number, body: Record<string, unknown>, peer: PeerCertificate }

/** The served certificate must name `serverId` as its only URI SAN (checked instead of a host name). */
export async function tlsCall (url: string, path: string, opts: { ca: string, serverId: string, cert?: string, key?: string, token?: string, body?: unknown }): Promise<TlsReply> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}${path}`, {
      method: opts.body === undefined ? 'GET' : 'POST',
      ca: opts.ca,
      ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
      headers: { 'content-type': 'application/json', ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}) },
      agent: false,
      checkServerIdentity: (_host, cert) => cert.subjectaltname === `URI:${opts.serverId}` ? undefined : new Error(`served certificate names ${cert.subjectaltname}, expected URI:${opts.serverId}`),
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => {
        const peer = (res.socket as TLSSocket).getPeerCertificate()
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text === '' ? '{}' : text) as Record<string, unknown>, peer })
      })
    })
    req.on('error', reject)
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body))
  })
}
