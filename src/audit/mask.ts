/**
 * Masking and dropping, before anything is written (OPA: v1/plugins/logs/mask.go and
 * plugin.go; docs "Masking Sensitive Data", "Drop Decision Logs"):
 *
 *   1. the configured pointers (`audit.erase`: by default the credential headers and the
 *      peer certificates of Envoy's input) are erased and listed in `erased`;
 *   2. the bundle's drop policy (`decision_logs.drop_decision`, default /system/log/drop),
 *      with the event as its input: `true` drops the event (counted, never silent);
 *   3. the bundle's mask policy (`decision_logs.mask_decision`, default /system/log/mask),
 *      with the event as its input: a set of JSON pointer strings (erase, listed in `erased`)
 *      and `{op: "remove" | "upsert", path, value}` objects (`masked` for upserts), applied in
 *      order. Pointers are OPA's: slash-separated, starting with /input, /result or
 *      /nd_builtin_cache, each segment a valid percent-escaped string, array elements by index.
 *      Portcullis adds one root, /reasons: a deny's reasons (decision/reasons.ts) are policy
 *      output that may name what the input held (a user, an account), so they can be erased or
 *      masked like the result, with the same semantics and listed the same way.
 *
 * A path that does not exist is not erased and not listed (OPA). Values are never changed in
 * place — inputs and results may be frozen, interned or shared with the decision cache — only
 * the objects along a changed path are copied (copy-on-write, once per event).
 *
 * Failing closed where OPA fails open or silent: a mask or drop policy that fails (evaluation
 * error, a result that is not a set, an entry that is not a valid rule) erases the whole input
 * and result of that event and marks it (`mask_error`), counted; OPA would log an error and
 * write nothing, which loses the record of the decision. A valid rule that cannot be applied
 * (an upsert through a non-object) is skipped with a counted warning, as OPA does.
 */
import { AUDIT_DEFAULT_ERASE } from '../config/defaults.js'
import { PortcullisError, toPortcullisError } from '../errors.js'
import type { PolicySnapshot } from '../policy/snapshot.js'
import type { AuditEvent } from './event.js'

/** Default `audit.erase`: credentials and peer certificates in Envoy's input document (config/defaults.ts). */
export const DEFAULT_ERASE: readonly string[] = AUDIT_DEFAULT_ERASE

const ROOTS = new Set(['input', 'result', 'nd_builtin_cache', 'reasons'])

export interface MaskRule {
  op: 'remove' | 'upsert'
  /** The pointer as it is listed in `erased` / `masked`. */
  path: string
  parts: string[]
  value?: unknown
}

/** Parses an OPA mask pointer: PORTCULLIS_CONFIG_INVALID-style reason on failure (thrown as `Error`). */
export function parsePointer (path: string): string[] {
  if (path.length === 0) throw new Error('mask must be non-empty')
  if (!path.startsWith('/')) throw new Error('mask must be slash-prefixed')
  const parts = path.slice(1).split('/')
  if (!ROOTS.has(parts[0] as string)) throw new Error(`mask prefix not allowed: ${parts[0] as string}`)
  for (const p of parts) {
    // OPA checks each segment with url.PathUnescape: a malformed escape is an invalid rule
    if (/%(?![0-9A-Fa-f]{2})/.test(p)) throw new Error(`invalid escape in mask segment ${JSON.stringify(p)}`)
  }
  return parts
}

/** One entry of a mask policy's result (mask.go newMaskRuleSet): a pointer string or `{op, path, value}`. */
export function parseMaskRule (entry: unknown): MaskRule {
  if (typeof entry === 'string') return { op: 'remove', path: entry, parts: parsePointer(entry) }
  if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
    const e = entry as Record<string, unknown>
    const op = Object.hasOwn(e, 'op') ? e.op : 'remove'
    if (op !== 'remove' && op !== 'upsert') throw new Error(`mask op is not supported: ${JSON.stringify(op)}`)
    if (typeof e.path !== 'string') throw new Error('mask path must be a string')
    const rule: MaskRule = { op, path: e.path, parts: parsePointer(e.path) }
    if (op === 'upsert') rule.value = e.value ?? null
    return rule
  }
  throw new Error(`invalid mask rule format: ${entry === null ? 'null' : Array.isArray(entry) ? 'array' : typeof entry}`)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Sets an own property, also for a key named `__proto__`. */
function put (obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true })
  else obj[key] = value
}

function arrayIndex (key: string, length: number): number {
  if (!/^(0|[1-9][0-9]*)$/.test(key)) return -1
  const i = Number(key)
  return i < length ? i : -1
}

const MISSING = Symbol('missing')

/** The index a rule removes from the top of `/reasons` (`/reasons/<i>`), or undefined for any other rule. */
function reasonRemoved (rule: MaskRule): number | undefined {
  return rule.op === 'remove' && rule.parts.length === 2 && rule.parts[0] === 'reasons' && /^\d+$/.test(rule.parts[1] as string) ? Number(rule.parts[1]) : undefined
}

/**
 * Applies mask rules to one event, copying only what changes. Objects this masker copied are
 * its own and are changed in place by later rules of the same event.
 */
export class EventMasker {
  // made on the first copy: most events are never changed
  #owned: Set<object> | undefined
  // the reasons as a value, parsed from their text on the first rule that names them
  #reasons: unknown
  #reasonsParsed = false
  constructor (readonly ev: AuditEvent) {}

  #own<T extends object> (node: T): T {
    this.#owned ??= new Set()
    if (this.#owned.has(node)) return node
    const copy = (Array.isArray(node) ? node.slice() : Object.assign(Object.create(Object.getPrototypeOf(node) === null ? null : Object.prototype) as object, node)) as T
    this.#owned.add(copy)
    return copy
  }

  #get (root: string): { present: boolean, value: unknown } {
    if (root === 'input') return { present: this.ev.hasInput, value: this.ev.input }
    if (root === 'result') return { present: this.ev.hasResult, value: this.ev.result }
    if (root === 'reasons') {
      if (this.ev.reasonsJson === undefined) return { present: false, value: undefined }
      if (!this.#reasonsParsed) {
        this.#reasons = JSON.parse(this.ev.reasonsJson) as unknown
        this.#reasonsParsed = true
      }
      return { present: true, value: this.#reasons }
    }
    return { present: false, value: undefined } // no nd_builtin_cache is kept
  }

  #set (root: string, value: unknown): void {
    if (root === 'input') {
      this.ev.input = value
      this.ev.hasInput = value !== undefined
      delete this.ev.inputJson // the pipeline's text no longer describes it
    } else if (root === 'result') {
      this.ev.result = value
      this.ev.hasResult = value !== undefined
      delete this.ev.resultJson // the exact text no longer describes it
    } else if (root === 'reasons') {
      // the event carries reasons as text (event.ts): written again from the masked value
      this.#reasons = value
      this.#reasonsParsed = true
      if (value === undefined) {
        delete this.ev.reasonsJson
        delete this.ev.reasons_truncated
      } else this.ev.reasonsJson = JSON.stringify(value)
    }
  }

  /**
   * Applies one set of rules (the configured erasure, or one mask policy's answer) so that every
   * pointer addresses the event as it was when the set began: removals of `/reasons/<i>` — an
   * array, where a splice shifts the entries after it — run last, highest index first, once per
   * index (`/reasons/0` and `/reasons/1` erase the first two entries, in either order). OPA
   * splices one rule at a time; its roots are objects, where indexes rarely matter. A rule that
   * throws goes to `onError` (skipped), or throws when there is none.
   */
  applySet (rules: readonly MaskRule[], onError?: (rule: MaskRule, err: unknown) => void): void {
    const run = (rule: MaskRule): void => {
      if (onError === undefined) { this.apply(rule); return }
      try { this.apply(rule) } catch (err) { onError(rule, err) }
    }
    const removals: Array<{ rule: MaskRule, index: number }> = []
    for (const rule of rules) {
      const index = reasonRemoved(rule)
      if (index === undefined) run(rule)
      else removals.push({ rule, index })
    }
    removals.sort((a, b) => b.index - a.index)
    let previous: number | undefined
    for (const { rule, index } of removals) {
      if (index !== previous) run(rule)
      previous = index
    }
  }

  /** Applies one rule; true when it changed the event (and was listed), false when its path was not there. Throws when it cannot be applied. */
  apply (rule: MaskRule): boolean {
    const root = rule.parts[0] as string
    const cur = this.#get(root)
    if (!cur.present) return false
    if (rule.op === 'remove') {
      if (rule.parts.length === 1) this.#set(root, undefined)
      else {
        const next = this.#remove(cur.value, rule.parts, 1)
        if (next === MISSING) return false
        this.#set(root, next)
      }
      this.ev.erased.push(rule.path)
      return true
    }
    if (rule.parts.length === 1) this.#set(root, rule.value)
    else {
      // OPA: an upsert below a value that is not an object does nothing. Reasons are always an
      // array (decision/reasons.ts), so below /reasons an in-range index is upserted too
      if (!isObject(cur.value) && !(root === 'reasons' && Array.isArray(cur.value))) return false
      this.#set(root, this.#upsert(cur.value, rule.parts, 1, rule.value))
    }
    this.ev.masked.push(rule.path)
    return true
  }

  #remove (node: unknown, parts: string[], i: number): unknown {
    const key = parts[i] as string
    const last = i === parts.length - 1
    if (Array.isArray(node)) {
      const idx = arrayIndex(key, node.length)
      if (idx < 0) return MISSING
      if (last) {
        const copy = this.#own(node)
        copy.splice(idx, 1)
        return copy
      }
      const child = this.#remove(node[idx], parts, i + 1)
      if (child === MISSING) return MISSING
      const copy = this.#own(node)
      copy[idx] = child
      return copy
    }
    if (!isObject(node) || !Object.hasOwn(node, key)) return MISSING
    if (last) {
      const copy = this.#own(node)
      delete copy[key]
      return copy
    }
    const child = this.#remove(node[key], parts, i + 1)
    if (child === MISSING) return MISSING
    const copy = this.#own(node)
    put(copy, key, child)
    return copy
  }

  /** mask.go mkdirp: missing objects along the path are created; arrays are indexed in range. */
  #upsert (node: unknown, parts: string[], i: number, value: unknown): unknown {
    const key = parts[i] as string
    const last = i === parts.length - 1
    if (Array.isArray(node)) {
      const idx = arrayIndex(key, node.length)
      if (idx < 0) throw new Error(`mask upsert ${parts.join('/')}: index ${key} out of range`)
      const copy = this.#own(node)
      copy[idx] = last ? value : this.#upsert(node[idx], parts, i + 1, value)
      return copy
    }
    if (!isObject(node)) throw new Error(`mask upsert /${parts.join('/')}: ${parts.slice(0, i).join('/')} is not an object`)
    const copy = this.#own(node)
    if (last) put(copy, key, value)
    else {
      const child = Object.hasOwn(node, key) ? node[key] : {}
      put(copy, key, this.#upsert(child, parts, i + 1, value))
    }
    return copy
  }

  /**
   * Erases the value of every Envoy `header_map` entry named `name` (lowercase): a configured
   * pointer to `/input/attributes/request/http/headers/<name>` covers the header however Envoy
   * sent it (`headers`, or `header_map` with `encode_raw_headers`).
   */
  eraseHeaderMapEntries (name: string): void {
    if (!this.ev.hasInput || !isObject(this.ev.input)) return
    const http = (((this.ev.input.attributes as Record<string, unknown> | undefined)?.request as Record<string, unknown> | undefined)?.http) as Record<string, unknown> | undefined
    const list = isObject(http) && isObject(http.headerMap) ? http.headerMap.headers : undefined
    if (!Array.isArray(list)) return
    for (let i = 0; i < list.length; i++) {
      const h = list[i] as unknown
      if (!isObject(h) || typeof h.key !== 'string' || h.key.toLowerCase() !== name) continue
      for (const field of ['value', 'rawValue']) {
        const path = `/input/attributes/request/http/headerMap/headers/${i}/${field}`
        this.apply({ op: 'remove', path, parts: path.slice(1).split('/') })
      }
    }
  }

  /** Fail closed: the whole input and result are erased and the event says why. */
  eraseAll (error: PortcullisError): void {
    for (const root of ['input', 'result']) {
      if (this.#get(root).present) {
        this.#set(root, undefined)
        this.ev.erased.push(`/${root}`)
      }
    }
    // reasons are computed from the input: with the input erased, they go too
    if (this.#get('reasons').present) {
      this.#set('reasons', undefined)
      this.ev.erased.push('/reasons')
    }
    this.ev.mask_error = { code: error.code, message: error.message }
  }
}

/** A configured erase list, parsed once (start-up fails on an invalid pointer). */
export interface ErasePlan {
  rules: MaskRule[]
  /** Header names whose header_map entries are erased too. */
  headers: string[]
}

const HEADER_POINTER = /^\/input\/attributes\/request\/http\/headers\/([^/]+)$/

export function erasePlan (pointers: readonly string[]): ErasePlan {
  const rules: MaskRule[] = []
  const headers: string[] = []
  for (const p of pointers) {
    let parts: string[]
    try {
      parts = parsePointer(p)
    } catch (err) {
      throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `config key audit.erase: ${JSON.stringify(p)} is not a mask pointer: ${(err as Error).message}`, { key: 'audit.erase', pointer: p })
    }
    rules.push({ op: 'remove', path: p, parts })
    const m = HEADER_POINTER.exec(p)
    if (m !== null) headers.push((m[1] as string).toLowerCase())
  }
  return { rules, headers }
}

/** What the bundle's log policies said about one event. */
export type PolicyVerdict =
  | { kind: 'keep', rules: MaskRule[] }
  | { kind: 'drop' }
  | { kind: 'failed', error: PortcullisError }

/** Does the snapshot answer this path (an entrypoint, one above it, or data)? */
export function answers (snapshot: PolicySnapshot, path: string): boolean {
  try {
    return snapshot.resolve(path).kind !== 'none'
  } catch {
    return false // inside a bundle's roots but not compiled: no such policy
  }
}

/**
 * Runs the drop policy, then the mask policy, on the snapshot the decision ran on, with the
 * event (as JSON text) as input. Entries of the mask set are parsed here; any that is not a
 * rule fails the whole set (see the header).
 */
export function runLogPolicies (snapshot: PolicySnapshot, eventText: string, drop: string | undefined, mask: string | undefined): PolicyVerdict {
  try {
    if (drop !== undefined) {
      const d = snapshot.evaluate(drop, undefined, { inputJson: eventText })
      // OPA: rs.Allowed() — exactly the boolean true
      if (d.defined && d.result === true) return { kind: 'drop' }
    }
    if (mask === undefined) return { kind: 'keep', rules: [] }
    const m = snapshot.evaluate(mask, undefined, { inputJson: eventText })
    if (!m.defined) return { kind: 'keep', rules: [] }
    if (!Array.isArray(m.result)) {
      return { kind: 'failed', error: new PortcullisError('PORTCULLIS_POLICY_EVAL_FAILED', `the mask policy ${mask} must be a set of rules, got ${m.result === null ? 'null' : typeof m.result}`, { path: mask }) }
    }
    const rules: MaskRule[] = []
    for (const entry of m.result) {
      try {
        rules.push(parseMaskRule(entry))
      } catch (err) {
        return { kind: 'failed', error: new PortcullisError('PORTCULLIS_POLICY_EVAL_FAILED', `the mask policy ${mask} returned an invalid rule: ${(err as Error).message}`, { path: mask, rule: entry }) }
      }
    }
    return { kind: 'keep', rules }
  } catch (err) {
    return { kind: 'failed', error: toPortcullisError(err) }
  }
}
