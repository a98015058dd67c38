/** Extracts a request's credential context for the identity plugins: TLS peer chain, headers, peer address. */
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'
import type { CredentialContext } from '../../decision/types.js'

interface PeerCert { raw?: Buffer, issuerCertificate?: PeerCert, fingerprint256?: string }

/** The peer's certificate chain as presented, leaf first, as DER. */
export function peerChain (socket: unknown): Buffer[] | undefined {
  const tls = socket as Partial<TLSSocket>
  if (typeof tls.getPeerCertificate !== 'function') return undefined
  const leaf = tls.getPeerCertificate(true) as PeerCert | null
  if (leaf === null || leaf.raw === undefined) return undefined
  const chain: Buffer[] = []
  const seen = new Set<string>()
  for (let c: PeerCert | undefined = leaf; c?.raw !== undefined && chain.length < 16; c = c.issuerCertificate) {
    const id = c.fingerprint256 ?? c.raw.toString('base64')
    if (seen.has(id)) break // self-signed root links to itself
    seen.add(id)
    chain.push(c.raw)
  }
  return chain
}

export function credentialsOf (request: FastifyRequest): CredentialContext {
  return credentialsFromRaw(request.raw)
}

/** The same, from Node's request (the framework-free decision route). */
export function credentialsFromRaw (req: IncomingMessage): CredentialContext {
  const ctx: CredentialContext = { headers: req.headers as Record<string, string | string[] | undefined> }
  const remote = req.socket.remoteAddress
  if (remote !== undefined) ctx.remoteAddress = remote
  const chain = peerChain(req.socket)
  if (chain !== undefined && chain.length > 0) ctx.peerCertificates = chain
  return ctx
}
