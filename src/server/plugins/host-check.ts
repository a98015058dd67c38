/**
 * DNS-rebinding defence (docs/console.md "Host names"). A page on an attacker's domain can make
 * the browser resolve that domain to this server's address and then read what the server answers
 * as same-origin — the browser still sends the attacker's name in `Host`. Two places check it:
 *
 *   - every console route (pages, static assets, every API call, reads included), always;
 *   - every route behind the admin guard (`/v1/status`, `/v1/cache/flush`, `/v1/audit/*`) when
 *     the connection arrived on a loopback address — where, with no system policy loaded, the
 *     guard admits any caller, so a rebound page would be admitted too. On other addresses
 *     those routes are for tools that reach the server by whatever DNS name it has; their
 *     callers are the system policy's to judge.
 *
 * A checked request is answered only when its `Host` (and HTTP/2 `:authority`, and the
 * authority of an absolute-form request target, when present) names this server:
 *
 *   - on a loopback connection: `localhost`, `127.0.0.1` and `[::1]`, with any port or none
 *     (a tunnel or port-forward presents its own local port);
 *   - the address the connection arrived on (the listen address), with this port — or none when
 *     the port is the scheme's default (a browser leaves it out);
 *   - the host of `server.addr` when it is a name (not a wildcard address), likewise;
 *   - `admin.allowed_hosts`: `name` (any port) or `name:port`, for a server reached through
 *     a name (a reverse proxy, a DNS name of the host).
 *
 * Anything else — a request without `Host`, or with more than one — is refused with 421
 * Misdirected Request (PORTCULLIS_HOST_REJECTED; RFC 9110 §15.5.20: the request was directed at
 * a server that will not answer for that origin), counted and logged like every refusal, before
 * the system authorization guard evaluates anything. Names compare case-insensitively, a
 * trailing dot is dropped, IP literals compare in canonical form (`::ffff:127.0.0.1` is
 * `127.0.0.1`); an IPv6 zone identifier is never one of this server's names.
 */
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { PortcullisError } from '../../errors.js'

export interface HostCheckOptions {
  /** admin.allowed_hosts: `name` or `name:port` (IPv6 in brackets). */
  allowedHosts?: readonly string[]
  /** The host part of server.addr (a name or an address); wildcard addresses are ignored. */
  listenHost?: string
  /** True when the listener is HTTPS (its default port is 443, else 80). */
  https?: boolean
}

export interface HostName { host: string, port: number | undefined }

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1'])
const WILDCARDS = new Set(['0.0.0.0', '::', ''])
const NAME = /^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/

/** An IP literal in canonical form (IPv4-mapped IPv6 as IPv4, IPv6 compressed and lowercase); other names unchanged. */
function canonical (host: string): string {
  if (isIP(host) === 6) {
    let h: string
    try { h = new URL(`http://[${host}]/`).hostname.slice(1, -1) } catch { return `invalid:${host}` }
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
    if (mapped !== null) return mapped[1] as string
    // the URL parser writes a mapped IPv4 in hex: ::ffff:7f00:1
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h)
    if (hex !== null) {
      const a = parseInt(hex[1] as string, 16)
      const b = parseInt(hex[2] as string, 16)
      return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`
    }
    return h
  }
  return host
}

/**
 * Parses a Host / :authority value (RFC 9110 §7.2: uri-host [":" port]); undefined when it is
 * not one. IPv6 literals come without brackets in `host`.
 */
export function parseHostName (value: string): HostName | undefined {
  if (value.length === 0 || value.length > 300) return undefined
  const v = value.toLowerCase()
  let host: string
  let rest: string
  if (v.startsWith('[')) {
    const end = v.indexOf(']')
    if (end < 0) return undefined
    host = v.slice(1, end)
    // a zone identifier (fe80::1%eth0) names an interface, never this server to a browser
    if (host.includes('%') || isIP(host) !== 6) return undefined
    rest = v.slice(end + 1)
  } else {
    const colon = v.indexOf(':')
    host = colon < 0 ? v : v.slice(0, colon)
    rest = colon < 0 ? '' : v.slice(colon)
  }
  let port: number | undefined
  if (rest !== '') {
    if (!/^:[0-9]{1,5}$/.test(rest)) return undefined
    port = Number(rest.slice(1))
    if (port > 65535) return undefined
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  if (isIP(host) === 0 && !NAME.test(host)) return undefined
  return { host: canonical(host), port }
}

export function isLoopbackAddress (address: string): boolean {
  if (address.includes('%')) return false
  const a = canonical(address)
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a)
}

/** The admin.allowed_hosts entries, parsed once (start-up fails on one that is not a host name). */
export function parseAllowedHosts (entries: readonly string[]): HostName[] {
  return entries.map((e) => {
    const h = parseHostName(e)
    if (h === undefined) throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `config key admin.allowed_hosts: ${JSON.stringify(e)} is not a host name (name, name:port, or [IPv6]:port)`, { key: 'admin.allowed_hosts', entry: e })
    return h
  })
}

/**
 * Is `name` one this server answers the console for, on a connection that arrived at
 * `local` (address and port)?
 */
export function hostAllowed (name: HostName, local: { address: string | undefined, port: number | undefined }, allowed: readonly HostName[], opts: HostCheckOptions = {}): boolean {
  const localPort = local.port
  const defaultPort = opts.https === true ? 443 : 80
  const portMatches = (p: number | undefined): boolean => p === undefined ? localPort === defaultPort : p === localPort
  const address = local.address !== undefined && !local.address.includes('%') ? canonical(local.address) : undefined
  // On a loopback connection a loopback name is never an attacker's, with any port: a
  // rebinding page sends its own domain, and `kubectl port-forward` or an SSH tunnel presents
  // `localhost:<its local port>`, not this server's.
  if (address !== undefined && isLoopbackAddress(address) && LOOPBACK_NAMES.has(name.host)) return true
  if (address !== undefined && name.host === address && portMatches(name.port)) return true
  const listen = opts.listenHost !== undefined ? parseHostName(opts.listenHost.startsWith('[') || isIP(opts.listenHost) !== 6 ? opts.listenHost : `[${opts.listenHost}]`) : undefined
  if (listen !== undefined && !WILDCARDS.has(listen.host) && name.host === listen.host && portMatches(name.port)) return true
  for (const a of allowed) {
    if (a.host === name.host && (a.port === undefined || a.port === name.port || (name.port === undefined && a.port === defaultPort))) return true
  }
  return false
}

/** The authority of an absolute-form request target (`GET http://host/path HTTP/1.1`), if it is one. */
function absoluteFormAuthority (url: string | undefined): string | undefined {
  if (url === undefined || url.startsWith('/')) return undefined
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)
  return m === null ? undefined : (m[1] as string)
}

/**
 * The Host check as a hook: refuses a request whose Host, :authority or absolute-form target is
 * not this server's. With `loopbackOnly`, requests that arrived on a non-loopback address pass
 * unchecked (the admin guard's use).
 */
export function hostCheck (opts: HostCheckOptions & { loopbackOnly?: boolean } = {}): (request: FastifyRequest) => Promise<void> {
  const allowed = parseAllowedHosts(opts.allowedHosts ?? [])
  const what = opts.loopbackOnly === true ? 'this endpoint' : 'the console'
  return async (request) => {
    const socket = request.raw.socket
    const local = { address: socket?.localAddress, port: socket?.localPort }
    if (opts.loopbackOnly === true && (local.address === undefined || !isLoopbackAddress(local.address))) return
    // Node keeps the first of several Host headers; RFC 9112 §3.2 says to refuse them (400) — a
    // request that names two hosts is answered for neither
    const hosts = request.raw.headersDistinct?.host
    if (hosts !== undefined && hosts.length > 1) throw rejected(hosts.join(', '), `the request has ${hosts.length} Host headers`)
    const values: string[] = []
    const host = request.headers.host
    const authority = request.headers[':authority']
    const target = absoluteFormAuthority(request.raw.url)
    if (typeof host === 'string') values.push(host)
    if (typeof authority === 'string') values.push(authority)
    if (target !== undefined) values.push(target)
    if (values.length === 0) throw rejected('(none)', 'the request has no Host header')
    for (const v of values) {
      const name = parseHostName(v)
      if (name === undefined || !hostAllowed(name, local, allowed, opts)) {
        throw rejected(v, `${what} does not answer for host ${JSON.stringify(v.slice(0, 256))}: only this server's own names (loopback names on loopback, the listen address) and admin.allowed_hosts`)
      }
    }
  }
}

function rejected (host: string, message: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_HOST_REJECTED', message, { host: host.slice(0, 256) })
}
