/**
 * The decision route without the framework. `POST /v1/data/{path}` with a plain body and no
 * query string is the request Portcullis answers most, and fastify's per-request machinery
 * (routing, hooks, content-type parsing, serializer) costs more than a cached decision does.
 * This handler sits in front of fastify in the server's request listener and answers exactly
 * that request shape itself; everything else — a query string (`?pretty`, `?metrics`,
 * `?explain`, ...), a percent-encoded or unusual path, a content-encoding, a closing server, any
 * other route — goes to fastify untouched, before a byte of the body is read.
 *
 * What it answers is what the fastify route answers (test/server/fast-data.test.ts sends the
 * same requests both ways and compares): the same body parsing (parseJsonBody: depth limit,
 * JSON for any content type), the same body limit (413), the same OPA error shapes and codes
 * (errorResponse), the same metrics series, and the same decision pipeline call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { internInput } from '../cache/key.js'
import type { DecisionRequest, DecisionService } from '../decision/decide.js'
import { PortcullisError } from '../errors.js'
import type { HistogramChild, Metrics } from '../metrics/index.js'
import { parseJsonBody } from './plugins/body.js'
import { credentialsFromRaw, peerChain } from './plugins/credentials.js'
import { errorResponse } from './error-response.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

export interface FastDataOptions {
  decisions: DecisionService
  metrics?: Metrics
  bodyLimit: number
  maxDepth: number
  /** The listener requires a client certificate (TLS client_auth: require). */
  requireClientCertificate: boolean
  /** True once the app has begun to close (fastify then answers 503 itself). */
  isClosing: () => boolean
  /** Request ids shared with fastify's (one sequence for both paths). */
  genReqId: () => string
}

/** Paths taken here: plain segments only. Anything else (%, ?, #, ;, ...) is fastify's. */
const FAST_URL = /^\/v1\/data\/[A-Za-z0-9_\-./~]*$/
const MAX_URL = 2048
const ROUTE = '/v1/data/*'
const JSON_TYPE = 'application/json; charset=utf-8'
// Parsed request bodies by their text: callers repeat the same bodies, and a repeated body then
// skips parsing and (interned, see cache/key.ts) canonicalization. A pure function of the text,
// so it never goes stale; bounded in entries and in the length of a text it keeps. Small on
// purpose: hot bodies stay, and under unique traffic an entry is gone before the garbage
// collector would promote it (a larger cache measurably lengthened young-generation pauses).
const BODY_CACHE_ENTRIES = 128 // per generation (at most twice this many are kept)
const BODY_CACHE_MAX_TEXT = 1024
const SEEN_ONCE = Symbol('seen once')
const WARNING = ',"warning":{"code":"api_usage_warning","message":"\'input\' key missing from the request"}'

/** A bounded memo in two generations of Maps: when the young one fills, the old one is dropped. */
class TwoGenerationMemo<V> {
  #young = new Map<string, V>()
  #old = new Map<string, V>()
  constructor (readonly limit: number) {}

  get (key: string): V | undefined {
    const v = this.#young.get(key)
    if (v !== undefined) return v
    const aged = this.#old.get(key)
    if (aged !== undefined) {
      this.#old.delete(key)
      this.set(key, aged)
    }
    return aged
  }

  set (key: string, value: V): void {
    if (this.#young.size >= this.limit) {
      this.#old = this.#young
      this.#young = new Map()
    }
    this.#young.set(key, value)
  }
}

export function withFastDataRoute (next: RequestListener, opts: FastDataOptions): RequestListener {
  const { decisions, metrics, bodyLimit, maxDepth } = opts
  const bodies = new TwoGenerationMemo<{ input: unknown, hasInput: boolean } | typeof SEEN_ONCE>(BODY_CACHE_ENTRIES)
  const durations = new Map<number, HistogramChild>()
  const durationOf = (status: number): HistogramChild | undefined => {
    if (metrics === undefined) return undefined
    let h = durations.get(status)
    if (h === undefined) {
      const outcome = status < 400 ? 'ok' : status < 500 ? 'client_error' : 'server_error'
      h = metrics.httpDuration.child({ route: ROUTE, method: 'POST', outcome })
      durations.set(status, h)
    }
    return h
  }

  const send = (res: ServerResponse, status: number, text: string, started: number): void => {
    if (res.headersSent) return // answered already (the body limit), or the connection is gone
    if (opts.isClosing()) res.shouldKeepAlive = false
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text) })
    res.end(text)
    durationOf(status)?.observe((performance.now() - started) / 1000)
  }

  const fail = (res: ServerResponse, err: unknown, started: number): void => {
    const { error, body } = errorResponse(err, bodyLimit)
    metrics?.requestErrors.inc({ code: error.code })
    send(res, error.status, JSON.stringify(body), started)
  }

  // A body is kept (and its input interned) the second time its text is seen: one-off bodies,
  // all of them under unique traffic, cost one Map entry and are never frozen or interned.
  const parseBody = (text: string): { input: unknown, hasInput: boolean } => {
    const keep = text.length <= BODY_CACHE_MAX_TEXT
    const known = keep ? bodies.get(text) : undefined
    if (known !== undefined && known !== SEEN_ONCE) return known
    const body = parseJsonBody(text, maxDepth)
    if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) {
      throw new PortcullisError('PORTCULLIS_INPUT_INVALID', 'request body must be a JSON object {"input": ...}', { body: 'type' })
    }
    const hasInput = body !== undefined && Object.hasOwn(body, 'input')
    const input = hasInput ? (body as { input: unknown }).input : undefined
    if (!keep) return { input, hasInput }
    if (known === undefined) {
      bodies.set(text, SEEN_ONCE)
      return { input, hasInput }
    }
    const parsed = { input: internInput(input), hasInput }
    bodies.set(text, parsed)
    return parsed
  }

  const answer = (req: IncomingMessage, res: ServerResponse, path: string, text: string, started: number): void => {
    // every failure on the way, thrown or rejected, becomes an OPA-shaped error: never an allow
    try {
      const { input, hasInput } = parseBody(text)
      const request: DecisionRequest = {
        path,
        input,
        transport: 'http',
        requestId: opts.genReqId(),
      }
      const remote = req.socket.remoteAddress
      if (remote !== undefined) request.requestedBy = remote
      if (decisions.identityEnabled) request.credentials = credentialsFromRaw(req)
      decisions.decide(request).then((d) => {
        let out = d.defined ? `{"result":${JSON.stringify(d.result)},"decision_id":"${d.decision_id}"` : `{"decision_id":"${d.decision_id}"`
        if (!hasInput) out += WARNING
        send(res, 200, out + '}', started)
      }).catch((err: unknown) => { settleFailed(res, err, started) })
    } catch (err) {
      settleFailed(res, err, started)
    }
  }

  // fail(), and if even that throws, drop the connection: the request is denied either way and
  // the rest of its batch is still answered
  const settleFailed = (res: ServerResponse, err: unknown, started: number): void => {
    try {
      fail(res, err, started)
    } catch {
      res.destroy()
    }
  }

  interface Pending { req: IncomingMessage, res: ServerResponse, path: string, text: string, started: number }
  let pending: Pending[] = []
  const drain = (): void => {
    const batch = pending
    pending = []
    for (const p of batch) answer(p.req, p.res, p.path, p.text, p.started)
  }

  return (req, res) => {
    const url = req.url
    if (req.method !== 'POST' || url === undefined || url.length > MAX_URL || !FAST_URL.test(url) || opts.isClosing()) {
      next(req, res)
      return
    }
    const encoding = req.headers['content-encoding']
    if (encoding !== undefined && encoding !== 'identity') {
      next(req, res)
      return
    }
    const started = performance.now()
    if (opts.requireClientCertificate) {
      const chain = peerChain(req.socket)
      if (chain === undefined || chain.length === 0) {
        settleFailed(res, new PortcullisError('PORTCULLIS_IDENTITY_REQUIRED', 'this listener requires a client certificate', {}), started)
        req.resume()
        return
      }
    }
    const tooLarge = (): void => {
      // the rest of the body is not read: answer, then close the connection
      res.shouldKeepAlive = false
      settleFailed(res, new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `request body exceeds ${bodyLimit} bytes`, { limit: bodyLimit }), started)
      req.pause()
    }
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > bodyLimit) {
      tooLarge()
      return
    }
    const path = url.slice(9) // after '/v1/data/'
    let first: Buffer | undefined
    let more: Buffer[] | undefined
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > bodyLimit) {
        req.removeListener('data', onData)
        req.removeListener('end', onEnd)
        tooLarge()
        return
      }
      if (first === undefined) first = chunk
      else (more ??= [first]).push(chunk)
    }
    const onEnd = (): void => {
      const text = more !== undefined ? Buffer.concat(more).toString('utf8') : first !== undefined ? first.toString('utf8') : ''
      pending.push({ req, res, path, text, started })
      if (pending.length === 1) setImmediate(drain)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', () => {}) // a client that goes away mid-body: nothing to answer
  }
}
