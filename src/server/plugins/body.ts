/**
 * Request bodies are parsed as JSON whatever the content type, as OPA does, after a linear
 * scan that refuses nesting deeper than the configured limit (deep nesting would otherwise
 * exhaust the parser's stack). gzip/deflate-encoded bodies are inflated as they stream, and
 * fastify's body limit applies to the inflated size, so a gzip bomb stops at the limit.
 */
import { createGunzip, createInflate } from 'node:zlib'
import type { FastifyInstance } from 'fastify'
import { PortcullisError } from '../../errors.js'
import { JsonInputError, parseJsonInput } from '../../json-input.js'

export { jsonDepthExceeds } from '../../json-input.js'

export function parseJsonBody (text: string, maxDepth: number): unknown {
  if (text.trim() === '') return undefined
  try {
    return parseJsonInput(text, maxDepth)
  } catch (err) {
    if (!(err instanceof JsonInputError)) throw err
    throw new PortcullisError('PORTCULLIS_INPUT_INVALID', `request body ${err.message}`, err.problem === 'too-deep' ? { limit: maxDepth } : { problem: err.problem })
  }
}

export function registerBodyHandling (app: FastifyInstance, opts: { maxDepth: number }): void {
  // callback style: no promise per request on the hot path
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const encoding = request.headers['content-encoding']
    if (encoding === undefined || encoding === 'identity') {
      done(null, payload)
      return
    }
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      done(new PortcullisError('PORTCULLIS_INPUT_INVALID', `unsupported content-encoding ${JSON.stringify(encoding)} (gzip, deflate or identity)`, { header: 'content-encoding' }))
      return
    }
    const inflate = encoding === 'gzip' ? createGunzip() : createInflate()
    // fastify compares content-length with the encoded bytes received and the body limit with
    // the inflated bytes it reads from the stream returned here.
    const counted = inflate as typeof inflate & { receivedEncodedLength: number }
    counted.receivedEncodedLength = 0
    payload.on('data', (c: Buffer) => { counted.receivedEncodedLength += c.length })
    payload.on('error', (err) => inflate.destroy(err))
    inflate.on('error', () => {})
    done(null, payload.pipe(inflate))
  })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string, opts.maxDepth))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
}
