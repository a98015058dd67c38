/**
 * The audit log over HTTP (docs/audit.md "HTTP endpoints"), protected by the system
 * authorization policy exactly as /v1/status is:
 *
 *   GET /v1/audit/events?from&to&outcome&spiffe_id&path&format   a streamed export (audit/export/)
 *   GET /v1/audit/checkpoint                                      latest signed checkpoint per stream
 *   GET /v1/audit/proof/inclusion?stream&index&tree_size          RFC 9162 inclusion proof
 *   GET /v1/audit/proof/consistency?stream&first&second           RFC 9162 consistency proof
 *
 * Every request opens the shared audit directory afresh (a directory listing), so any worker
 * process answers for every stream the server writes — its own and the other workers'. Proof
 * sizes are bounded by the latest signed checkpoint: a proof against a root nobody signed
 * proves nothing to an auditor.
 */
import type { FastifyPluginAsync, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { PortcullisError } from '../../errors.js'
import { auditInvalid } from '../../audit/log/errors.js'
import { exportFilters } from '../../audit/export/filter.js'
import type { ExportFormat } from '../../audit/export/format.js'
import { AuditDirReader } from '../../audit/log/reader.js'

export interface AuditRouteOptions {
  guard: preHandlerAsyncHookHandler
  /** The audit directory (audit.enabled); undefined: the endpoints answer PORTCULLIS_AUDIT_UNAVAILABLE. */
  auditDir: string | undefined
}

const strings = { type: 'array', items: { type: 'string' }, maxItems: 64 }
const eventsQuery = {
  type: 'object',
  properties: {
    from: { type: 'string' },
    to: { type: 'string' },
    outcome: strings,
    spiffe_id: strings,
    path: strings,
    format: { type: 'string', enum: ['ndjson', 'csv'] },
  },
  additionalProperties: false,
}
const size = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }
const streamParam = { type: 'string', minLength: 1, maxLength: 64 }
const inclusionQuery = { type: 'object', required: ['stream', 'index'], properties: { stream: streamParam, index: size, tree_size: size }, additionalProperties: false }
const consistencyQuery = { type: 'object', required: ['stream', 'first'], properties: { stream: streamParam, first: size, second: size }, additionalProperties: false }
const hashes = { type: 'array', items: { type: 'string' } }
const checkpointSchema = {
  type: 'object',
  properties: {
    result: {
      type: 'object',
      properties: {
        streams: {
          type: 'array',
          items: { type: 'object', properties: { stream: { type: 'string' }, origin: { type: 'string' }, size: { type: 'integer' }, root: { type: 'string' }, note: { type: 'string' } } },
        },
      },
    },
  },
}
const inclusionSchema = {
  type: 'object',
  properties: { result: { type: 'object', properties: { stream: { type: 'string' }, index: { type: 'integer' }, tree_size: { type: 'integer' }, root: { type: 'string' }, inclusion_proof: hashes } } },
}
const consistencySchema = {
  type: 'object',
  properties: { result: { type: 'object', properties: { stream: { type: 'string' }, first: { type: 'integer' }, second: { type: 'integer' }, first_root: { type: 'string' }, second_root: { type: 'string' }, consistency_proof: hashes } } },
}

export { auditInvalid }

/**
 * Query-string validation failures (routes with `attachValidation`) are ours to name: 400
 * PORTCULLIS_AUDIT_INVALID, not fastify's generic code. Shared with the console's routes.
 */
export function checkAuditQuery (request: FastifyRequest): void {
  const err = request.validationError
  if (err !== undefined && err !== null) throw auditInvalid(`query: ${err.message}`)
}

export const auditRoutes: FastifyPluginAsync<AuditRouteOptions> = async (app, opts) => {
  const dir = (): string => {
    if (opts.auditDir === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'the audit log is not enabled (audit.enabled, serve --audit-dir)')
    return opts.auditDir
  }

  /** Runs fn with a fresh reader of the directory and the stream's latest checkpoint size. */
  async function withStream<T> (stream: string, fn: (s: ReturnType<AuditDirReader['stream']>, signed: number) => Promise<T>): Promise<T> {
    const reader = await AuditDirReader.open(dir())
    try {
      const s = reader.stream(stream)
      const cp = await s.latestCheckpoint()
      return await fn(s, cp?.size ?? 0)
    } finally { reader.close() }
  }

  app.get('/v1/audit/events', { preHandler: opts.guard, attachValidation: true, schema: { querystring: eventsQuery } }, async (request, reply) => {
    checkAuditQuery(request)
    const q = request.query as { from?: string, to?: string, outcome?: string[], spiffe_id?: string[], path?: string[], format?: ExportFormat }
    const filters = exportFilters(q)
    const format = q.format ?? 'ndjson'
    // the export writer (and its CSV library) is loaded on the first export, not at every start
    const { exportReadable } = await import('../../audit/export/write.js')
    // everything that can fail with a status fails here, before the first byte
    const { readable, contentType } = await exportReadable(dir(), { filters, format })
    return reply.type(contentType).header('cache-control', 'no-store').send(readable)
  })

  app.get('/v1/audit/checkpoint', { preHandler: opts.guard, schema: { response: { 200: checkpointSchema } } }, async () => {
    const reader = await AuditDirReader.open(dir())
    try {
      const streams = []
      for (const id of reader.streams()) {
        const cp = await reader.stream(id).latestCheckpoint()
        if (cp !== undefined) streams.push({ stream: id, origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note: cp.note })
      }
      return { result: { streams } }
    } finally { reader.close() }
  })

  app.get('/v1/audit/proof/inclusion', { preHandler: opts.guard, attachValidation: true, schema: { querystring: inclusionQuery, response: { 200: inclusionSchema } } }, async (request) => {
    checkAuditQuery(request)
    const q = request.query as { stream: string, index: number, tree_size?: number }
    return await withStream(q.stream, async (s, signed) => {
      const n = q.tree_size ?? signed
      if (n > signed) throw auditInvalid(`tree_size ${n} is beyond the latest signed checkpoint of stream ${q.stream} (${signed})`, 'tree_size')
      if (q.index >= n) throw auditInvalid(`index ${q.index} is not in the tree of size ${n}`, 'index')
      const proof = await s.inclusionProof(q.index, n)
      return { result: { stream: q.stream, index: q.index, tree_size: n, root: (await s.rootAt(n)).toString('base64'), inclusion_proof: proof.map((h) => h.toString('base64')) } }
    })
  })

  app.get('/v1/audit/proof/consistency', { preHandler: opts.guard, attachValidation: true, schema: { querystring: consistencyQuery, response: { 200: consistencySchema } } }, async (request) => {
    checkAuditQuery(request)
    const q = request.query as { stream: string, first: number, second?: number }
    return await withStream(q.stream, async (s, signed) => {
      const n = q.second ?? signed
      if (n > signed) throw auditInvalid(`second ${n} is beyond the latest signed checkpoint of stream ${q.stream} (${signed})`, 'second')
      if (q.first > n) throw auditInvalid(`first ${q.first} is larger than second ${n}`, 'first')
      const proof = await s.consistencyProof(q.first, n)
      return {
        result: {
          stream: q.stream,
          first: q.first,
          second: n,
          first_root: (await s.rootAt(q.first)).toString('base64'),
          second_root: (await s.rootAt(n)).toString('base64'),
          consistency_proof: proof.map((h) => h.toString('base64')),
        },
      }
    })
  })
}
