/**
 * The policy's result -> what Envoy is told, as opa-envoy-plugin interprets it
 * (envoyauth/response.go and internal/internal.go check()):
 *
 *   - a boolean, or an object with a required boolean `allowed`;
 *   - `headers` (object of string | string[], or an array of such objects) and
 *     `dynamic_metadata` (object) on allow and deny;
 *   - on allow: `request_headers_to_remove`, `response_headers_to_add`,
 *     `query_parameters_to_set` (object of string | string[]), `query_parameters_to_remove`;
 *   - on deny: `body` (string) and `http_status` (default 403; must be a status Envoy's
 *     StatusCode enum names).
 *
 * Anything else is PORTCULLIS_ENVOY_RESULT_INVALID: never an allow.
 *
 * Headers are checked here, once for both transports (Envoy's gRPC client passes a header on
 * as given: a CR/LF in a value reached the upstream request): a name must be an RFC 9110 token
 * and a value must hold no CR, LF or NUL, and connection/framing headers (transfer-encoding,
 * content-length, connection, ...) are not the policy's to set. On an allow a header that breaks this is
 * PORTCULLIS_ENVOY_RESULT_INVALID (an error, never an allow with a header split in two); on a
 * deny it is left out and reported in `dropped`, so a denial stays a denial.
 */
import { PortcullisError } from '../errors.js'

/** One header to set (HeaderValueOption without append options: Envoy's defaults, as opa-envoy-plugin). */
export interface Header { key: string, value: string }

/** The transport-neutral answer; grpc.ts and http.ts write it in their protocol. */
export interface EnvoyVerdict {
  allowed: boolean
  /** Allow: headers for the upstream request; deny: headers for the client's response. */
  headers: Header[]
  dynamicMetadata?: Record<string, unknown>
  /** Allow only. */
  headersToRemove: string[]
  responseHeadersToAdd: Header[]
  queryParametersToSet: Header[]
  queryParametersToRemove: string[]
  /** Deny only: true when the result is an object (a boolean deny carries no denied response). */
  deniedResponse?: { status: number, body: string }
  /** Deny only: the policy's headers left out because no HTTP message can carry them (for the transport to log). */
  dropped?: DroppedHeader[]
}

/** A deny header left out of the answer, and why. */
export interface DroppedHeader { field: string, key: string, reason: 'name' | 'hop-by-hop' | 'value' }

/** RFC 9110 §5.1 field-name = token; §5.6.2 tchar. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** RFC 9110 §5.5: CR, LF and NUL are never part of a field value. */
const FORBIDDEN_IN_VALUE = /[\r\n\0]/

/**
 * Connection-specific and framing fields (RFC 9110 §7.6.1, §6.1; RFC 9112 §6): they describe
 * one hop's message, not the request, and a policy that sets them breaks the message they are
 * written into (a deny in HTTP mode with both Content-Length and Transfer-Encoding could not be
 * parsed by Envoy, a failure that failure_mode_allow may let through).
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['transfer-encoding', 'content-length', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection'])

/** Why a header cannot be sent as given, or undefined when it can. */
function headerProblem (h: Header): DroppedHeader['reason'] | undefined {
  if (!TOKEN.test(h.key)) return 'name'
  if (HOP_BY_HOP.has(h.key.toLowerCase())) return 'hop-by-hop'
  if (FORBIDDEN_IN_VALUE.test(h.value)) return 'value'
  return undefined
}

const PROBLEMS: Record<DroppedHeader['reason'], string> = {
  name: 'not an HTTP header name (RFC 9110 token)',
  'hop-by-hop': 'a connection or framing header, which a policy may not set',
  value: 'the value holds CR, LF or NUL',
}

/**
 * The policy's headers of one field as they may be sent: on an allow a bad one is
 * PORTCULLIS_ENVOY_RESULT_INVALID, on a deny it is left out and noted in `dropped`.
 */
function sendable (hs: Header[], field: string, allowed: boolean, dropped: DroppedHeader[]): Header[] {
  let out: Header[] | undefined
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i] as Header
    const reason = headerProblem(h)
    if (reason === undefined) { out?.push(h); continue }
    if (allowed) throw invalid(`${field}.${JSON.stringify(h.key)}: ${PROBLEMS[reason]}`, field)
    dropped.push({ field, key: h.key, reason })
    out ??= hs.slice(0, i)
  }
  return out ?? hs
}

/** HTTP statuses envoy.type.v3.StatusCode names (proto/envoy/type/v3/http_status.proto). */
const ENVOY_STATUS_CODES: ReadonlySet<number> = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421,
  422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
])

function invalid (message: string, field: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_ENVOY_RESULT_INVALID', message, { field })
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** response.go transformAnyInputToHeadersBag: an object, or an array of objects, of string | string[]. */
function headersOf (v: unknown, field: string): Header[] {
  const out: Header[] = []
  const add = (obj: unknown): void => {
    if (!isObject(obj)) throw invalid(`${field} must be an object or an array of objects`, field)
    for (const [key, val] of Object.entries(obj)) {
      if (typeof val === 'string') out.push({ key, value: val })
      else if (Array.isArray(val)) {
        for (const x of val) {
          if (typeof x !== 'string') throw invalid(`${field}.${key}: values must be strings`, field)
          out.push({ key, value: x })
        }
      } else throw invalid(`${field}.${key}: must be a string or an array of strings`, field)
    }
  }
  if (Array.isArray(v)) v.forEach(add)
  else add(v)
  return out
}

function stringsOf (v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(`${field} must be an array of strings`, field)
  return v as string[]
}

/** query_parameters_to_set: an object of string | string[]. */
function queryParametersOf (v: unknown): Header[] {
  if (!isObject(v)) throw invalid('query_parameters_to_set must be an object', 'query_parameters_to_set')
  const out: Header[] = []
  for (const [key, val] of Object.entries(v)) {
    if (typeof val === 'string') out.push({ key, value: val })
    else if (Array.isArray(val) && val.every((x) => typeof x === 'string')) for (const x of val as string[]) out.push({ key, value: x })
    else throw invalid(`query_parameters_to_set.${key}: must be a string or an array of strings`, 'query_parameters_to_set')
  }
  return out
}

/**
 * Interprets a defined policy result.
 * @throws PortcullisError PORTCULLIS_ENVOY_RESULT_INVALID
 */
export function verdictOf (result: unknown): EnvoyVerdict {
  const verdict: EnvoyVerdict = { allowed: false, headers: [], headersToRemove: [], responseHeadersToAdd: [], queryParametersToSet: [], queryParametersToRemove: [] }
  if (typeof result === 'boolean') {
    verdict.allowed = result
    return verdict
  }
  if (!isObject(result)) throw invalid(`the decision must be a boolean or an object with "allowed", got ${Array.isArray(result) ? 'array' : result === null ? 'null' : typeof result}`, '(result)')
  if (!Object.hasOwn(result, 'allowed')) throw invalid('the decision object has no "allowed" key', 'allowed')
  if (typeof result.allowed !== 'boolean') throw invalid('"allowed" must be a boolean', 'allowed')
  verdict.allowed = result.allowed
  const dropped: DroppedHeader[] = []
  if (result.headers !== undefined) verdict.headers = sendable(headersOf(result.headers, 'headers'), 'headers', verdict.allowed, dropped)
  if (result.dynamic_metadata !== undefined) {
    if (!isObject(result.dynamic_metadata)) throw invalid('dynamic_metadata must be an object', 'dynamic_metadata')
    verdict.dynamicMetadata = result.dynamic_metadata
  }
  if (verdict.allowed) {
    if (result.request_headers_to_remove !== undefined) {
      verdict.headersToRemove = stringsOf(result.request_headers_to_remove, 'request_headers_to_remove')
      for (const name of verdict.headersToRemove) if (!TOKEN.test(name)) throw invalid(`request_headers_to_remove: ${JSON.stringify(name)} is not an HTTP header name (RFC 9110 token)`, 'request_headers_to_remove')
    }
    if (result.response_headers_to_add !== undefined) verdict.responseHeadersToAdd = sendable(headersOf(result.response_headers_to_add, 'response_headers_to_add'), 'response_headers_to_add', true, dropped)
    if (result.query_parameters_to_remove !== undefined) verdict.queryParametersToRemove = stringsOf(result.query_parameters_to_remove, 'query_parameters_to_remove')
    if (result.query_parameters_to_set !== undefined) verdict.queryParametersToSet = queryParametersOf(result.query_parameters_to_set)
    return verdict
  }
  let body = ''
  if (result.body !== undefined) {
    if (typeof result.body !== 'string') throw invalid('body must be a string', 'body')
    body = result.body
  }
  let status = 403
  if (result.http_status !== undefined) {
    const s = result.http_status
    if (typeof s !== 'number' || !Number.isInteger(s) || !ENVOY_STATUS_CODES.has(s)) throw invalid('http_status must be an HTTP status code Envoy knows', 'http_status')
    status = s
  }
  verdict.deniedResponse = { status, body }
  if (dropped.length > 0) verdict.dropped = dropped
  return verdict
}

/** google.protobuf.Value from plain JSON (structpb.NewValue). */
function toStructValue (v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 0 }
  if (typeof v === 'boolean') return { boolValue: v }
  if (typeof v === 'number') return { numberValue: v }
  if (typeof v === 'string') return { stringValue: v }
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } }
  return { structValue: toStruct(v as Record<string, unknown>) }
}

/** google.protobuf.Struct from a plain object (structpb.NewStruct). */
export function toStruct (obj: Record<string, unknown>): { fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj)) fields[k] = toStructValue(v)
  return { fields }
}

// google.rpc.Code
const OK = 0
const PERMISSION_DENIED = 7

const headerOptions = (hs: Header[]): Array<{ header: Header }> => hs.map((header) => ({ header }))

/**
 * The CheckResponse of a verdict (internal.go check()): decision_id in dynamic metadata. A dry
 * run needs nothing here: check.ts has already made its deny an allow without header mutations.
 */
export function checkResponseOf (verdict: EnvoyVerdict, decisionId: string, opts: { structured: boolean }): Record<string, unknown> {
  const metadata = toStruct({ ...(verdict.dynamicMetadata ?? {}), decision_id: decisionId })
  const resp: Record<string, unknown> = { status: { code: verdict.allowed ? OK : PERMISSION_DENIED }, dynamicMetadata: metadata }
  // A boolean decision carries no http_response (opa-envoy-plugin sets one only for objects).
  if (!opts.structured) return resp
  if (verdict.allowed) {
    resp.okResponse = {
      headers: headerOptions(verdict.headers),
      headersToRemove: verdict.headersToRemove,
      responseHeadersToAdd: headerOptions(verdict.responseHeadersToAdd),
      queryParametersToSet: verdict.queryParametersToSet,
      queryParametersToRemove: verdict.queryParametersToRemove,
    }
  } else {
    const d = verdict.deniedResponse ?? { status: 403, body: '' }
    resp.deniedResponse = { status: { code: d.status }, headers: headerOptions(verdict.headers), body: d.body }
  }
  return resp
}

/**
 * A request denied before the policy: PERMISSION_DENIED with a denied response of the error's
 * status (400 for a request that cannot be parsed, as opa-envoy-plugin; 401/403 for identity).
 */
export function refusedResponse (err: PortcullisError): Record<string, unknown> {
  return {
    status: { code: PERMISSION_DENIED, message: `${err.code}: ${err.message}` },
    deniedResponse: { status: { code: ENVOY_STATUS_CODES.has(err.status) ? err.status : 403 }, body: err.code },
  }
}

/**
 * error_response (CheckResponse field 5): an evaluation error told to Envoy as such. Its status
 * is left unset, so Envoy answers the client with the filter's status_on_error (403 by
 * default) and applies failure_mode_allow (external_auth.proto).
 */
export function errorResponseOf (err: PortcullisError, decisionId: string | undefined): Record<string, unknown> {
  return {
    status: { code: err.grpcCode === OK ? 13 : err.grpcCode, message: `${err.code}: ${err.message}` },
    errorResponse: { body: `${err.code}` },
    ...(decisionId !== undefined ? { dynamicMetadata: toStruct({ decision_id: decisionId }) } : {}),
  }
}
