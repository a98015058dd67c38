/**
 * Protected endpoints (status details, cache flush, the audit API, the console) are authorized
 * by a system policy, as OPA's system.authz: the configured path (default system/authz/allow) is
 * evaluated with input {method, path, remote_addr, identity}; only `true` allows. When no
 * active bundle owns that path, only loopback callers are allowed. Any error denies.
 *
 * Before either, a request that arrived on a loopback address must name this server in `Host`
 * (plugins/host-check.ts): a page on another domain rebound to 127.0.0.1 is a loopback caller
 * too, and would otherwise be admitted with everything a loopback caller may read.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { BundleManager } from '../../bundles/activate.js'
import type { DecisionService } from '../../decision/decide.js'
import { PortcullisError } from '../../errors.js'
import { credentialsOf } from './credentials.js'
import { hostCheck, isLoopbackAddress, type HostCheckOptions } from './host-check.js'

/** A loopback address (127.0.0.0/8, ::1, in any form: `::ffff:127.0.0.1`, `0:0:0:0:0:0:0:1`); undefined is not. */
export function isLoopback (addr: string | undefined): boolean {
  return addr !== undefined && isLoopbackAddress(addr)
}

export interface AdminGuardOptions {
  manager: BundleManager
  decisions: DecisionService
  authzPath: string
  /** The Host names answered on loopback (admin.allowed_hosts, the host of server.addr). */
  host?: HostCheckOptions
}

/**
 * The path as the router matched it, which is what the system policy must judge: the query
 * cut, percent-escapes decoded (`/v1/%61udit/events` is served as `/v1/audit/events`) and a
 * trailing slash dropped (the router ignores it: `/v1/cache/flush/` is `/v1/cache/flush`).
 * A path whose escapes do not decode never reaches a route (404), so it is kept as it is.
 */
export function routedPath (url: string): string {
  const raw = url.split('?')[0] as string
  let path = raw
  try { path = decodeURIComponent(raw) } catch { /* not decodable: the router refused it too */ }
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
}

export function adminGuard (opts: AdminGuardOptions) {
  const checkHost = hostCheck({ ...opts.host, loopbackOnly: true })
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    await checkHost(request)
    const remote = request.socket.remoteAddress
    let owned: boolean
    try {
      owned = opts.manager.snapshot.resolve(opts.authzPath).kind !== 'none'
    } catch {
      owned = true // a bundle owns the path but cannot answer it: the decision below fails and denies
    }
    if (!owned) {
      if (isLoopback(remote)) return
      throw new PortcullisError('PORTCULLIS_IDENTITY_DENIED', `${request.method} ${request.url}: only loopback callers may use this endpoint (no ${opts.authzPath} policy is loaded)`, { path: request.url })
    }
    let allowed = false
    try {
      const d = await opts.decisions.decide({
        path: opts.authzPath,
        input: { method: request.method, path: routedPath(request.url), remote_addr: remote ?? null },
        credentials: credentialsOf(request),
        // the system policy itself decides about callers without a credential (its loopback rule)
        anonymousToPolicy: true,
        transport: 'http',
        requestedBy: remote,
        requestId: request.id,
      })
      allowed = d.result === true
    } catch {
      allowed = false
    }
    if (!allowed) {
      throw new PortcullisError('PORTCULLIS_IDENTITY_DENIED', `${request.method} ${request.url} denied by ${opts.authzPath}`, { path: request.url })
    }
  }
}
