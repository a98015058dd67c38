/**
 * A real Portcullis server with the durable audit log on (sync, a pinned checkpoint key written
 * in setup), verified JWT-SVID callers for two workloads, and a client that makes real
 * decisions over HTTP and remembers what each was answered — what the export and HTTP audit
 * tests check the log against.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import type { Runtime } from '../../src/server/runtime.js'
import { FRONTEND, verifiedCaller } from './identity.js'
import { startRuntime } from './runtime.js'

export const BACKEND = 'spiffe://example.org/ns/shop/sa/backend'
export const ORDER = { service: 'orders', method: 'GET', path: '/orders/1' }

export interface Decided { decision_id: string, outcome: 'allow' | 'deny' | 'undefined', spiffe_id: string | undefined, path: string }

export interface AuditedServer {
  runtime: Runtime
  url: string
  auditDir: string
  keyDir: string
  /** The pinned public key (PEM) and its file. */
  publicKeyPem: string
  publicKeyFile: string
  /** One decision over HTTP; what it was answered. */
  decide: (who: 'frontend' | 'backend' | 'anonymous', path?: string) => Promise<Decided>
  close: () => Promise<void>
}

export async function auditedServer (audit: Record<string, unknown> = {}): Promise<AuditedServer> {
  const keyDir = mkdtempSync(join(tmpdir(), 'portcullis-audit-key-'))
  const auditDir = mkdtempSync(join(tmpdir(), 'portcullis-audit-dir-'))
  const { privateKeyPem, publicKeyPem } = generateCheckpointKey()
  writeFileSync(join(keyDir, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
  const publicKeyFile = join(keyDir, 'checkpoint.pub.pem')
  writeFileSync(publicKeyFile, publicKeyPem)
  const frontend = await verifiedCaller(FRONTEND)
  const backendToken = await frontend.issuer.sign(BACKEND, { expSeconds: 3600 })
  const { runtime, url, close } = await startRuntime({
    identity: frontend.config(),
    audit: {
      enabled: true,
      dir: auditDir,
      durability: 'sync',
      ...audit,
      checkpoint: { every_events: 4, every_seconds: 3600, key_file: join(keyDir, 'checkpoint.pem'), ...(audit.checkpoint as object | undefined) },
    },
  })
  const headers: Record<string, Record<string, string>> = {
    frontend: frontend.headers,
    backend: { authorization: `Bearer ${backendToken}` },
    anonymous: {},
  }
  const decide = async (who: 'frontend' | 'backend' | 'anonymous', path = 'authz/allow'): Promise<Decided> => {
    const r = await fetch(`${url}/v1/data/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers[who] }, body: JSON.stringify({ input: ORDER }) })
    if (r.status !== 200) throw new Error(`decision answered ${r.status}: ${await r.text()}`)
    const body = await r.json() as { decision_id: string, result?: unknown }
    const outcome = !('result' in body) ? 'undefined' : body.result === true ? 'allow' : 'deny'
    return { decision_id: body.decision_id, outcome, spiffe_id: who === 'frontend' ? FRONTEND : who === 'backend' ? BACKEND : undefined, path }
  }
  return { runtime, url, auditDir, keyDir, publicKeyPem, publicKeyFile, decide, close }
}
