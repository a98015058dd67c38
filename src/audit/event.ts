/**
 * One decision -> one audit event in OPA's decision-log schema (v1/plugins/logs/plugin.go
 * EventV1), plus Portcullis's own fields (docs/audit.md "Events"). This runs on every decision,
 * so the event is kept as values only where masking may change them (input, result) and the
 * rest is JSON text written once: labels once per process, bundles once per snapshot, the
 * result from the pipeline's exact text. Nothing is copied here; mask.ts copies along the paths
 * it changes.
 *
 * Key order follows OPA's struct (labels, decision_id, batch_decision_id, bundles, path, input,
 * result, erased, masked, error, requested_by, timestamp, metrics, req_id, trace_id, span_id),
 * then Portcullis's fields (identity, identity_error, cached, transport, outcome, dry_run,
 * reasons, reasons_truncated, reasons_error, mask_error).
 */
import { canonicalJson, containsExact } from '../canonical-json.js'
import type { DecisionRecord, Transport } from '../decision/types.js'
import type { PortcullisError } from '../errors.js'
import { outcomeOf } from '../metrics/index.js'

/** allow | deny | undefined | error, and `value` for a defined result that is neither an allow nor a deny. */
export type EventOutcome = 'allow' | 'deny' | 'undefined' | 'error' | 'value'

/** The identity summary an event carries: who asked, never the credential itself. */
export interface IdentitySummary {
  type: string
  spiffe_id?: string
  subject?: string
  issuer?: string
  trust_domain?: string
}

/**
 * An event on its way to the sinks. `input` and `result` are values masking may replace
 * (copy-on-write); `resultJson` is the exact result text, valid while `result` is unchanged.
 */
export interface AuditEvent {
  decision_id: string
  batch_decision_id?: string
  /** Exact JSON text of `{name: {revision}}`. */
  bundlesJson: string
  path: string
  hasInput: boolean
  input?: unknown
  /** The input's JSON text when the pipeline already wrote it (valid while `input` is unchanged). */
  inputJson?: string
  hasResult: boolean
  result?: unknown
  resultJson?: string
  erased: string[]
  masked: string[]
  error?: { code: string, message: string, portcullis_code: string }
  requested_by?: string
  timestamp: string
  metricsJson?: string
  req_id?: string
  trace_id?: string
  span_id?: string
  /** The identity summary as JSON text. */
  identityJson?: string
  identity_error?: string
  cached: boolean
  transport: Transport
  outcome: EventOutcome
  dry_run?: boolean
  /** A deny's reasons as JSON text (decision/reasons.ts): bounded; erased or masked by pointers under /reasons (mask.ts), erased with the input on mask_error. */
  reasonsJson?: string
  reasons_truncated?: boolean
  /** The deny's reasons rule failed: its code (the decision is unchanged). */
  reasons_error?: { code: string, message: string }
  /** Set when the mask or drop policy failed and the record was erased whole (mask.ts). */
  mask_error?: { code: string, message: string }
}

const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** True when s[from, to) is lowercase hex. */
function lowerHex (s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false
  }
  return true
}

/**
 * trace_id and span_id from a W3C Trace Context `traceparent` header (§3.2): version, trace-id
 * (32 lowercase hex, not all zeros), parent-id (16, not all zeros), flags. Version `ff` is
 * invalid; version `00` has nothing after the flags; a later version may, after a `-` (§3.2.4,
 * parsed as version 00). Anything else: undefined (the event then has neither field).
 */
export function parseTraceparent (header: string | undefined): { trace_id: string, span_id: string } | undefined {
  // version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) = 55 characters
  if (header === undefined || header.length < 55) return undefined
  if (header.charCodeAt(2) !== 45 || header.charCodeAt(35) !== 45 || header.charCodeAt(52) !== 45) return undefined
  if (!lowerHex(header, 0, 2) || !lowerHex(header, 3, 35) || !lowerHex(header, 36, 52) || !lowerHex(header, 53, 55)) return undefined
  const version = header.slice(0, 2)
  if (version === 'ff') return undefined
  if (header.length > 55 && (version === '00' || header.charCodeAt(55) !== 45)) return undefined
  const traceId = header.slice(3, 35)
  const spanId = header.slice(36, 52)
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined
  return { trace_id: traceId, span_id: spanId }
}

// the fraction of each millisecond as Go writes it (".12" for 120 ms, none for 0), and the
// seconds part of the last timestamp: most events fall in the same second as the one before
const FRACTIONS: readonly string[] = Array.from({ length: 1000 }, (_, ms) => ms === 0 ? '' : `.${String(ms).padStart(3, '0').replace(/0+$/, '')}`)
let lastSecond = Number.NaN
let lastPrefix = ''

/**
 * RFC 3339 as Go's time.RFC3339Nano writes it (OPA's timestamps): UTC, fraction without
 * trailing zeros and no fraction at all when it is zero. JavaScript clocks give milliseconds.
 */
export function rfc3339 (t: Date): string {
  const ms = t.getTime()
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastPrefix = t.toISOString().slice(0, 19)
    lastSecond = second
  }
  return `${lastPrefix}${FRACTIONS[ms - second * 1000] as string}Z`
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const str = (v: unknown): string | undefined => typeof v === 'string' ? v : undefined

/** The identity summary of a verified identity document (docs/identity.md), if the input carries one. */
export function identitySummary (input: unknown): IdentitySummary | undefined {
  if (!isObject(input)) return undefined
  const doc = input.identity
  if (!isObject(doc) || typeof doc.type !== 'string') return undefined
  const out: IdentitySummary = { type: doc.type }
  const spiffeId = str(doc.spiffe_id)
  if (spiffeId !== undefined) out.spiffe_id = spiffeId
  else {
    const subject = str(doc.subject)
    if (subject !== undefined) out.subject = subject
  }
  const issuer = str(doc.issuer)
  if (issuer !== undefined) out.issuer = issuer
  const td = str(doc.trust_domain)
  if (td !== undefined) out.trust_domain = td
  return out
}

// Identity documents are frozen and reused while their credential is cached (identity/cache.ts):
// the summary's text is written once per document
const identityText = new WeakMap<object, string>()

function identityJsonOf (input: unknown): string | undefined {
  if (!isObject(input) || !isObject(input.identity)) return undefined
  const doc = input.identity
  let text = identityText.get(doc)
  if (text === undefined) {
    const summary = identitySummary(input)
    if (summary === undefined) return undefined
    text = `{"type":${JSON.stringify(summary.type)}`
    if (summary.spiffe_id !== undefined) text += `,"spiffe_id":${JSON.stringify(summary.spiffe_id)}`
    if (summary.subject !== undefined) text += `,"subject":${JSON.stringify(summary.subject)}`
    if (summary.issuer !== undefined) text += `,"issuer":${JSON.stringify(summary.issuer)}`
    if (summary.trust_domain !== undefined) text += `,"trust_domain":${JSON.stringify(summary.trust_domain)}`
    text += '}'
    if (Object.isFrozen(doc)) identityText.set(doc, text)
  }
  return text
}

/** Failures that are denials (answered 4xx / PERMISSION_DENIED), not errors: a caller refused before the policy. */
function isDenial (error: PortcullisError): boolean {
  return (error.code.startsWith('PORTCULLIS_IDENTITY_') && error.status < 500) || error.code === 'PORTCULLIS_ENVOY_REQUEST_INVALID'
}

const errorOf = (e: PortcullisError): NonNullable<AuditEvent['error']> => ({ code: e.opaCode, message: e.message, portcullis_code: e.code })

// bundles objects are frozen and computed once per snapshot (PolicySnapshot.revisions()): their text too
const bundlesText = new WeakMap<object, string>()
function bundlesJsonOf (bundles: Record<string, { revision: string }>): string {
  let text = bundlesText.get(bundles)
  if (text === undefined) {
    text = JSON.stringify(bundles)
    bundlesText.set(bundles, text)
  }
  return text
}

/** Path without leading or trailing slashes, as OPA's events carry it. */
function eventPath (path: string): string {
  let a = 0
  let b = path.length
  while (a < b && path.charCodeAt(a) === 47) a++
  while (b > a && path.charCodeAt(b - 1) === 47) b--
  return path.slice(a, b)
}

/** The event of one decision record (before masking). */
export function eventOf (record: DecisionRecord): AuditEvent {
  const req = record.request
  const d = record.decision
  const input = record.input
  const ev: AuditEvent = {
    decision_id: record.decision_id,
    bundlesJson: bundlesJsonOf(record.bundles),
    path: d !== undefined ? d.path : eventPath(req.path),
    hasInput: input !== undefined,
    hasResult: false,
    erased: [],
    masked: [],
    timestamp: rfc3339(record.timestamp),
    cached: d?.cached ?? false,
    transport: req.transport ?? 'http',
    outcome: 'error',
  }
  if (input !== undefined) {
    ev.input = input
    if (record.inputJson !== undefined) ev.inputJson = record.inputJson
  }
  if (req.batchDecisionId !== undefined) ev.batch_decision_id = req.batchDecisionId
  if (d !== undefined) {
    if (d.defined) {
      ev.hasResult = true
      ev.result = d.result
      if (d.resultJson !== undefined) ev.resultJson = d.resultJson
    }
    if (d.reasons !== undefined) {
      ev.reasonsJson = JSON.stringify(d.reasons)
      if (d.reasons_truncated === true) ev.reasons_truncated = true
    }
    if (d.reasons_error !== undefined) ev.reasons_error = d.reasons_error
    const m = d.metrics
    ev.metricsJson = `{"timer_rego_query_eval_ns":${m.timer_rego_query_eval_ns},"timer_portcullis_identity_ns":${m.timer_portcullis_identity_ns},"timer_portcullis_decision_ns":${m.timer_portcullis_decision_ns}}`
  }
  const verdict = record.verdict
  if (verdict !== undefined) {
    ev.outcome = verdict.outcome
    if (verdict.error !== undefined) ev.error = errorOf(verdict.error)
    if (verdict.dryRun === true) ev.dry_run = true
  } else if (record.error !== undefined) {
    ev.outcome = isDenial(record.error) ? 'deny' : 'error'
  } else if (d !== undefined) {
    ev.outcome = outcomeOf(d.defined, d.result)
  }
  if (record.error !== undefined) ev.error = errorOf(record.error)
  if (req.requestedBy !== undefined) ev.requested_by = req.requestedBy
  if (req.requestId !== undefined) ev.req_id = req.requestId
  const trace = parseTraceparent(req.traceparent)
  if (trace !== undefined) {
    ev.trace_id = trace.trace_id
    ev.span_id = trace.span_id
  }
  const identityJson = identityJsonOf(input)
  if (identityJson !== undefined) ev.identityJson = identityJson
  const rejected = isObject(input) && isObject(input.identity_error) ? str(input.identity_error.code) : undefined
  if (rejected !== undefined) ev.identity_error = rejected
  else if (record.error !== undefined && record.error.code.startsWith('PORTCULLIS_IDENTITY_')) ev.identity_error = record.error.code
  return ev
}

/** JSON text of an input: numbers kept exact by the transport (json-input.ts) with their digits, as the policy saw them. */
function textOf (input: unknown): string {
  return containsExact(input) ? canonicalJson(input) : JSON.stringify(input) ?? 'null'
}

// JSON text of frozen inputs (interned request bodies, repeated): they cannot change, so their text is kept
const frozenInputText = new WeakMap<object, string>()

/** The event's input as JSON text: the pipeline's own text, or a frozen input's remembered text, or written now. */
function inputText (ev: AuditEvent): string {
  if (ev.inputJson !== undefined) return ev.inputJson
  const input = ev.input
  if (input === null || typeof input !== 'object' || !Object.isFrozen(input)) return textOf(input)
  let text = frozenInputText.get(input)
  if (text === undefined) {
    text = textOf(input)
    frozenInputText.set(input, text)
  }
  return text
}

/** The event's result as JSON text: exact while masking left it alone. */
function resultText (ev: AuditEvent): string {
  return ev.resultJson ?? JSON.stringify(ev.result)
}

/**
 * The event as one line of JSON text (no newline). `labelsJson` is the process's labels object
 * as JSON text (computed once).
 */
export function eventJson (ev: AuditEvent, labelsJson: string): string {
  let out = `{"labels":${labelsJson},"decision_id":"${ev.decision_id}"`
  if (ev.batch_decision_id !== undefined) out += `,"batch_decision_id":"${ev.batch_decision_id}"`
  out += `,"bundles":${ev.bundlesJson},"path":${JSON.stringify(ev.path)}`
  if (ev.hasInput) out += `,"input":${inputText(ev)}`
  if (ev.hasResult) out += `,"result":${resultText(ev) ?? 'null'}`
  if (ev.erased.length > 0) out += `,"erased":${JSON.stringify(ev.erased)}`
  if (ev.masked.length > 0) out += `,"masked":${JSON.stringify(ev.masked)}`
  if (ev.error !== undefined) out += `,"error":${JSON.stringify(ev.error)}`
  if (ev.requested_by !== undefined) out += `,"requested_by":${JSON.stringify(ev.requested_by)}`
  out += `,"timestamp":"${ev.timestamp}"`
  if (ev.metricsJson !== undefined) out += `,"metrics":${ev.metricsJson}`
  if (ev.req_id !== undefined) out += `,"req_id":${JSON.stringify(ev.req_id)}`
  if (ev.trace_id !== undefined) out += `,"trace_id":"${ev.trace_id}","span_id":"${ev.span_id as string}"`
  if (ev.identityJson !== undefined) out += `,"identity":${ev.identityJson}`
  if (ev.identity_error !== undefined) out += `,"identity_error":${JSON.stringify(ev.identity_error)}`
  out += `,"cached":${ev.cached ? 'true' : 'false'},"transport":"${ev.transport}","outcome":"${ev.outcome}"`
  if (ev.dry_run === true) out += ',"dry_run":true'
  if (ev.reasonsJson !== undefined) out += `,"reasons":${ev.reasonsJson}${ev.reasons_truncated === true ? ',"reasons_truncated":true' : ''}`
  if (ev.reasons_error !== undefined) out += `,"reasons_error":${JSON.stringify(ev.reasons_error)}`
  if (ev.mask_error !== undefined) out += `,"mask_error":${JSON.stringify(ev.mask_error)}`
  return out + '}'
}
