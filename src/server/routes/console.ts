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
import { JobSlot, type JobLease, type JobRegistry } from '../../console/jobs.js'
import { configureConsoleCaches } from '../../console/cache.js'
import { hostCheck, type HostCheckOptions } from '../plugins/host-check.js'
import { auditInvalid as invalid, checkAuditQuery } from './audit.js'

export interface ConsoleRouteOptions {
  guard: preHandlerAsyncHookHandler
  auditDir: string | undefined
  /** audit.checkpoint.key_file: its public half verifies checkpoints; else <dir>/checkpoint-key.pub.pem. */
  checkpointKeyFile: string | undefined
  /** audit.checkpoint.previous_public_key_files: after a key rotation, older checkpoints verify with these too. */
  checkpointPreviousKeyFiles?: string[]
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
  /** The Host names the console answers for (DNS-rebinding defence, plugins/host-check.ts). */
  host?: HostCheckOptions
  /** console.cache_max_bytes: the bound on the console's caches (console/cache.ts). */
  cacheMaxBytes?: number
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
    previousPublicKeyPems: decisions.previousPublicKeyPems,
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

interface Upload { file: Buffer | undefined, truncated: boolean, fields: Record<string, string[]> }

/** The replay slot as one upload holds it: `taken` once the handler owns it, `closed` once the response closed. */
interface ReplayHold { lease: JobLease<{ events_read: number, events_total: number }>, taken: boolean, closed: boolean }

export const consoleRoutes: FastifyPluginAsync<ConsoleRouteOptions> = async (app, opts) => {
  // first of every console route's hooks (pages, assets, every API call): a request for another
  // host name is refused before the guard evaluates anything or a body is read
  app.addHook('onRequest', hostCheck(opts.host ?? {}))
  configureConsoleCaches(opts.cacheMaxBytes)
  const dir = (): string => {
    if (opts.auditDir === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'the audit log is not enabled (audit.enabled, serve --audit-dir)')
    return opts.auditDir
  }
  const verifyJobs = new JobSlot<{ events_checked: number, events_total: number }>('verify', opts.jobs)
  const replayJobs = new JobSlot<{ events_read: number, events_total: number }>('replay', opts.jobs)
  const replayLeases = new WeakMap<FastifyRequest, ReplayHold>()

  // multipart bodies (the replay upload), parsed here with a size limit: the candidate bundle
  // is capped at bundles.max_bytes, fields are few and short. Only the replay route takes
  // multipart, and only once it holds the replay slot (claimReplaySlot): one upload is buffered
  // at a time, never N.
  app.addContentTypeParser('multipart/form-data', (request, payload, done) => {
    const upload: Upload = { file: undefined, truncated: false, fields: {} }
    let settled = false
    const finish = (err: PortcullisError | null): void => {
      if (settled) return
      settled = true
      // a body that cannot be read frees the replay slot before the error is answered
      if (err !== null) { replayLeases.get(request)?.lease.release(err); done(err, undefined) }
      else done(null, upload)
    }
    if (replayLeases.get(request)?.lease.held !== true) { finish(invalid('a multipart body is read only by a replay upload holding the replay slot')); return }
    let bb
    try {
      bb = new Busboy({ headers: request.headers as { 'content-type': string }, limits: { fileSize: opts.maxBundleBytes, files: 1, fields: 16, fieldSize: 1024, parts: 17 } })
    } catch (err) { finish(invalid(`multipart body: ${(err as Error).message}`)); return }
    bb.on('file', (name: string, stream: NodeJS.ReadableStream & { truncated: boolean }) => {
      if (name !== 'bundle') { stream.resume(); return }
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => { upload.file = Buffer.concat(chunks); upload.truncated = stream.truncated })
    })
    bb.on('field', (name: string, value: string) => { (upload.fields[name] ??= []).push(value) })
    bb.on('error', (err: Error) => finish(invalid(`multipart body: ${err.message}`)))
    bb.on('finish', () => finish(null))
    // a client that goes away mid-body: the upload ends here (the slot is released when the response closes)
    payload.on('error', (err: Error) => { finish(invalid(`multipart body: ${err.message}`)); bb.destroy() })
    payload.on('aborted', () => { finish(invalid('multipart body: the client aborted the upload')); bb.destroy() })
    // an aborted body emits nothing more: finish now, or the request (and its slot) never ends
    if (payload.destroyed || payload.readableAborted || request.raw.socket?.destroyed === true) { finish(invalid('multipart body: the client aborted the upload')); bb.destroy(); return }
    payload.pipe(bb)
  })

  const filterOf = (L: Awaited<ReturnType<typeof lib>>, q: ConsoleFilterInput): ConsoleFilter => new L.ConsoleFilter(q)

  app.get('/v1/console/decisions', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ limit: { type: 'integer', minimum: 1, maximum: 500 }, cursor: { type: 'string', maxLength: 8192 } }) } }, async (request, reply) => {
    checkAuditQuery(request)
    const q = request.query as ConsoleFilterInput & { limit?: number, cursor?: string }
    const L = await lib()
    const page = await L.listDecisions(dir(), filterOf(L, q), q.limit ?? 50, q.cursor)
    return reply.header('cache-control', 'no-store').send(page)
  })

  app.get('/v1/console/decisions/:stream/:seq', { preHandler: opts.guard, attachValidation: true, schema: { params: { type: 'object', properties: { stream: { type: 'string', minLength: 1, maxLength: 64 }, seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } } } } }, async (request, reply) => {
    checkAuditQuery(request)
    const p = request.params as { stream: string, seq: number }
    const d = await (await lib()).decisionDetail(dir(), p.stream, p.seq, opts.checkpointKeyFile)
    if (d === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_NOT_FOUND', `no record ${p.stream}:${p.seq} in the audit log`, { stream: p.stream, seq: p.seq })
    return reply.header('cache-control', 'no-store').send(d)
  })

  app.get('/v1/console/overview', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ bucket: { type: 'string', maxLength: 16 } }) } }, async (request, reply) => {
    checkAuditQuery(request)
    const q = request.query as ConsoleFilterInput & { bucket?: string }
    const L = await lib()
    return reply.header('cache-control', 'no-store').send(await L.overview(dir(), filterOf(L, q), q.bucket))
  })

  app.get('/v1/console/integrity', { preHandler: opts.guard }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').send(await (await lib()).integrity(dir(), opts.checkpointKeyFile, opts.checkpointPreviousKeyFiles ?? []))
  })

  app.post('/v1/console/verify', { preHandler: [opts.guard, sameSiteOnly] }, async (_request, reply) => {
    const d = dir()
    const L = await lib()
    const key = await L.checkpointPublicKey(d, opts.checkpointKeyFile)
    const previous = key?.source === 'configured' ? await L.previousPublicKeyPems(opts.checkpointPreviousKeyFiles ?? []) : []
    const reader = await L.AuditDirReader.open(d)
    let total = 0
    try { for (const id of reader.streams()) total += await reader.stream(id).treeSize() } finally { reader.close() }
    const job = await verifyJobs.start({ events_checked: 0, events_total: total }, async (progress) => {
      return await L.verifyAuditDir(d, {
        ...(key?.source === 'configured' ? { publicKeyPem: [key.pem, ...previous] } : {}),
        onProgress: (n) => progress({ events_checked: n, events_total: Math.max(total, n) }),
      })
    })
    return reply.status(202).send({ job })
  })

  app.get('/v1/console/verify/:id', { preHandler: opts.guard }, async (request, reply) => {
    const v = await verifyJobs.get((request.params as { id: string }).id)
    if (v === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_NOT_FOUND', 'no such verify job (only the last one is kept)')
    return reply.header('cache-control', 'no-store').send(v)
  })

  app.get('/v1/console/access-review', { preHandler: opts.guard, attachValidation: true, schema: { querystring: query({ format: { type: 'string', enum: ['json', 'csv', 'html'] } }) } }, async (request, reply) => {
    checkAuditQuery(request)
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

  // The replay slot is claimed in onRequest, after the guard and the same-site check and before
  // a byte of the body is read: while one candidate is uploaded, compiled or replayed, every
  // other upload is refused with 409 PORTCULLIS_CONSOLE_BUSY from its headers alone (N uploads
  // never hold N × bundles.max_bytes). The slot is released on every path that does not start
  // the job: the handler's errors (finally), a body that fails or never completes (client
  // abort, request timeout: the response closes before the handler took the lease).
  const claimReplaySlot = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    dir()
    if (opts.loadCandidate === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'replay is not available on this server')
    const lease = await replayJobs.claim({ events_read: 0, events_total: 0 })
    const hold: ReplayHold = { lease, taken: false, closed: false }
    replayLeases.set(request, hold)
    const gone = (): void => {
      hold.closed = true
      if (!hold.taken) lease.release(new PortcullisError('PORTCULLIS_CONSOLE_BUSY', 'the replay upload ended before its body was read (client aborted or request timed out)'))
    }
    reply.raw.once('close', gone)
    // The client may have gone while the guard or the claim (a round trip to the primary in a
    // worker group) was running: 'close' has fired already and will not again, and the body
    // parser never finishes an aborted body — the slot would stay claimed for good.
    if (request.raw.destroyed || request.raw.socket?.destroyed === true || reply.raw.writableEnded) {
      gone()
      throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', 'the replay upload ended before its body was read (client aborted)')
    }
  }

  // any error answered for this request before the handler took the slot (a body fastify
  // refuses, a parser error) frees it before the answer leaves
  const releaseOnError = async (request: FastifyRequest, _reply: FastifyReply, error: Error): Promise<void> => {
    const hold = replayLeases.get(request)
    if (hold !== undefined && !hold.taken) hold.lease.release(error)
  }

  // the guard runs before the body is parsed: a refused caller's upload is never buffered
  app.post('/v1/console/replay', { onRequest: [opts.guard as unknown as onRequestAsyncHookHandler, sameSiteOnly as unknown as onRequestAsyncHookHandler, claimReplaySlot as unknown as onRequestAsyncHookHandler], onError: releaseOnError }, async (request, reply) => {
    const hold = replayLeases.get(request)
    if (hold === undefined || !hold.lease.held) throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', 'the replay slot is not held by this request')
    hold.taken = true
    const lease = hold.lease
    // the slot is released before any answer leaves: a client that retries on the answer finds it free
    const refuse = (err: PortcullisError): FastifyReply => {
      lease.release(err)
      return reply.status(400).send({ code: 'invalid_parameter', message: err.message, portcullis_code: err.code })
    }
    try {
      const d = dir()
      const upload = request.body as Upload | undefined
      if (upload === undefined || upload === null || typeof upload !== 'object' || upload.file === undefined || !Buffer.isBuffer(upload.file) || !('fields' in upload)) throw invalid('the request must be multipart/form-data with a `bundle` file field', 'bundle')
      if (upload.truncated) return refuse(new PortcullisError('PORTCULLIS_BUNDLE_TOO_LARGE', `the candidate bundle is larger than bundles.max_bytes (${opts.maxBundleBytes})`))
      const one = (k: string): string | undefined => upload.fields[k]?.[0]
      const L = await lib()
      const filters = L.exportFilters({ from: one('from'), to: one('to'), path: upload.fields.path, outcome: upload.fields.outcome })
      const load = opts.loadCandidate
      if (load === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', 'replay is not available on this server')
      const tmp = await mkdtemp(join(tmpdir(), 'portcullis-candidate-'))
      let snapshot: PolicySnapshot | PortcullisError
      try {
        const file = join(tmp, 'candidate.tar.gz')
        await writeFile(file, upload.file, { mode: 0o600 })
        try { snapshot = await load(file) } catch (err) { snapshot = toPortcullisError(err) }
      } finally { await rm(tmp, { recursive: true, force: true }) }
      // the upload is the client's: a bad candidate is a 400 carrying the bundle's own code
      if (snapshot instanceof PortcullisError) return refuse(snapshot)
      const candidate = snapshot
      // the client went away while the candidate loaded: nobody can read the job, do not run it
      if (hold.closed) throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', 'the replay upload was abandoned before its job started')
      const job = lease.start(async (progress) => {
        return await L.replay(d, candidate, { filters, strictBuiltinErrors: opts.strictBuiltinErrors, onProgress: (read, total) => progress({ events_read: read, events_total: total }) })
      })
      return reply.status(202).send({ job })
    } catch (err) {
      // before the error handler answers
      lease.release(err)
      throw err
    } finally {
      lease.release()
    }
  })

  app.get('/v1/console/replay/:id', { preHandler: opts.guard }, async (request, reply) => {
    const v = await replayJobs.get((request.params as { id: string }).id)
    if (v === undefined) throw new PortcullisError('PORTCULLIS_AUDIT_NOT_FOUND', 'no such replay job (only the last one is kept)')
    return reply.header('cache-control', 'no-store').send(v)
  })

  // the built UI: files only from ui/dist, no listing, strict CSP
  const uiRoot = normalize(opts.uiDir ?? DEFAULT_UI_DIR)
  const serveUi = async (rel: string, reply: FastifyReply): Promise<FastifyReply> => {
    const file = normalize(join(uiRoot, rel))
    // as any other URL that is not an endpoint (the app's not-found answer), from the registry
    const notFound = (): never => { throw new PortcullisError('PORTCULLIS_POLICY_PATH_NOT_FOUND', `/ui/${rel} is not a console file`) }
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
