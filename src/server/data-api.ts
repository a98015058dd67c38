/**
 * The one adapter of OPA's Data API (v1/server/server.go). Both socket shells use it — the
 * fastify routes (routes/data.ts, routes/batch.ts) and the framework-free decision route
 * (fast-data.ts) — for everything between the bytes and the decision pipeline: the path
 * (decoded from the raw URL as OPA decodes it), the body checks, the DecisionRequest, the
 * response body, the error mapping, the error count and the error log. A shell only moves
 * bytes, so the two cannot drift (they once did: `POST /v1/data/` answered 200 on one and 404
 * on the other).
 */
import type { IncomingMessage } from 'node:http'
import type { Decision, DecisionRequest, DecisionService } from '../decision/decide.js'
import { resultText, wasReported } from '../decision/decide.js'
import { ResultSlots } from '../decision/result-json.js'
import { dataPathFromUrl } from '../decision/path.js'
import { PortcullisError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import { VERSION } from '../version.js'
import { errorResponse } from './error-response.js'
import { JsonInputError, parseJsonInput } from '../json-input.js'
import { parseJsonBody } from './plugins/body.js'
import { credentialsFromRaw } from './plugins/credentials.js'

export const JSON_TYPE = 'application/json; charset=utf-8'
const MISSING_INPUT = { code: 'api_usage_warning', message: "'input' key missing from the request" }
const WARNING_TEXT = `,"warning":${JSON.stringify(MISSING_INPUT)}`

/** What a v1 request asked for beyond the decision (query parameters; the fast route has none). */
export interface V1Options {
  strict?: boolean
  explain?: boolean
  metrics?: boolean
  provenance?: boolean
  pretty?: boolean
}

/**
 * A parsed v1 request: its input, and whether it counts as having one — false adds OPA's
 * api_usage_warning (a POST body without `input`, or with `"input": null`; OPA's GET never warns).
 */
export interface V1Body {
  input: unknown
  hasInput: boolean
}

export interface DataApiOptions {
  decisions: DecisionService
  metrics?: Metrics
  logger: Logger
  bodyLimit: number
  maxDepth: number
}

export interface Failure {
  error: PortcullisError
  status: number
  /** The OPA-shaped error body, as JSON text. */
  text: string
}

/** Errors made after a decision was recorded (an undefined v0 answer): not audited twice. */
const afterDecision = new WeakSet<object>()

/** The URL of a decision request (the Data API's decision routes), for auditing its failures. */
function decisionRoute (url: string): { prefix: string, transport: 'http' | 'batch' } | undefined {
  const q = url.indexOf('?')
  const pathname = q === -1 ? url : url.slice(0, q)
  for (const prefix of ['/v1/batch/data', '/v1/data', '/v0/data']) {
    if (pathname === prefix || pathname.startsWith(prefix + '/')) return { prefix, transport: prefix === '/v1/batch/data' ? 'batch' : 'http' }
  }
  return pathname === '/' ? { prefix: '/', transport: 'http' } : undefined
}

/** A query parameter as the router gives it: absent, once, or repeated. */
export type QueryValue = string | string[] | undefined

/**
 * OPA's boolean query parameters (server.go getBoolParam): true when present without a value
 * (`?pretty`) or when any of its values is "true" in any case; `?pretty=1` is false.
 */
export const queryFlag = (v: QueryValue): boolean => {
  if (v === undefined) return false
  const values = typeof v === 'string' ? [v] : v
  if (values.length === 1 && values[0] === '') return true
  return values.some((x) => x.toLowerCase() === 'true')
}

/** The last value of a query parameter (OPA reads the last `?input=`). */
export const lastValue = (v: QueryValue): string | undefined => typeof v === 'string' ? v : v?.[v.length - 1]

/** OPA's explain modes (server.go getExplain); any other value is off. */
export const explainMode = (v: QueryValue): boolean => {
  if (v === undefined) return false
  return (typeof v === 'string' ? [v] : v).some((x) => x === 'notes' || x === 'fails' || x === 'full' || x === 'debug')
}

export class DataApi {
  readonly decisions: DecisionService
  readonly #metrics: Metrics | undefined
  readonly #log: Logger
  readonly #bodyLimit: number
  readonly #maxDepth: number

  constructor (opts: DataApiOptions) {
    this.decisions = opts.decisions
    this.#metrics = opts.metrics
    this.#log = opts.logger
    this.#bodyLimit = opts.bodyLimit
    this.#maxDepth = opts.maxDepth
  }

  /**
   * The Data API path of a raw request URL under `prefix` (e.g. `/v1/data`): the still-encoded
   * rest of the URL path, decoded segment by segment as OPA does (decision/path.ts). Taken from
   * the raw URL, not from a router's decoded parameter, so both shells see the same path.
   */
  pathOf (url: string | undefined, prefix: string): string {
    const raw = url ?? ''
    const q = raw.indexOf('?')
    const pathname = q === -1 ? raw : raw.slice(0, q)
    return dataPathFromUrl(pathname.startsWith(prefix) ? pathname.slice(prefix.length) : pathname)
  }

  /** JSON text of a request body (depth-limited; JSON whatever the content type, as OPA). */
  parseBody (text: string): unknown {
    return parseJsonBody(text, this.#maxDepth)
  }

  /**
   * The `?input=` of a GET, read by the rules bodies are read by (json-input.ts: nesting bounded,
   * a number beyond a double refused, big integers kept exact) — JSON.parse would turn `1e400`
   * into Infinity, which the policy sees as null. Empty is malformed, as OPA answers it.
   */
  queryInput (text: string): unknown {
    if (text.trim() === '') throw new PortcullisError('PORTCULLIS_INPUT_INVALID', 'query parameter input is empty', { parameter: 'input' })
    try {
      return parseJsonInput(text, this.#maxDepth)
    } catch (err) {
      if (!(err instanceof JsonInputError)) throw err
      throw new PortcullisError('PORTCULLIS_INPUT_INVALID', `query parameter input ${err.message}`, err.problem === 'too-deep' ? { parameter: 'input', limit: this.#maxDepth } : { parameter: 'input', problem: err.problem })
    }
  }

  /**
   * The v1 body checks: no body, or a JSON object whose `input` member is the input. As OPA
   * reads the body into `{Input *interface{}}` (v1/server/types DataRequestV1), a body `null`
   * and `"input": null` both mean no input (undefined to the policy, with the warning).
   */
  v1Body (body: unknown): V1Body {
    if (body === undefined || body === null) return { input: undefined, hasInput: false }
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw new PortcullisError('PORTCULLIS_INPUT_INVALID', 'request body must be a JSON object {"input": ...}', { body: 'type' })
    }
    const input = Object.hasOwn(body, 'input') ? (body as { input: unknown }).input : undefined
    return input === undefined || input === null ? { input: undefined, hasInput: false } : { input, hasInput: true }
  }

  /** The pipeline's request for an HTTP request. */
  request (raw: IncomingMessage, path: string, input: unknown, requestId: string, opts: { strict?: boolean, explain?: boolean, transport?: 'http' | 'batch', batchDecisionId?: string } = {}): DecisionRequest {
    const req: DecisionRequest = { path, input, transport: opts.transport ?? 'http', requestId }
    if (opts.strict === true) req.strictBuiltinErrors = true
    if (opts.explain === true) req.explain = true
    if (opts.batchDecisionId !== undefined) req.batchDecisionId = opts.batchDecisionId
    const remote = raw.socket.remoteAddress
    if (remote !== undefined) req.requestedBy = remote
    // W3C trace context, for the audit event's trace_id / span_id (validated there)
    const traceparent = raw.headers.traceparent
    if (typeof traceparent === 'string') req.traceparent = traceparent
    // credentials are only gathered when an identity plugin will read them
    if (this.decisions.identityEnabled) req.credentials = credentialsFromRaw(raw)
    return req
  }

  /**
   * A v1 decision, answered as JSON text (status 200). `startedMs` is the request's start on
   * performance.now()'s clock (for `?metrics`). An empty path asks for the whole data document,
   * which compiled entrypoints cannot compute: PORTCULLIS_POLICY_PATH_NOT_FOUND, as `/v1/data`.
   */
  async v1 (raw: IncomingMessage, path: string, body: V1Body, requestId: string, startedMs: number, opts: V1Options = {}): Promise<string> {
    if (path === '') throw wholeDocument()
    const d = await this.decisions.decide(this.request(raw, path, body.input, requestId, opts))
    return this.v1Text(d, body.hasInput, opts, startedMs)
  }

  /** The v1 response body of a decision (OPA's member order: result, decision_id, metrics, provenance, explanation, warning). */
  v1Text (d: Decision, hasInput: boolean, opts: V1Options, startedMs: number): string {
    if (opts.metrics !== true && opts.provenance !== true && d.explanation === undefined && opts.pretty !== true && d.returnReasons !== true) {
      // the common answer, written without an intermediate object
      const out = d.defined ? `{"result":${resultText(d)},"decision_id":"${d.decision_id}"` : `{"decision_id":"${d.decision_id}"`
      return hasInput ? out + '}' : out + WARNING_TEXT + '}'
    }
    const body: Record<string, unknown> = {}
    const slots = new ResultSlots()
    if (d.defined) body.result = slots.valueOf(d)
    // a Portcullis extension (docs/policies.md "Deny reasons"): only with policy.return_reasons
    if (d.returnReasons === true && d.reasons !== undefined) body.reasons = d.reasons
    body.decision_id = d.decision_id
    if (opts.metrics === true) {
      body.metrics = {
        timer_rego_query_eval_ns: d.metrics.timer_rego_query_eval_ns,
        timer_portcullis_identity_ns: d.metrics.timer_portcullis_identity_ns,
        timer_server_handler_ns: Math.round((performance.now() - startedMs) * 1e6),
        counter_portcullis_cache_hit: d.cached ? 1 : 0,
      }
    }
    if (opts.provenance === true) body.provenance = { version: VERSION, bundles: d.bundles }
    // ?explain: the policy's trace() notes (OPA's explain=notes, as plain lines)
    if (d.explanation !== undefined) body.explanation = d.explanation
    if (!hasInput) body.warning = MISSING_INPUT
    return opts.pretty === true ? slots.stringify(body, 2) + '\n' : slots.stringify(body)
  }

  /**
   * A v0 (or default-decision) answer: the bare value; an undefined decision is
   * PORTCULLIS_POLICY_UNDEFINED (404 undefined_document), as OPA answers it.
   */
  async bare (raw: IncomingMessage, path: string, input: unknown, requestId: string, opts: { pretty?: boolean } = {}): Promise<string> {
    if (path === '') throw wholeDocument()
    const d = await this.decisions.decide(this.request(raw, path, input, requestId))
    if (!d.defined) {
      const undef = new PortcullisError('PORTCULLIS_POLICY_UNDEFINED', `document missing: data.${d.path.replaceAll('/', '.')}`, { path: d.path })
      afterDecision.add(undef)
      throw undef
    }
    if (opts.pretty !== true) return resultText(d)
    // ?pretty, as OPA's v0 and default-decision handlers honour it
    const slots = new ResultSlots()
    return slots.stringify(slots.valueOf(d), 2) + '\n'
  }

  /**
   * Records a decision request that failed before it became a decision (a bad path, a body
   * that is not JSON or too large, a batch over its limit) as a refusal in the audit trail,
   * as the Envoy adapter does (decide.ts recordRefusal), so every Data API decision request
   * leaves an event. Undefined when there is nothing to record: the pipeline recorded the
   * failure itself, or the request is not a decision request. Never rejects (a failure to
   * record is logged by recordRefusal; the request is refused either way).
   */
  recordUndecided (err: unknown, raw: IncomingMessage | undefined, requestId?: string): Promise<void> | undefined {
    if (raw === undefined || wasReported(err) || (typeof err === 'object' && err !== null && afterDecision.has(err))) return undefined
    const route = decisionRoute(raw.url ?? '')
    if (route === undefined) return undefined
    const { error } = errorResponse(err, this.#bodyLimit)
    let path = ''
    try { path = route.prefix === '/' ? '' : this.pathOf(raw.url, route.prefix) } catch { /* the bad path is what failed */ }
    const req: DecisionRequest = { path, transport: route.transport }
    if (requestId !== undefined) req.requestId = requestId
    const remote = raw.socket?.remoteAddress
    if (remote !== undefined) req.requestedBy = remote
    const traceparent = raw.headers.traceparent
    if (typeof traceparent === 'string') req.traceparent = traceparent
    return this.decisions.recordRefusal(req, error).then(() => undefined, () => undefined)
  }

  /**
   * A request that failed, answered as every transport answers it: its refusal recorded first
   * (recordUndecided), then `send` given the failure (the OPA error shape, counted and logged
   * once). `send` runs at once when there is nothing to record, else after the record is
   * written. The promise rejects only if `send` throws (the client gone, …): callers decide
   * what that means for their socket — it is never an unhandled rejection here.
   * One function for the framework route, its framework errors and the fast route.
   */
  refuse (err: unknown, raw: IncomingMessage | undefined, requestId: string | undefined, send: (failure: Failure) => void): Promise<void> {
    const answer = (): void => { send(this.failure(err, requestId)) }
    let recorded: Promise<void> | undefined
    try { recorded = this.recordUndecided(err, raw, requestId) } catch { recorded = undefined }
    if (recorded !== undefined) return recorded.then(answer)
    try { answer() } catch (e) { return Promise.reject(e) }
    return Promise.resolve()
  }

  /**
   * Any failure, as the caller sees it: the OPA error shape with the registry's status.
   * Counted once here, and logged once: here unless the decision pipeline logged it already
   * (with its decision_id). Never a decision.
   */
  failure (err: unknown, requestId?: string): Failure {
    let logged = wasReported(err)
    const { error, body } = errorResponse(err, this.#bodyLimit, (unknown) => {
      logged = true
      this.#log.error({ code: 'PORTCULLIS_INTERNAL', request_id: requestId, err: unknown }, 'unexpected error while answering a request')
    })
    this.#metrics?.requestErrors.inc({ code: error.code })
    if (!logged) {
      const fields = { code: error.code, request_id: requestId, details: error.details }
      if (error.status >= 500) this.#log.error({ ...fields, err: error.cause ?? error }, `request failed: ${error.message}`)
      else this.#log.warn(fields, `request refused: ${error.message}`)
    }
    return { error, status: error.status, text: JSON.stringify(body) }
  }
}

function wholeDocument (): PortcullisError {
  return new PortcullisError('PORTCULLIS_POLICY_PATH_NOT_FOUND', 'the whole data document is not served; ask for a path such as /v1/data/authz/allow', { path: '' })
}
