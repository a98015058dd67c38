import type { FastifyInstance } from 'fastify'
import { PortcullisError } from '../errors.js'

/** Splits "host:port" / "[::1]:port" into parts. */
export function parseAddr (addr: string): { host: string, port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr)
  if (m === null) throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `address ${JSON.stringify(addr)} must be host:port`, { key: 'addr' })
  return { host: m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2] as string), port: Number(m[3]) }
}

export async function listen (app: FastifyInstance, addr: string): Promise<string> {
  const { host, port } = parseAddr(addr)
  return app.listen({ host, port })
}
