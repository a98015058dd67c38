/**
 * A small fastify app with routes like Portcullis's (a coerced querystring, a body, response
 * schemas that drop unknown keys) for test/server/route-code.test.ts, and its recording mode.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { routeCompilers, type RouteCodeOptions } from '../../src/server/route-code.js'

/** Routes like Portcullis's: a coerced querystring, a body, and response schemas that drop unknown keys. */
export function app (code: RouteCodeOptions | undefined, itemsMax = 10): FastifyInstance {
  const a = Fastify({ logger: false, ajv: { customOptions: { validateSchema: false } }, ...(code !== undefined ? { schemaController: { compilersFactory: routeCompilers(code) } } : {}) })
  a.get('/items', {
    schema: {
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: itemsMax }, tag: { type: 'string' } } },
      response: { 200: { type: 'object', properties: { limit: { type: 'integer' }, tag: { type: 'string' }, items: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' } } } } } } },
    },
  }, async (request) => {
    const q = request.query as { limit?: number, tag?: string }
    return { limit: q.limit, tag: q.tag, secret: 'never serialized', items: [{ id: 1, extra: 'dropped' }] }
  })
  a.post('/echo', {
    schema: {
      body: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 8 }, n: { type: 'number' } }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { name: { type: 'string' }, n: { type: 'number' } } } },
    },
  }, async (request) => request.body)
  return a
}

/** For the recording child process: compile the app's routes in record mode, then exit (which writes the table). */
export async function recordInto (file: string): Promise<void> {
  const a = app({ record: file })
  await a.ready()
  await a.close()
}
