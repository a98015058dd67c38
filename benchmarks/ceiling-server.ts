/**
 * The ceiling: a server on the same machine answering a constant decision body to the same
 * requests, with the same worker count.
 *   fastify (default) — fastify parsing the JSON body and serializing a constant through a
 *                       response schema: the ceiling the decision-service targets are read against;
 *   node              — bare node:http doing the same (reads and parses the body, writes the
 *                       constant): what the platform itself allows, shown for reference.
 *   node --import tsx benchmarks/ceiling-server.ts <port> <workers> [fastify|node]
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import Fastify from 'fastify'

const port = Number(process.argv[2] ?? 0)
const workers = Number(process.argv[3] ?? 1)
const kind = process.argv[4] ?? 'fastify'
const constant = { result: true, decision_id: '00000000-0000-0000-0000-000000000000' }

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill(); process.exit(0) })
} else if (kind === 'node') {
  const text = JSON.stringify(constant)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        res.writeHead(400).end()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    })
  })
  server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${port}\n`) })
  process.on('SIGTERM', () => { server.close(() => process.exit(0)) })
} else {
  const app = Fastify({ bodyLimit: 1024 * 1024 })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try { done(null, JSON.parse(body as string)) } catch (err) { done(err as Error, undefined) }
  })
  app.post('/v1/data/*', {
    schema: { response: { 200: { type: 'object', properties: { result: {}, decision_id: { type: 'string' } } } } },
  }, async () => constant)
  await app.listen({ host: '127.0.0.1', port })
  process.stdout.write(`listening ${port}\n`)
  process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
}
