/**
 * The TLS listener: the server certificate and key, read from files and reloaded when they
 * change (chokidar): new connections get the new certificate, open ones keep theirs. A
 * reload that fails (unreadable, mismatched key) keeps the current certificate and logs.
 *
 * Client certificates (client_auth request / require) are always verified before a request
 * is answered, on every route: against `client_ca_file` by Node's TLS layer, or — without
 * one — as X.509-SVIDs against the identity plugin's trust bundles (SPIFFE rules Node does
 * not know). `require` refuses a connection without a verified certificate; `request` lets
 * one without a certificate through but refuses one whose certificate does not verify. A
 * configuration with nothing to verify against is refused at load (config/load.ts).
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import type { ServerOptions } from 'node:https'
import { watch, type FSWatcher } from 'chokidar'
import { IdentityError, PortcullisError, toPortcullisError } from '../errors.js'
import type { Logger } from '../log.js'
import type { IdentityVerifier } from '../identity/index.js'
import { pemCertificates } from '../identity/pem-blocks.js'
import { peerChain } from './plugins/credentials.js'

export interface TlsSettings {
  /** Absent when the certificate comes from the Workload API (workload_api.serving_svid). */
  cert_file?: string
  key_file?: string
  client_auth: 'none' | 'request' | 'require'
  client_ca_file?: string
}

/** A certificate and key handed in (the Workload API's X.509-SVID), PEM. */
export interface CertificatePair {
  cert: string | Buffer
  key: string | Buffer
}

/**
 * The secure context: from the files, or from `pair`; with neither (serving SVID not yet
 * received) a context without a certificate, whose handshakes fail until one is set.
 */
function readContext (s: TlsSettings, pair?: CertificatePair): SecureContextOptions {
  let cert: Buffer | string | undefined = pair?.cert
  let key: Buffer | string | undefined = pair?.key
  if (pair === undefined && s.cert_file !== undefined && s.key_file !== undefined) {
    try {
      cert = readFileSync(s.cert_file)
      key = readFileSync(s.key_file)
    } catch (err) {
      throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls: cannot read certificate or key (${(err as Error).message})`, { key: 'server.tls' })
    }
  }
  const out: SecureContextOptions = { ...(cert !== undefined && key !== undefined ? { cert, key } : {}), minVersion: 'TLSv1.2' }
  if (s.client_ca_file !== undefined && s.client_auth !== 'none') {
    try {
      // Node ignores what it cannot parse in `ca`: refuse a file without one good certificate.
      out.ca = pemCertificates(readFileSync(s.client_ca_file, 'utf8'), 'server.tls.client_ca_file').map((der) => new X509Certificate(der).toString())
    } catch (err) {
      throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls.client_ca_file: cannot read CA certificates from ${s.client_ca_file} (${(err as Error).message})`, { key: 'server.tls.client_ca_file' })
    }
  }
  try {
    createSecureContext(out) // validates the pair now, not at the first handshake
  } catch (err) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls: certificate and key do not form a usable pair (${(err as Error).message})`, { key: 'server.tls' })
  }
  return out
}

/** The listener's secure context with a certificate pair handed in (the serving SVID rotated in place). */
export function secureContextWith (s: TlsSettings, pair: CertificatePair): SecureContextOptions {
  return readContext(s, pair)
}

export function httpsOptions (s: TlsSettings): ServerOptions {
  return {
    ...readContext(s),
    requestCert: s.client_auth !== 'none',
    // With a CA file, `require` is OpenSSL's job: no verified certificate, no handshake. In every
    // other case the handshake completes and clientCertificateGate judges the certificate
    // (Node's default CA store is not a trust domain, and SPIFFE rules are not OpenSSL's).
    rejectUnauthorized: s.client_auth === 'require' && s.client_ca_file !== undefined,
  }
}

/** A connection's client-certificate verdict: undefined = accepted, else the error to answer with. */
type Verdict = PortcullisError | undefined

interface Judged {
  chain: Buffer[] | undefined
  generation: number
  /** Accepted verdicts end when the certificate does (a keep-alive connection outliving it is judged again). */
  until: number
  verdict: Verdict | Promise<Verdict>
}

export interface ClientCertificateGate {
  readonly required: boolean
  /** The verdict for a TLS socket: settled (undefined = accepted, or the error) or pending. */
  check: (socket: unknown) => Verdict | Promise<Verdict>
  /** Forget every verdict (a trust bundle changed). */
  invalidate: () => void
}

function sameChain (a: Buffer[] | undefined, b: Buffer[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b
  return a.length === b.length && a.every((c, i) => c.equals(b[i] as Buffer))
}

/**
 * Judges the client certificate of each TLS connection once (again if the peer's chain changes,
 * the certificate ends, or a trust bundle changes), for every route of the listener.
 *
 * @throws PortcullisError PORTCULLIS_CONFIG_INVALID when nothing can verify client certificates.
 */
export function clientCertificateGate (s: TlsSettings, identity: IdentityVerifier | undefined, now: () => number = Date.now): ClientCertificateGate {
  const required = s.client_auth === 'require'
  const byCa = s.client_ca_file !== undefined
  if (!byCa && identity === undefined) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls.client_auth: ${s.client_auth} needs server.tls.client_ca_file or identity trust domains with X.509 authorities`, { key: 'server.tls.client_auth' })
  }
  const judged = new WeakMap<object, Judged>()
  let generation = 0

  const judge = async (socket: TLSSocket, chain: Buffer[]): Promise<{ verdict: Verdict, until: number }> => {
    if (byCa) {
      if (socket.authorized) {
        // OpenSSL checked the dates at the handshake; a connection kept open past notAfter is not.
        const until = new Date(new X509Certificate(chain[0] as Buffer).validTo).getTime()
        if (until < now()) return { verdict: new IdentityError('PORTCULLIS_IDENTITY_EXPIRED', 'client certificate has expired since the connection was opened', {}), until: Infinity }
        return { verdict: undefined, until }
      }
      return { verdict: new IdentityError('PORTCULLIS_IDENTITY_UNTRUSTED', `client certificate does not verify against server.tls.client_ca_file (${String(socket.authorizationError)})`, { key: 'server.tls.client_ca_file' }), until: Infinity }
    }
    try {
      const { expiresAt } = await (identity as IdentityVerifier).verifyX509Svid(chain)
      return { verdict: undefined, until: expiresAt.getTime() }
    } catch (err) {
      return { verdict: toPortcullisError(err, 'PORTCULLIS_IDENTITY_MALFORMED'), until: Infinity }
    }
  }

  return {
    required,
    invalidate: () => { generation++ },
    check: (socket) => {
      const tls = socket as TLSSocket
      const chain = peerChain(tls)
      const known = judged.get(tls)
      if (known !== undefined && known.generation === generation && known.until >= now() && sameChain(known.chain, chain)) return known.verdict
      if (chain === undefined || chain.length === 0) {
        const verdict = required ? new PortcullisError('PORTCULLIS_IDENTITY_REQUIRED', 'this listener requires a verified client certificate', { key: 'server.tls.client_auth' }) : undefined
        judged.set(tls, { chain, generation, until: Infinity, verdict })
        return verdict
      }
      const entry: Judged = { chain, generation, until: Infinity, verdict: undefined }
      entry.verdict = judge(tls, chain).then(({ verdict, until }) => {
        entry.verdict = verdict
        entry.until = until
        return verdict
      })
      judged.set(tls, entry)
      return entry.verdict
    },
  }
}

/**
 * Puts the gate in front of a request listener (the fast decision route and fastify alike): a
 * request on a connection whose certificate is refused is answered with the error, its body
 * unread, and the connection closed.
 */
export function withClientCertificateGate (next: (req: IncomingMessage, res: ServerResponse) => void, gate: ClientCertificateGate, refuse: (res: ServerResponse, err: PortcullisError) => void): (req: IncomingMessage, res: ServerResponse) => void {
  const settle = (req: IncomingMessage, res: ServerResponse, verdict: Verdict): void => {
    if (verdict === undefined) {
      next(req, res)
      return
    }
    res.shouldKeepAlive = false
    try {
      refuse(res, verdict)
    } catch {
      res.destroy() // refused either way
    }
    req.resume()
  }
  return (req, res) => {
    const verdict = gate.check(req.socket)
    if (verdict instanceof Promise) {
      verdict.then((v) => { settle(req, res, v) }, (err: unknown) => { settle(req, res, toPortcullisError(err, 'PORTCULLIS_INTERNAL')) })
    } else {
      settle(req, res, verdict)
    }
  }
}

/** Watches the certificate and key files and swaps the server's secure context on change. */
export function watchServerCertificate (server: { setSecureContext: (o: SecureContextOptions) => void }, s: TlsSettings & { cert_file: string, key_file: string }, logger: Logger, debounceMs = 200): { close: () => Promise<void> } {
  let timer: NodeJS.Timeout | undefined
  const watcher: FSWatcher = watch([s.cert_file, s.key_file], { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: debounceMs, pollInterval: 50 } })
  const reload = (): void => {
    try {
      server.setSecureContext(readContext(s))
      logger.info({ cert: s.cert_file }, 'server certificate reloaded')
    } catch (err) {
      logger.error({ code: (err as PortcullisError).code, err: (err as Error).message }, 'server certificate reload failed; keeping the current certificate')
    }
  }
  watcher.on('all', () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(reload, debounceMs)
  })
  return {
    close: async () => {
      if (timer !== undefined) clearTimeout(timer)
      await watcher.close()
    },
  }
}
