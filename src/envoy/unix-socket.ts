/**
 * A unix socket left behind by a crashed process blocks the next bind (grpc-js reports
 * EADDRINUSE): the kernel keeps the socket file, nobody listens on it. Before binding
 * `unix:/path` the file is probed the way a client would: if nothing accepts a connection
 * (ECONNREFUSED) it is stale and removed; if something accepts, another process is serving
 * there and the start fails with a clear error instead of stealing its address; a path that is
 * not a socket is never removed.
 */
import { lstat, unlink } from 'node:fs/promises'
import { connect } from 'node:net'
import { PortcullisError } from '../errors.js'

/** How long a connection probe may take before the socket is taken to be in use. */
const PROBE_TIMEOUT_MS = 2000

/** The file path of a grpc-js unix address: `unix:/abs`, `unix:///abs` or `unix:relative`. */
export function unixSocketPath (addr: string): string {
  const rest = addr.slice('unix:'.length)
  return rest.startsWith('//') ? rest.slice(2) : rest
}

function listenFailed (path: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): PortcullisError {
  return new PortcullisError('PORTCULLIS_LISTEN_FAILED', `unix socket ${path}: ${message}`, { path, ...extra }, { cause })
}

/**
 * Removes a stale socket file at `path`. Resolves to `absent` (nothing there) or `removed`;
 * rejects with PORTCULLIS_LISTEN_FAILED when the path is in use or is not a socket.
 */
export async function clearStaleUnixSocket (path: string): Promise<'absent' | 'removed'> {
  let st
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent'
    throw listenFailed(path, `cannot inspect the path: ${(err as Error).message}`, {}, err)
  }
  if (!st.isSocket()) throw listenFailed(path, 'the path exists and is not a socket; it is left alone (remove it or choose another address)', { reason: 'not_a_socket' })
  const probe = await new Promise<'refused' | 'accepted' | NodeJS.ErrnoException>((resolve) => {
    const socket = connect(path)
    const timer = setTimeout(() => { socket.destroy(); resolve('accepted') }, PROBE_TIMEOUT_MS)
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve('accepted') })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : err)
    })
  })
  if (probe === 'accepted') throw listenFailed(path, 'another process is listening on it (a second instance?); not taking its address', { reason: 'in_use' })
  if (probe !== 'refused') throw listenFailed(path, `cannot probe the socket: ${probe.message}`, { reason: 'probe_failed', errno: probe.code }, probe)
  try {
    await unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw listenFailed(path, `cannot remove the stale socket: ${(err as Error).message}`, {}, err)
  }
  return 'removed'
}
