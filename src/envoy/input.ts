/**
 * CheckRequest -> the input document opa-envoy-plugin builds (envoyauth/request.go and
 * protomap.go), so its policies run unchanged:
 *
 *   - the CheckRequest as protomap renders it: set fields only (proto3 zero values are "not
 *     set"), lowerCamelCase JSON names, `request.time` as `{seconds, nanos}`, int64 as numbers,
 *     enums as numbers, bytes as base64, `google.protobuf.Struct` (metadata) as plain maps;
 *   - `parsed_path`, `parsed_query`, `parsed_body` + `truncated_body` (unless body parsing is
 *     off), `version`, `source_principal`.
 *
 * The CheckRequest object is what @grpc/proto-loader decodes with `keepCase: false` (so
 * lowerCamelCase names already), `longs: Number`, `enums: Number`, `defaults: false`; the HTTP
 * service mode builds the same shape from a forwarded request (envoy/http.ts).
 *
 * Anything that opa-envoy-plugin refuses (a malformed escape in the path or query, a body that
 * does not parse as its content type says) throws PORTCULLIS_ENVOY_REQUEST_INVALID.
 */
import { formName, parseMediaType, readParts } from './multipart.js'
import { PortcullisError } from '../errors.js'
import { JsonInputError, parseJsonInput } from '../json-input.js'

/** A decoded CheckRequest (lowerCamelCase field names). Only the fields the adapter reads are typed. */
export interface CheckRequest {
  attributes?: AttributeContext
}

export interface AttributeContext {
  source?: Peer
  destination?: Peer
  request?: { time?: { seconds?: number, nanos?: number }, http?: HttpRequest }
  contextExtensions?: Record<string, string>
  metadataContext?: Metadata
  routeMetadataContext?: Metadata
  tlsSession?: { sni?: string }
}

export interface Peer {
  address?: { socketAddress?: { address?: string, portValue?: number, protocol?: number }, pipe?: { path?: string, mode?: number } }
  service?: string
  labels?: Record<string, string>
  principal?: string
  certificate?: string
}

export interface HttpRequest {
  id?: string
  method?: string
  headers?: Record<string, string>
  headerMap?: { headers?: Array<{ key?: string, value?: string, rawValue?: Uint8Array }> }
  path?: string
  host?: string
  scheme?: string
  query?: string
  fragment?: string
  size?: number
  protocol?: string
  body?: string
  rawBody?: Uint8Array
}

interface Metadata { filterMetadata?: Record<string, unknown>, typedFilterMetadata?: Record<string, unknown> }

export interface InputOptions {
  /** opa-envoy-plugin's skip-request-body-parse: no parsed_body / truncated_body. */
  skipRequestBodyParse?: boolean
  /** The request's headers, when the caller has already built headerLookup() (built here otherwise). */
  headers?: HeaderLookup
  /**
   * HTTP service mode: a non-empty body is whole only when `x-envoy-auth-partial-body` says so.
   * Envoy's HTTP ext_authz client forwards only the allowed headers and sets Content-Length to the
   * bytes it forwards, so without that header a body cut at max_request_bytes looks whole.
   */
  partialBodyHeaderRequired?: boolean
}

/** A request's headers by lowercase name; a repeated header in header_map is a list. */
export type HeaderLookup = Readonly<Record<string, string | string[]>>

/**
 * The request's headers: the `headers` map, with `header_map` folded in (Envoy's
 * encode_raw_headers sends only header_map, its values as raw_value bytes). Without a
 * header_map the headers map itself (no copy), unless `copy` asks for one: a copy has no
 * prototype, so a header named `__proto__` or `constructor` is a header like any other.
 */
export function headerLookup (http: HttpRequest | undefined, copy = false): HeaderLookup {
  const entries = http?.headerMap?.headers ?? []
  if (entries.length === 0 && !copy) return http?.headers ?? {}
  const out: Record<string, string | string[]> = Object.assign(Object.create(null) as Record<string, string | string[]>, http?.headers ?? {}) as Record<string, string | string[]>
  for (const h of entries) {
    if (h.key === undefined || h.key === '') continue
    const key = h.key.toLowerCase()
    const value = h.value !== undefined && h.value !== '' ? h.value : Buffer.from(h.rawValue ?? new Uint8Array()).toString('utf8')
    const prev = Object.hasOwn(out, key) ? out[key] : undefined
    // a repeated key appends in place (a copy per repeat was quadratic: 40,000 entries of one
    // key held the event loop for seconds); the arrays are this map's own
    if (prev === undefined) out[key] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[key] = [prev, value]
  }
  return out
}

/** One header's value; a repeated one joined with ',' as Envoy joins them in the headers map. */
function headerValue (headers: HeaderLookup, name: string): string | undefined {
  if (!Object.hasOwn(headers, name)) return undefined
  const v = headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/** `input.version` for the v3 API (request.go v3Info). */
const VERSION = Object.freeze({ ext_authz: 'v3', encoding: 'protojson' })

function invalid (message: string, details: Record<string, unknown> = {}): PortcullisError {
  return new PortcullisError('PORTCULLIS_ENVOY_REQUEST_INVALID', message, details)
}

// Map fields of the messages a CheckRequest contains: their entries are kept whatever their
// value (Go ranges over every map entry), where a message's zero-valued scalars are dropped.
const MAP_FIELDS = new Set(['labels', 'headers', 'contextExtensions', 'filterMetadata', 'typedFilterMetadata'])
// filterMetadata values are google.protobuf.Struct, which protomap renders with AsMap().
const STRUCT_MAPS = new Set(['filterMetadata'])

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/** google.protobuf.Value -> plain JSON (structpb AsInterface). */
function structValue (v: unknown): unknown {
  if (!isPlainObject(v)) return null
  if ('structValue' in v) return structToMap(v.structValue)
  if ('listValue' in v) {
    const values = isPlainObject(v.listValue) && Array.isArray(v.listValue.values) ? v.listValue.values : []
    return values.map(structValue)
  }
  if ('stringValue' in v) return v.stringValue
  if ('numberValue' in v) return v.numberValue
  if ('boolValue' in v) return v.boolValue
  return null
}

/**
 * A map entry. Assigned, except `__proto__`, which assignment would take as the prototype:
 * that key is defined, so it stays an ordinary key as in Go's map.
 */
export function setEntry (m: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true })
  else m[k] = v
}

/** google.protobuf.Struct -> plain map (structpb AsMap). */
function structToMap (s: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const fields = isPlainObject(s) && isPlainObject(s.fields) ? s.fields : {}
  for (const [k, v] of Object.entries(fields)) setEntry(out, k, structValue(v))
  return out
}

function scalar (v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')
  return v
}

/** A proto3 field is "set" (protoreflect Range) when it is not its zero value. */
function isSet (v: unknown): boolean {
  if (v === undefined || v === null) return false
  if (v === '' || v === 0 || v === false) return false
  if (v instanceof Uint8Array) return v.byteLength > 0
  if (Array.isArray(v)) return v.length > 0
  return true
}

// Scalar members of a oneof in the messages a CheckRequest contains (address.proto:
// SocketAddress.port_specifier, EnvoyInternalAddress.address_name_specifier). A oneof member
// on the wire is populated even at its zero value (protoreflect Has), so Go keeps
// `portValue: 0`; the decoder leaves such a member out unless it was on the wire.
const ONEOF_SCALARS = new Set(['portValue', 'namedPort', 'serverListenerName'])

/** protomap(): a decoded message -> map keyed by JSON names, set fields only. */
export function protomap (msg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(msg)) {
    if (!isSet(value) && !(ONEOF_SCALARS.has(name) && (value === 0 || value === ''))) continue
    if (MAP_FIELDS.has(name) && isPlainObject(value)) {
      const m: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(value)) {
        setEntry(m, k, STRUCT_MAPS.has(name) ? structToMap(v) : isPlainObject(v) ? protomap(v) : scalar(v))
      }
      // An empty map is not set either.
      if (Object.keys(m).length > 0) out[name] = m
    } else if (Array.isArray(value)) {
      out[name] = value.map((v) => isPlainObject(v) ? protomap(v) : scalar(v))
    } else if (isPlainObject(value)) {
      out[name] = protomap(value)
    } else {
      out[name] = scalar(value)
    }
  }
  return out
}

const HEX = /^[0-9a-fA-F]{2}$/

/**
 * Go's url.PathUnescape / QueryUnescape: %XX decoded to bytes (a malformed escape is an error),
 * `+` a space only in query components. Bytes that are not UTF-8 become U+FFFD, as they do when
 * OPA turns the Go string into a Rego value.
 */
function unescape (s: string, plusIsSpace: boolean): string {
  if (!s.includes('%') && !(plusIsSpace && s.includes('+'))) return s
  const src = Buffer.from(s, 'utf8')
  const out = Buffer.allocUnsafe(src.length)
  let n = 0
  for (let i = 0; i < src.length; i++) {
    const c = src[i] as number
    if (c === 0x25) {
      const hex = src.toString('latin1', i + 1, i + 3)
      if (!HEX.test(hex)) throw invalid(`invalid URL escape ${JSON.stringify(src.toString('latin1', i, i + 3))}`)
      out[n++] = parseInt(hex, 16)
      i += 2
    } else if (c === 0x2b && plusIsSpace) {
      out[n++] = 0x20
    } else {
      out[n++] = c
    }
  }
  // ignoreBOM: a U+FEFF at the start is data, as Go keeps it (a decoder that drops it would make
  // `%EF%BB%BFtenant` the key `tenant`: another key than opa-envoy-plugin's and the upstream's)
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(out.subarray(0, n))
}

/**
 * `input.parsed_path`: the part before `?`, percent-decoded, every leading `/` trimmed (so
 * `//admin/people` is `["admin", "people"]`, the bypass opa-envoy-plugin fixed), split on `/`.
 */
export function parsedPath (path: string): string[] {
  const q = path.indexOf('?')
  const raw = q === -1 ? path : path.slice(0, q)
  return unescape(raw, false).replace(/^\/+/, '').split('/')
}

/** Go's net/url defaultMaxParams. */
const MAX_QUERY_PARAMS = 10_000

/**
 * Go's url.ParseQuery: `&`-separated pairs, a `;` is an error (Go ≥ 1.17), empty pairs
 * skipped, a pair without `=` has the value "". Values in order of appearance.
 */
export function parseQuery (query: string): Record<string, string[]> {
  // Go's net/url (1.24+): more than 10,000 `&`-separated parameters is an error, before any is read
  let params = 1
  for (let i = query.indexOf('&'); i !== -1; i = query.indexOf('&', i + 1)) params++
  if (params > MAX_QUERY_PARAMS) throw invalid(`number of URL query parameters exceeded limit (${MAX_QUERY_PARAMS})`, { limit: MAX_QUERY_PARAMS })
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>
  let first: PortcullisError | undefined
  for (const pair of query.split('&')) {
    if (pair.includes(';')) { first ??= invalid('invalid semicolon separator in query'); continue }
    if (pair === '') continue
    const eq = pair.indexOf('=')
    let key: string
    let value: string
    try {
      key = unescape(eq === -1 ? pair : pair.slice(0, eq), true)
      value = eq === -1 ? '' : unescape(pair.slice(eq + 1), true)
    } catch (err) {
      first ??= err as PortcullisError
      continue
    }
    ;(out[key] ??= []).push(value)
  }
  if (first !== undefined) throw first
  return { ...out }
}

/** `input.parsed_query` of a request path. */
export function parsedQuery (path: string): Record<string, string[]> {
  const q = path.indexOf('?')
  return parseQuery(q === -1 ? '' : path.slice(q + 1))
}

/** request.go checkIfHTTPBodyTruncated: content-length (an int64) larger than the body's byte length. */
function truncatedByLength (contentLength: string, bodyBytes: number): boolean {
  if (!/^[+-]?\d+$/.test(contentLength)) throw invalid('content-length is not an integer', { content_length: contentLength })
  // strconv.ParseInt(cl, 10, 64): a value beyond int64 is an error there too
  const big = BigInt(contentLength)
  if (big > 2n ** 63n - 1n || big < -(2n ** 63n)) throw invalid('content-length is out of the int64 range', { content_length: contentLength })
  const cl = Number(contentLength)
  return cl !== -1 && cl > bodyBytes
}

/**
 * Deepest nesting of a JSON body accepted (Go's decoder stops at 10000; a body deeper than this
 * is refused with the 400 denial, never left to overflow a stack into an error that Envoy's
 * failure_mode_allow could turn into an allow).
 */
const ENVOY_MAX_JSON_DEPTH = 512

function parseJson (text: string, what: string): unknown {
  try {
    // numbers beyond a double's range refused, lone surrogates as U+FFFD (src/json-input.ts)
    return parseJsonInput(text, ENVOY_MAX_JSON_DEPTH)
  } catch (err) {
    if (!(err instanceof JsonInputError)) throw err
    throw invalid(`${what} ${err.message}`, { problem: err.problem })
  }
}

/**
 * multipart/form-data -> {name: [value...]}, as request.go reads it: the boundary from Go's
 * mime.ParseMediaType of the Content-Type (a type that does not parse refuses the request; no
 * boundary: no parsed body), the parts as Go's multipart Reader reads them (multipart.ts), a
 * part without a form-data name skipped, a part whose Content-Type header contains
 * `application/json` (as written, case-sensitive) parsed as JSON, the others their bytes.
 */
function parseMultipart (payload: Buffer, contentType: string): Record<string, unknown[]> | null {
  let boundary: string | undefined
  try {
    boundary = parseMediaType(contentType).params.get('boundary')
  } catch (err) {
    throw invalid(`content-type does not parse (${(err as Error).message})`)
  }
  if (boundary === undefined) return null
  let parts
  try {
    parts = readParts(payload, boundary)
  } catch (err) {
    throw invalid(`multipart body does not parse (${(err as Error).message})`)
  }
  const values: Record<string, unknown[]> = Object.create(null) as Record<string, unknown[]>
  for (const part of parts) {
    const name = formName(part)
    if (name === '') continue
    const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(part.body)
    const v = (part.headers.get('content-type')?.[0] ?? '').includes('application/json') ? parseJson(text, `multipart part ${JSON.stringify(name)}`) : text
    ;(values[name] ??= []).push(v)
  }
  return { ...values }
}

/**
 * `parsed_body` and `truncated_body` (request.go getParsedBody). `headers` is the request's
 * header lookup (headerLookup: the headers map, or header_map when Envoy sends only that).
 */
export async function parsedBody (headers: HeaderLookup, body: string, rawBody: Uint8Array | undefined, opts: { partialBodyHeaderRequired?: boolean } = {}): Promise<{ parsed: unknown, truncated: boolean }> {
  // Envoy sets x-envoy-auth-partial-body: true when it cut the body at max_request_bytes (false when it did not).
  const partial = headerValue(headers, 'x-envoy-auth-partial-body')
  if (partial === 'true') return { parsed: null, truncated: true }
  // fail closed: a body nobody said is whole may be cut (InputOptions.partialBodyHeaderRequired)
  if (partial === undefined && opts.partialBodyHeaderRequired === true && (body !== '' || (rawBody !== undefined && rawBody.byteLength > 0))) return { parsed: null, truncated: true }
  const contentType = headerValue(headers, 'content-type')
  if (contentType === undefined) return { parsed: null, truncated: false }
  const payload = (): Buffer | undefined => {
    if (body !== '') return Buffer.from(body, 'utf8')
    if (rawBody !== undefined && rawBody.byteLength > 0) return Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength)
    return undefined
  }
  const kind = contentType.includes('application/json')
    ? 'json'
    : contentType.includes('application/grpc')
      ? 'grpc'
      : contentType.includes('application/x-www-form-urlencoded')
        ? 'form'
        : contentType.includes('multipart/form-data') ? 'multipart' : undefined
  // gRPC payloads are parsed only with configured proto descriptors, which Portcullis does not load.
  if (kind === undefined || kind === 'grpc') return { parsed: null, truncated: false }
  const p = payload()
  if (p === undefined) return { parsed: null, truncated: false }
  const cl = headerValue(headers, 'content-length')
  if (cl !== undefined && truncatedByLength(cl, p.length)) return { parsed: null, truncated: true }
  // a leading BOM is kept (Go keeps it: a JSON body starting with one does not parse, a form key keeps it)
  const text = (): string => new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(p)
  switch (kind) {
    case 'json': return { parsed: parseJson(text(), 'the request body'), truncated: false }
    case 'form': return { parsed: parseQuery(text()), truncated: false }
    case 'multipart': return { parsed: parseMultipart(p, contentType), truncated: false }
  }
}

/**
 * The input document for a CheckRequest (request.go RequestToInput, v3).
 *
 * @example
 *   await checkRequestToInput({ attributes: { request: { http: { method: 'GET', path: '/a?b=1' } } } })
 *   // {attributes: {...}, version: {...}, parsed_path: ['a'], parsed_query: {b: ['1']}, parsed_body: null, truncated_body: false}
 */
export async function checkRequestToInput (req: CheckRequest, opts: InputOptions = {}): Promise<Record<string, unknown>> {
  const input = protomap(req as Record<string, unknown>)
  const http = req.attributes?.request?.http ?? {}
  const path = http.path ?? ''
  input.version = VERSION
  input.parsed_path = parsedPath(path)
  input.parsed_query = parsedQuery(path)
  if (opts.skipRequestBodyParse !== true) {
    const { parsed, truncated } = await parsedBody(opts.headers ?? headerLookup(http), http.body ?? '', http.rawBody, { partialBodyHeaderRequired: opts.partialBodyHeaderRequired === true })
    input.parsed_body = parsed
    input.truncated_body = truncated
  }
  const principal = req.attributes?.source?.principal
  if (principal !== undefined && principal !== '') input.source_principal = principal
  return input
}
