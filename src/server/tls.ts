/**
 * The TLS listener's server certificate and key, read from files and reloaded when they
 * change (chokidar): new connections get the new certificate, open ones keep theirs. A
 * reload that fails (unreadable, mismatched key) keeps the current certificate and logs.
 * Client certificates are requested but not judged by Node: the X.509-SVID identity plugin
 * verifies them against the trust domain's bundle (SPIFFE rules Node does not know).
 */
import { readFileSync } from 'node:fs'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { ServerOptions } from 'node:https'
import { watch, type FSWatcher } from 'chokidar'
import { PortcullisError } from '../errors.js'
import type { Logger } from '../bundles/activate.js'

export interface TlsSettings {
  cert_file: string
  key_file: string
  client_auth: 'none' | 'request' | 'require'
}

function readPair (s: TlsSettings): SecureContextOptions {
  let cert: Buffer
  let key: Buffer
  try {
    cert = readFileSync(s.cert_file)
    key = readFileSync(s.key_file)
  } catch (err) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls: cannot read certificate or key (${(err as Error).message})`, { key: 'server.tls' })
  }
  try {
    createSecureContext({ cert, key }) // validates the pair now, not at the first handshake
  } catch (err) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `server.tls: certificate and key do not form a usable pair (${(err as Error).message})`, { key: 'server.tls' })
  }
  return { cert, key }
}

export function httpsOptions (s: TlsSettings): ServerOptions {
  return {
    ...readPair(s),
    requestCert: s.client_auth !== 'none',
    // Chain and SPIFFE checks are the identity plugin's; Node's default CA store is not the trust domain.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  }
}

/** Watches the certificate and key files and swaps the server's secure context on change. */
export function watchServerCertificate (server: { setSecureContext: (o: SecureContextOptions) => void }, s: TlsSettings, logger: Logger, debounceMs = 200): { close: () => Promise<void> } {
  let timer: NodeJS.Timeout | undefined
  const watcher: FSWatcher = watch([s.cert_file, s.key_file], { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: debounceMs, pollInterval: 50 } })
  const reload = (): void => {
    try {
      server.setSecureContext({ ...readPair(s), minVersion: 'TLSv1.2' })
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
