/**
 * The compliance console's API and UI (docs/console.md; contract in "API"): every route is
 * behind the same system authorization guard as /v1/status, the static UI files included.
 *
 *   GET  /v1/console/decisions[/<stream>/<seq>]   newest-first list (cursor paging) / detail with proof
 *   GET  /v1/console/overview                     aggregates over a bounded range
 *   GET  /v1/console/integrity                    checkpoints, signatures, consistency, gaps
 *   POST /v1/console/verify, GET …/verify/<id>    full verify as a job
 *   GET  /v1/console/access-review                json | csv | html
 *   POST /v1/console/replay, GET …/replay/<id>    replay of an uploaded, signature-checked candidate
 *   GET  /ui/, /ui/*                              the built UI (ui/dist)
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { extname, join, normalize, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Busboy } from '@fastify/busboy'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import { PortcullisError, toPortcullisError } from '../../errors.js'
import type { PolicySnapshot } from '../../policy/snapshot.js'
import type { ConsoleFilter, ConsoleFilterInput } from '../../console/filter.js'
import { JobSlot, type JobRegistry } from '../../console/jobs.js'

export interface ConsoleRouteOptions {
  guard: preHandlerAsyncHookHandler
  auditDir: string | undefined
  /** audit.checkpoint.key_file: its public half verifies checkpoints; else <dir>/checkpoint-key.pub.pem. */
  checkpointKeyFile: string | undefined
  grantsPath: string
  /** The active snapshot (grants are evaluated on it). */
  snapshot: () => PolicySnapshot
  /** Loads a candidate bundle file as serve loads bundles (signature, limits); throws with the bundle's code. */
  loadCandidate: ((file: string) => Promise<PolicySnapshot>) | undefined
  maxBundleBytes: number
  strictBuiltinErrors: boolean
  /** Built UI files; default ui/dist of the package. */
  uiDir?: string
  /** Where job state lives (a worker group: the primary); default this process. */
  jobs?: JobRegistry
}

/**
 * CSRF defence for the console's POST routes: the request must carry `x-portcullis-console: 1`.
 * A custom header cannot be sent cross-site without a CORS preflight, and the console answers
 * none, so a form on another site (or a page that rebound its host name to this server) cannot
 * start a verification or a replay with the operator's credentials. The console UI sends it.
 */
const sameSiteOnly = async (request: FastifyRequest): Promise<void> => {
  if (request.headers['x-portcullis-console'] !== '1') {
    throw new PortcullisError('PORTCULLIS_CONSOLE_CROSS_SITE', 'console POST requests must carry the header x-portcullis-console: 1 (sent by the console UI)')
  }
}

const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../ui/dist/', import.meta.url))
const strings = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 64 }] }
const filterProps = {
  from: { type: 'string' },
  to: { type: 'string' },
  outcome: strings,
  caller: strings,
  path: strings,
  transport: strings,
  revision: { type: 'string' },
  cached: { type: 'string', enum: ['true', 'false'] },
}
const query = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'object', properties: { ...filterProps, ...extra }, additionalProperties: false })

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
}

function invalid (msg: string, parameter?: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_AUDIT_INVALID', msg, parameter !== undefined ? { parameter } : {})
}

/**
 * What the console's routes read and run with (the audit log reader and verifier, replay, the
 * access review and its CSV writer): imported on the first console request, not when the
 * server starts — the console is on by default on loopback, and most starts never use it.
 */
const consoleLib = async () => {
  const [filter, decisions, overview, integrity, review, exportFilter, verify, reader, replay] = await Promise.all([
    import('../../console/filter.js'),
    import('../../console/decisions.js'),
    import('../../console/overview.js'),
    import('../../console/integrity.js'),
    import('../../console/access-review.js'),
    import('../../audit/export/filter.js'),
    import('../../audit/log/verify.js'),
    import('../../audit/log/reader.js'),
    import('../../replay/replay.js'),
  ])
  return {
    ConsoleFilter: filter.ConsoleFilter,
    checkpointPublicKey: decisions.checkpointPublicKey,
    decisionDetail: decisions.decisionDetail,
    listDecisions: decisions.listDecisions,
    overview: overview.overview,
    integrity: integrity.integrity,
    accessReview: review.accessReview,
    accessReviewCsv: review.accessReviewCsv,
    accessReviewHtml: review.accessReviewHtml,
    policyGrants: review.policyGrants,
    exportFilters: exportFilter.exportFilters,
    verifyAuditDir: verify.verifyAuditDir,
    AuditDirReader: reader.AuditDirReader,
    replay: replay.replay,
  }
}
let consoleLibLoaded: ReturnType<typeof consoleLib> | undefined
const lib = async (): ReturnType<typeof consoleLib> => await (consoleLibLoaded ??= consoleLib())

function checkQuery (request: FastifyRequest): void {
  const err = request.validationError
  if (err !== undefined && err !== null) throw invalid(`query: ${err.message}`)
}

interface Upload { file: Buffer | undefined, truncated: boolean, fields: Record<string, string[]> }

export const consoleRoutes: FastifyPluginAsync<ConsoleRouteOptions> = async (app, opts) => {
  const dir = (): string => {
    if (opts.auditDir === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'the audit log is not enabled (audit.enabled, serve --audit-dir)')
    return opts.auditDir
  }
  const verifyJobs = new JobSlot<{ events_checked: number, events_total: number }>('verify', opts.jobs)
  const replayJobs = new JobSlot<{ events_read: number, events_total: number }>('replay', opts.jobs)

  // multipart bodies (the replay upload), parsed here with a size limit: the candidate bundle
  // is capped at bundles.max_bytes, fields are few and short
  app.addContentTypeParser('multipart/form-data', (request, payload, done) => {
    const upload: Upload = { file: undefined, truncated: false, fields: {} }
    let bb
    try {
      bb = new Busboy({ headers: request.headers as { 'content-type': string }, limits: { fileSize: opts.maxBundleBytes, files: 1, fields: 16, fieldSize: 1024, parts: 17 } })
    } catch (err) { done(invalid(`multipart body: ${(err as Error).message}`), undefined); return }
    bb.on('file', (name: string, stream: NodeJS.ReadableStream & { truncated: boolean }) => {
      if (name !== 'bundle') { stream.resume(); return }
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => { upload.file = Buffer.concat(chunks); upload.truncated = stream.truncated })
    })
    bb.on('field', (name: string, value: string) => { (upload.fields[name] ??= []).push(value) })
    bb.on('error', (err: Error) => done(invalid(`multipart body: ${err.message}`), undefined))
    bb.on('finish', () => done(null, upload))
    payload.pipe(bb)
  })

  const filterOf = (L: Awaited<ReturnType<typeof lib>>, q: ConsoleFilterInput): ConsoleFilter => new L.ConsoleFilter(q)

  app.get('/v1/console/decisions', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ limit: { type: 'integer', minimum: 1, maximum: 500 }, cursor: { type: 'string', maxLength: 8192 } }) } }, async (request, reply) => {
    checkQuery(request)
    const q = request.query as ConsoleFilterInput & { limit?: number, cursor?: string }
    const L = await lib()
    const page = await L.listDecisions(dir(), filterOf(L, q), q.limit ?? 50, q.cursor)
    return reply.header('cache-control', 'no-store').send(page)
  })

  app.get('/v1/console/decisions/:stream/:seq', { preHandler: opts.guard, attachValidation: true, schema: { params: { type: 'object', properties: { stream: { type: 'string', minLength: 1, maxLength: 64 }, seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } } } } }, async (request, reply) => {
    checkQuery(request)
    const p = request.params as { stream: string, seq: number }
    const d = await (await lib()).decisionDetail(dir(), p.stream, p.seq, opts.checkpointKeyFile)
    if (d === undefined) return reply.status(404).send({ code: 'resource_not_found', message: `no record ${p.stream}:${p.seq} in the audit log`, portcullis_code: 'PORTCULLIS_AUDIT_INVALID' })
    return reply.header('cache-control', 'no-store').send(d)
  })

  app.get('/v1/console/overview', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ bucket: { type: 'string', maxLength: 16 } }) } }, async (request, reply) => {
    checkQuery(request)
    const q = request.query as ConsoleFilterInput & { bucket?: string }
    const L = await lib()
    return reply.header('cache-control', 'no-store').send(await L.overview(dir(), filterOf(L, q), q.bucket))
  })

  app.get('/v1/console/integrity', { preHandler: opts.guard }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').send(await (await lib()).integrity(dir(), opts.checkpointKeyFile))
  })

  app.post('/v1/console/verify', { preHandler: [opts.guard, sameSiteOnly] }, async (_request, reply) => {
    const d = dir()
    const L = await lib()
    const key = await L.checkpointPublicKey(d, opts.checkpointKeyFile)
    const reader = await L.AuditDirReader.open(d)
    let total = 0
    try { for (const id of reader.streams()) total += await reader.stream(id).treeSize() } finally { reader.close() }
    const job = await verifyJobs.start({ events_checked: 0, events_total: total }, async (progress) => {
      return await L.verifyAuditDir(d, {
        ...(key?.source === 'configured' ? { publicKeyPem: key.pem } : {}),
        onProgress: (n) => progress({ events_checked: n, events_total: Math.max(total, n) }),
      })
    })
    return reply.status(202).send({ job })
  })

  app.get('/v1/console/verify/:id', { preHandler: opts.guard }, async (request, reply) => {
    const v = await verifyJobs.get((request.params as { id: string }).id)
    if (v === undefined) return reply.status(404).send({ code: 'resource_not_found', message: 'no such verify job (only the last one is kept)', portcullis_code: 'PORTCULLIS_AUDIT_INVALID' })
    return reply.header('cache-control', 'no-store').send(v)
  })

  app.get('/v1/console/access-review', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ format: { type: 'string', enum: ['json', 'csv', 'html'] } }) } }, async (request, reply) => {
    checkQuery(request)
    const q = request.query as ConsoleFilterInput & { format?: 'json' | 'csv' | 'html' }
    const L = await lib()
    const filter = filterOf(L, { from: q.from, to: q.to, caller: q.caller, path: q.path })
    let grants
    try { grants = L.policyGrants(opts.snapshot(), opts.grantsPath) } catch (err) {
      // a grants policy that fails is an error, never "nothing granted"
      throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `the grants policy ${opts.grantsPath} failed: ${toPortcullisError(err).message}`, { parameter: 'grants_path' })
    }
    const review = await L.accessReview(dir(), filter, grants, opts.grantsPath)
    reply.header('cache-control', 'no-store')
    if (q.format === 'csv') return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="access-review.csv"').send(L.accessReviewCsv(review))
    if (q.format === 'html') return reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").header('x-content-type-options', 'nosniff').send(L.accessReviewHtml(review))
    return reply.send(review)
  })

  // the guard runs before the body is parsed: a refused caller's upload is never buffered
  app.post('/v1/console/replay', { onRequest: [opts.guard as unknown as onRequestAsyncHookHandler, sameSiteOnly as unknown as onRequestAsyncHookHandler] }, async (request, reply) => {
    const d = dir()
    const upload = request.body as Upload | undefined
    if (upload === undefined || upload === null || typeof upload !== 'object' || upload.file === undefined || !Buffer.isBuffer(upload.file) || !('fields' in upload)) throw invalid('the request must be multipart/form-data with a `bundle` file field', 'bundle')
    if (upload.truncated) {
      return reply.status(400).send({ code: 'invalid_parameter', message: `the candidate bundle is larger than bundles.max_bytes (${opts.maxBundleBytes})`, portcullis_code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
    }
    const one = (k: string): string | undefined => upload.fields[k]?.[0]
    const L = await lib()
    const filters = L.exportFilters({ from: one('from'), to: one('to'), path: upload.fields.path, outcome: upload.fields.outcome })
    if (opts.loadCandidate === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'replay is not available on this server')
    const tmp = await mkdtemp(join(tmpdir(), 'portcullis-candidate-'))
    let snapshot: PolicySnapshot
    try {
      const file = join(tmp, 'candidate.tar.gz')
      await writeFile(file, upload.file, { mode: 0o600 })
      try { snapshot = await opts.loadCandidate(file) } catch (err) {
        const e = toPortcullisError(err)
        // the upload is the client's: a bad candidate is a 400 carrying the bundle's own code
        return reply.status(400).send({ code: 'invalid_parameter', message: e.message, portcullis_code: e.code })
      }
    } finally { await rm(tmp, { recursive: true, force: true }) }
    const job = await replayJobs.start({ events_read: 0, events_total: 0 }, async (progress) => {
      return await L.replay(d, snapshot, { filters, strictBuiltinErrors: opts.strictBuiltinErrors, onProgress: (read, total) => progress({ events_read: read, events_total: total }) })
    })
    return reply.status(202).send({ job })
  })

  app.get('/v1/console/replay/:id', { preHandler: opts.guard }, async (request, reply) => {
    const v = await replayJobs.get((request.params as { id: string }).id)
    if (v === undefined) return reply.status(404).send({ code: 'resource_not_found', message: 'no such replay job (only the last one is kept)', portcullis_code: 'PORTCULLIS_AUDIT_INVALID' })
    return reply.header('cache-control', 'no-store').send(v)
  })

  // the built UI: files only from ui/dist, no listing, strict CSP
  const uiRoot = normalize(opts.uiDir ?? DEFAULT_UI_DIR)
  const serveUi = async (rel: string, reply: FastifyReply): Promise<FastifyReply> => {
    const file = normalize(join(uiRoot, rel))
    const notFound = (): FastifyReply => reply.status(404).send({ code: 'resource_not_found', message: `/ui/${rel} is not a console file`, portcullis_code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
    if (!file.startsWith(uiRoot.endsWith(sep) ? uiRoot : uiRoot + sep)) return notFound()
    let body: Buffer
    try {
      if (!(await stat(file)).isFile()) return notFound()
      body = await readFile(file)
    } catch { return notFound() }
    const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream'
    return reply
      .type(type)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      // hashed asset names never change content; index.html must be revalidated to pick up a new build
      .header('cache-control', rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(body)
  }
  app.get('/ui', { preHandler: opts.guard }, async (_request, reply) => await serveUi('index.html', reply))
  app.get('/ui/*', { preHandler: opts.guard }, async (request, reply) => {
    const rel = (request.params as { '*': string })['*']
    return await serveUi(rel === '' ? 'index.html' : rel, reply)
  })
}
