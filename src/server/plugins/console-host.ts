/**
 * DNS-rebinding defence for the compliance console (docs/console.md "Host names"). A page on an
 * attacker's domain can make the browser resolve that domain to 127.0.0.1 and then read the
 * console's pages and API as same-origin — the browser still sends the attacker's name in
 * `Host`. So every console route (pages, static assets, every API call, reads included) answers
 * only requests whose `Host` (and HTTP/2 `:authority`, when present) names this server:
 *
 *   - on a loopback connection: `localhost`, `127.0.0.1` and `[::1]`, with this port or none;
 *   - the address the connection arrived on (the listen address), with this port — or none when
 *     the port is the scheme's default (a browser leaves it out);
 *   - the host of `server.addr` when it is a name (not a wildcard address), likewise;
 *   - `console.allowed_hosts`: `name` (any port) or `name:port`, for a console reached through
 *     a name (a reverse proxy, a DNS name of the host).
 *
 * Anything else — including a request without `Host` — is refused with 421 Misdirected Request
 * (PORTCULLIS_CONSOLE_HOST_REJECTED; RFC 9110 §15.5.20: the request was directed at a server
 * that will not answer for that origin), counted and logged like every refusal, before the
 * system authorization guard evaluates anything. Names compare case-insensitively, a trailing
 * dot is dropped, IP literals compare in canonical form (`::ffff:127.0.0.1` is `127.0.0.1`).
 */
import { isIP } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { PortcullisError } from '../../errors.js'

export interface ConsoleHostOptions {
  /** console.allowed_hosts: `name` or `name:port` (IPv6 in brackets). */
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
    const h = new URL(`http://[${host}]/`).hostname.slice(1, -1)
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
    if (isIP(host) !== 6) return undefined
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

function isLoopbackAddress (address: string): boolean {
  const a = canonical(address)
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a)
}

/** The console.allowed_hosts entries, parsed once (start-up fails on one that is not a host name). */
export function parseAllowedHosts (entries: readonly string[]): HostName[] {
  return entries.map((e) => {
    const h = parseHostName(e)
    if (h === undefined) throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `config key console.allowed_hosts: ${JSON.stringify(e)} is not a host name (name, name:port, or [IPv6]:port)`, { key: 'console.allowed_hosts', entry: e })
    return h
  })
}

/**
 * Is `name` one this server answers the console for, on a connection that arrived at
 * `local` (address and port)?
 */
export function hostAllowed (name: HostName, local: { address: string | undefined, port: number | undefined }, allowed: readonly HostName[], opts: ConsoleHostOptions = {}): boolean {
  const localPort = local.port
  const defaultPort = opts.https === true ? 443 : 80
  const portMatches = (p: number | undefined): boolean => p === undefined ? localPort === defaultPort : p === localPort
  const address = local.address !== undefined ? canonical(local.address) : undefined
  if (address !== undefined && isLoopbackAddress(address) && LOOPBACK_NAMES.has(name.host)) {
    // a loopback name is never an attacker's: with this port or none
    if (name.port === undefined || name.port === localPort) return true
  }
  if (address !== undefined && name.host === address && portMatches(name.port)) return true
  const listen = opts.listenHost !== undefined ? parseHostName(opts.listenHost.startsWith('[') || isIP(opts.listenHost) !== 6 ? opts.listenHost : `[${opts.listenHost}]`) : undefined
  if (listen !== undefined && !WILDCARDS.has(listen.host) && name.host === listen.host && portMatches(name.port)) return true
  for (const a of allowed) {
    if (a.host === name.host && (a.port === undefined || a.port === name.port || (name.port === undefined && a.port === defaultPort))) return true
  }
  return false
}

/** The onRequest hook of the console routes: refuses a request whose Host or :authority is not this server's. */
export function consoleHostCheck (opts: ConsoleHostOptions = {}): (request: FastifyRequest) => Promise<void> {
  const allowed = parseAllowedHosts(opts.allowedHosts ?? [])
  return async (request) => {
    const socket = request.raw.socket
    const local = { address: socket?.localAddress, port: socket?.localPort }
    const values: string[] = []
    const host = request.headers.host
    const authority = request.headers[':authority']
    if (typeof host === 'string') values.push(host)
    if (typeof authority === 'string') values.push(authority)
    if (values.length === 0) throw rejected('(none)', 'the request has no Host header')
    for (const v of values) {
      const name = parseHostName(v)
      if (name === undefined || !hostAllowed(name, local, allowed, opts)) {
        throw rejected(v, `the console does not answer for host ${JSON.stringify(v.slice(0, 256))}: only this server's own names (loopback names on loopback, the listen address) and console.allowed_hosts`)
      }
    }
  }
}

function rejected (host: string, message: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_CONSOLE_HOST_REJECTED', message, { host: host.slice(0, 256) })
}
