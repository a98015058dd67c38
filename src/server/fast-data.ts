/**
 * The decision route without the framework: a socket shell around the Data API adapter
 * (data-api.ts). `POST /v1/data/{path}` with no query string and no content-encoding is the
 * request Portcullis answers most, and fastify's per-request machinery (routing, hooks,
 * content-type parsing, serializer) costs more than a cached decision does. This listener sits
 * in front of fastify and reads that request's body itself; everything else — a query string
 * (`?pretty`, `?metrics`, `?explain`, ...), a content-encoding, a closing server, any other
 * route — goes to fastify untouched, before a byte of the body is read.
 *
 * The path, the body checks, the DecisionRequest, the response body, the error mapping, the
 * error count and log are the adapter's, the same functions fastify's route calls; this file
 * only reads bytes (with the same body limit, 413), keeps parsed bodies, batches a turn's
 * requests and writes bytes. test/server/fast-data.test.ts sends the same requests to a server
 * with and without this route and compares the answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { internInput } from '../cache/key.js'
import { PortcullisError } from '../errors.js'
import type { HistogramChild, Metrics } from '../metrics/index.js'
import { JSON_TYPE, type DataApi, type V1Body } from './data-api.js'

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

export interface FastDataOptions {
  api: DataApi
  metrics?: Metrics
  bodyLimit: number
  /** True once the app has begun to close (fastify then answers 503 itself). */
  isClosing: () => boolean
  /** Request ids shared with fastify's (one sequence for both paths). */
  genReqId: () => string
}

/** Paths taken here: no query string or fragment (percent-encoded paths too: the adapter decodes them as fastify's route does). */
const FAST_URL = /^\/v1\/data\/[A-Za-z0-9_\-./~%!$&'()*+,;=:@]*$/
const MAX_URL = 2048
const ROUTE = '/v1/data/*'
// Parsed request bodies by their text: callers repeat the same bodies, and a repeated body then
// skips parsing and (interned, see cache/key.ts) canonicalization. A pure function of the text,
// so it never goes stale; bounded in entries and in the length of a text it keeps. Small on
// purpose: hot bodies stay, and under unique traffic an entry is gone before the garbage
// collector would promote it (a larger cache measurably lengthened young-generation pauses).
const BODY_CACHE_ENTRIES = 128 // per generation (at most twice this many are kept)
const BODY_CACHE_MAX_TEXT = 1024
const SEEN_ONCE = Symbol('seen once')

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
  const { api, metrics, bodyLimit } = opts
  const bodies = new TwoGenerationMemo<V1Body | typeof SEEN_ONCE>(BODY_CACHE_ENTRIES)
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

  // A body is kept (and its input interned) the second time its text is seen: one-off bodies,
  // all of them under unique traffic, cost one Map entry and are never frozen or interned.
  const parseBody = (text: string): V1Body => {
    const keep = text.length <= BODY_CACHE_MAX_TEXT
    const known = keep ? bodies.get(text) : undefined
    if (known !== undefined && known !== SEEN_ONCE) return known
    const body = api.v1Body(api.parseBody(text))
    if (!keep) return body
    if (known === undefined) {
      bodies.set(text, SEEN_ONCE)
      return body
    }
    const parsed = { input: internInput(body.input), hasInput: body.hasInput }
    bodies.set(text, parsed)
    return parsed
  }

  const answer = (req: IncomingMessage, res: ServerResponse, path: string, text: string, started: number, requestId: string): void => {
    // every failure on the way, thrown or rejected, becomes an OPA-shaped error: never an allow
    try {
      api.v1(req, path, parseBody(text), requestId, started).then((out) => {
        send(res, 200, out, started)
      }).catch((err: unknown) => { settleFailed(res, err, started, requestId, req) })
    } catch (err) {
      settleFailed(res, err, started, requestId, req)
    }
  }

  // a request that failed before its decision is audited as a refusal first, then answered with
  // the failure (DataApi.refuse, as on the framework route); if even that throws, drop the
  // connection: the request is denied either way and the rest of its batch is still answered
  const settleFailed = (res: ServerResponse, err: unknown, started: number, requestId?: string, req?: IncomingMessage): void => {
    api.refuse(err, req, requestId, ({ status, text }) => { send(res, status, text, started) }).catch(() => { res.destroy() })
  }

  interface Pending { req: IncomingMessage, res: ServerResponse, path: string, text: string, started: number, requestId: string }
  let pending: Pending[] = []
  const drain = (): void => {
    const batch = pending
    pending = []
    for (const p of batch) answer(p.req, p.res, p.path, p.text, p.started, p.requestId)
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
    const requestId = opts.genReqId()
    // Client certificates were judged by the listener's gate (tls.ts) before either route saw
    // the request. The order of the rest is fastify's: path (route hook), body limit, body.
    let path: string
    try {
      path = api.pathOf(url, '/v1/data')
    } catch (err) {
      res.shouldKeepAlive = false
      settleFailed(res, err, started, requestId, req)
      req.pause()
      return
    }
    const tooLarge = (): void => {
      // the rest of the body is not read: answer, then close the connection
      res.shouldKeepAlive = false
      settleFailed(res, new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `request body exceeds ${bodyLimit} bytes`, { limit: bodyLimit }), started, requestId, req)
      req.pause()
    }
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > bodyLimit) {
      tooLarge()
      return
    }
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
      pending.push({ req, res, path, text, started, requestId })
      if (pending.length === 1) setImmediate(drain)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', () => {}) // a client that goes away mid-body: nothing to answer
  }
}
