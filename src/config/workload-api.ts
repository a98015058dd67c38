/**
 * The Workload API endpoint address (SPIFFE Workload Endpoint §4): `unix:///abs/path` (also
 * `unix:/abs/path`, the same URI without an authority) or `tcp://<ip>:<port>` with an IP literal
 * (no host names: the endpoint must not depend on DNS). Anything else is
 * PORTCULLIS_CONFIG_INVALID naming the key and the value.
 */
import { isIP } from 'node:net'
import { configInvalid } from './validate.js'

export interface WorkloadEndpoint {
  /** The address as configured. */
  address: string
  /** The grpc-js target: `unix:///abs/path` or `ip:port` (`[v6]:port`). */
  target: string
}

/** @throws PortcullisError PORTCULLIS_CONFIG_INVALID */
export function parseWorkloadEndpoint (address: string, key = 'workload_api.socket'): WorkloadEndpoint {
  const bad = (why: string): never => {
    throw configInvalid(`config key ${key}: ${JSON.stringify(address)} is not a Workload API endpoint (${why}); expected unix:///absolute/path or tcp://ip:port`, key)
  }
  let u: URL
  try { u = new URL(address) } catch { return bad('not a URI') }
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') bad('query, fragment and user info are not allowed')
  if (u.protocol === 'unix:') {
    if (u.host !== '') bad('a unix URI has no authority')
    const path = decodeURIComponent(u.pathname)
    if (!path.startsWith('/') || path === '/') bad('the socket path must be absolute')
    return { address, target: `unix://${path}` }
  }
  if (u.protocol === 'tcp:') {
    const host = u.hostname.replace(/^\[|\]$/g, '')
    if (isIP(host) === 0) bad('the host must be an IP address')
    if (u.port === '') bad('a port is required')
    if (u.pathname !== '' && u.pathname !== '/') bad('a tcp URI has no path')
    return { address, target: isIP(host) === 6 ? `[${host}]:${u.port}` : `${host}:${u.port}` }
  }
  return bad(`unsupported scheme ${u.protocol}`)
}
