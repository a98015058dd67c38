/**
 * Deny reasons (docs/policies.md "Deny reasons"): a policy names, per entrypoint, a second rule
 * that says *why* a request was denied (`authz/reasons` beside `authz/allow`). The pipeline
 * evaluates it only on a deny — never on an allow (cost) — with the same input on the same
 * snapshot, and it never changes the decision: whatever goes wrong here is a `reasons_error`
 * on the record, the decision is still the deny the policy gave. OPA declined this feature
 * (open-policy-agent/opa#2897), so the shape is Portcullis's own.
 *
 * Where the rule is named: `policy.reasons` in the configuration (wins), else the answering
 * bundle's `.manifest` metadata, `metadata.portcullis.reasons: {"authz/allow": "authz/reasons"}`
 * (OPA keeps `metadata` through `opa build` and otherwise ignores it).
 */
import { PolicyError, toPortcullisError } from '../errors.js'
import type { PolicySnapshot } from '../policy/snapshot.js'

/** At most this many reasons are kept (the rest are dropped and the record marked truncated). */
export const MAX_REASONS = 32
/** At most this many bytes of JSON text of reasons are kept. */
export const MAX_REASONS_BYTES = 4096

/** What a deny's reasons rule gave: the (bounded) reasons, or why there are none. */
export interface ReasonsOutcome {
  reasons?: unknown[]
  /** True when entries were dropped to respect MAX_REASONS / MAX_REASONS_BYTES. */
  truncated?: boolean
  error?: { code: string, message: string }
}

const trim = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '')

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/**
 * The reasons rule for a decision path: the configured map first, then the manifest metadata of
 * the bundle that owns the path on this snapshot. Undefined when none is named.
 */
export function reasonsRuleFor (snapshot: PolicySnapshot, path: string, configured: Readonly<Record<string, string>> | undefined): string | undefined {
  if (configured !== undefined) {
    for (const [entry, rule] of Object.entries(configured)) if (trim(entry) === path) return trim(rule)
  }
  let res
  try { res = snapshot.resolve(path) } catch { return undefined }
  if (res.kind === 'none') return undefined
  // the loaded bundle keeps its whole manifest (bundles/manifest.ts); the engine types only what it reads
  const meta = (res.bundle.compiled.bundle.manifest as { metadata?: unknown }).metadata
  const portcullis = isObject(meta) ? meta.portcullis : undefined
  const map = isObject(portcullis) ? portcullis.reasons : undefined
  if (!isObject(map)) return undefined
  for (const [entry, rule] of Object.entries(map)) if (typeof rule === 'string' && rule !== '' && trim(entry) === path) return trim(rule)
  return undefined
}

/**
 * The reasons as recorded: a JSON array (a Rego set arrives as one) of strings or objects,
 * bounded in count and size. Entries beyond the bounds are dropped, in order, and marked.
 */
export function boundReasons (value: unknown): ReasonsOutcome {
  if (!Array.isArray(value)) {
    return { error: { code: 'PORTCULLIS_REASONS_INVALID', message: `the reasons rule must give an array or set of strings or objects, got ${value === null ? 'null' : typeof value}` } }
  }
  const out: unknown[] = []
  let bytes = 2 // []
  let truncated = false
  for (const r of value) {
    if (typeof r !== 'string' && !isObject(r)) {
      return { error: { code: 'PORTCULLIS_REASONS_INVALID', message: `a reason must be a string or an object, got ${r === null ? 'null' : Array.isArray(r) ? 'array' : typeof r}` } }
    }
    if (truncated) continue
    const size = Buffer.byteLength(JSON.stringify(r)) + (out.length > 0 ? 1 : 0)
    if (out.length >= MAX_REASONS || bytes + size > MAX_REASONS_BYTES) { truncated = true; continue }
    out.push(r)
    bytes += size
  }
  return truncated ? { reasons: out, truncated } : { reasons: out }
}

/**
 * Evaluates a reasons rule on the decision's snapshot with the decision's input. Never throws:
 * an evaluation error is its code, an undefined rule PORTCULLIS_REASONS_UNDEFINED.
 */
export function evaluateReasons (snapshot: PolicySnapshot, rule: string, input: unknown, opts: { strictBuiltinErrors?: boolean, inputJson?: string } = {}): ReasonsOutcome {
  try {
    const ev = snapshot.evaluate(rule, input, { strictBuiltinErrors: opts.strictBuiltinErrors ?? false, ...(opts.inputJson !== undefined ? { inputJson: opts.inputJson } : {}) })
    if (!ev.defined) throw new PolicyError('PORTCULLIS_REASONS_UNDEFINED', `the reasons rule ${rule} is undefined for this input`, { rule })
    return boundReasons(ev.result)
  } catch (err) {
    const e = toPortcullisError(err)
    return { error: { code: e.code, message: e.message } }
  }
}
