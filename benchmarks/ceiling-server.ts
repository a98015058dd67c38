/**
 * The ceiling: fastify on the same machine answering a constant decision body to the same
 * requests, with the same worker count. Nothing Portcullis does can be faster than this.
 *   node --import tsx benchmarks/ceiling-server.ts <port> <workers>
 */
import cluster from 'node:cluster'
import Fastify from 'fastify'

const port = Number(process.argv[2] ?? 0)
const workers = Number(process.argv[3] ?? 1)

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill(); process.exit(0) })
} else {
  const app = Fastify({ bodyLimit: 1024 * 1024 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try { done(null, JSON.parse(body as string)) } catch (err) { done(err as Error, undefined) }
  })
  app.post('/v1/data/*', {
    schema: { response: { 200: { type: 'object', properties: { result: {}, decision_id: { type: 'string' } } } } },
  }, async () => ({ result: true, decision_id: '00000000-0000-0000-0000-000000000000' }))
  await app.listen({ host: '127.0.0.1', port })
  process.stdout.write(`listening ${port}\n`)
  process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
}
