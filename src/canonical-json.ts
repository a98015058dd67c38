/**
 * The one canonical-JSON encoder: object keys sorted, no insignificant whitespace, so two
 * values that differ only in key order have the same text. Three users, two dialects:
 *
 * - `json` (the decision cache key, cache/key.ts): keys in JavaScript's string order, strings
 *   as JSON.stringify writes them. Injective — lone surrogates stay escaped (`\ud800`), so no
 *   two different inputs share a text (and so a cache entry) — and fast, because when an
 *   input's keys already arrive sorted JSON.stringify itself is canonical.
 * - `go` (OPA's rules, where the text must equal what OPA computes): keys in Go's byte order
 *   (UTF-8), strings as Go's encoding/json writes them (lone surrogates become U+FFFD; with
 *   `escapeHtml`, `<`, `>` and `&` are escaped as json.Marshal does), and numbers held as
 *   ExactNumber written with their exact digits. Bundle signatures hash YAML files this way
 *   (v1/bundle/hash.go, HTML escaping off; JSON files are canonicalized on their bytes by
 *   bundles/canonical-hash.ts, which follows the same rules); builtins marshal values this way
 *   (json.Marshal, HTML escaping on).
 */

/** A JSON number kept as the digits it was written with (a double cannot hold every JSON number). */
export class ExactNumber {
  constructor (readonly text: string) {}
  toJSON (): number { return Number(this.text) }
}

/**
 * A JSON object among parsed values: a plain object. An ExactNumber is an object in
 * JavaScript but a number in JSON, so it is not one (nor is anything of another prototype).
 */
export function isJsonObject (v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false
  const proto: unknown = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

const NUMBER_OR_STRING = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g

/**
 * JSON.parse of `text` that keeps the number tokens `keep` picks as what `make` builds of their
 * text (an ExactNumber); undefined when it picks none. Each picked token is rewritten as a string
 * with a private-use marker that the text holds nowhere (neither raw nor as a \u escape), so no
 * string of the text can be mistaken for a marked number; JSON.parse and a reviver do the rest.
 * Throws RangeError when every marker (U+E000–U+F8FF) occurs in the text: the caller refuses it.
 */
export function parseKeepingNumbers (text: string, keep: (tok: string) => boolean, make: (tok: string) => unknown = (t) => new ExactNumber(t)): { value: unknown } | undefined {
  // One pass notes every private-use character the text holds, raw or as a \u escape (a search
  // per candidate cost seconds on a hostile megabyte); the first one it does not hold is the mark.
  const used = new Uint8Array(0xF8FF - 0xE000 + 1)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 0xE000 && c <= 0xF8FF) used[c - 0xE000] = 1
    else if (c === 0x5C && (text.charCodeAt(i + 1) | 0x20) === 0x75) {
      const h = Number.parseInt(text.slice(i + 2, i + 6), 16)
      if (/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)) && h >= 0xE000 && h <= 0xF8FF) used[h - 0xE000] = 1
    }
  }
  const free = used.indexOf(0)
  if (free === -1) throw new RangeError('the text uses every private-use character its numbers could be marked with')
  const mark = String.fromCharCode(0xE000 + free)
  const m = mark
  let found = false
  const marked = text.replace(NUMBER_OR_STRING, (tok) => {
    if (tok.startsWith('"') || !keep(tok)) return tok
    found = true
    return `"${m}${tok}"`
  })
  if (!found) return undefined
  return { value: JSON.parse(marked, (_k, v: unknown) => typeof v === 'string' && v.startsWith(m) ? make(v.slice(1)) : v) }
}

/** Whether a JSON value holds an ExactNumber anywhere (JSON.stringify would write it rounded). */
export function containsExact (v: unknown): boolean {
  if (v instanceof ExactNumber) return true
  if (v === null || typeof v !== 'object') return false
  if (Array.isArray(v)) return v.some(containsExact)
  for (const k in v) if (Object.hasOwn(v, k) && containsExact((v as Record<string, unknown>)[k])) return true
  return false
}

export interface GoJsonOptions {
  /** json.Marshal escapes `<`, `>`, `&` (true); OPA's bundle hashing turns that off (false). */
  escapeHtml: boolean
  /** json.MarshalIndent's indent; absent: compact. */
  indent?: string
  /** json.MarshalIndent's prefix (OPA also writes it before the first line). */
  prefix?: string
}

/** Go's byte order of UTF-8 strings. Equal to code-unit order unless a surrogate is involved. */
export function compareUtf8 (a: string, b: string): number {
  if (a === b) return 0
  if (!/[\uD800-\uDFFF]/.test(a) && !/[\uD800-\uDFFF]/.test(b)) {
    // without surrogates, UTF-16 code-unit order is code-point order is UTF-8 byte order
    return a < b ? -1 : 1
  }
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * A Go encoding/json string literal.
 * - `escapeHtml` (json.Marshal of a value a builtin computed): `<`, `>`, `&`, U+2028/9 and
 *   control characters as \u00XX, and a lone surrogate — invalid UTF-8 on the Go side — as the
 *   escape `\ufffd`, as encodeState.string writes it;
 * - otherwise (OPA's bundle hashing, SetEscapeHTML(false), of text Go decoded first): decoding
 *   already replaced a lone surrogate by U+FFFD, written as the character itself.
 */
export function goJsonString (s: string, escapeHtml = true): string {
  if (!escapeHtml) {
    return JSON.stringify(s.replace(LONE_SURROGATE, '\uFFFD'))
      .replace(/\u2028/g, '\\u2028')
      .replace(/\u2029/g, '\\u2029')
  }
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += '\\u' + c.toString(16).padStart(4, '0')
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'
    else out += ch
  }
  return out + '"'
}

/**
 * Canonical JSON of a value in the `json` dialect (the decision cache's): keys sorted in
 * JavaScript order, undefined members dropped, undefined array items written as null.
 */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (value instanceof ExactNumber) return value.text
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      if (i > 0) out += ','
      out += v === undefined ? 'null' : canonicalJson(v)
    }
    return out + ']'
  }
  const keys = Object.keys(value)
  // most inputs arrive with sorted keys already; sort only when they are not
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) { keys.sort(); break }
  }
  let out = '{'
  let first = true
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k]
    if (v === undefined || typeof v === 'function') continue
    if (!first) out += ','
    out += JSON.stringify(k) + ':' + canonicalJson(v)
    first = false
  }
  return out + '}'
}

/** True when every object in `value` lists its keys (in Object.keys order) sorted: JSON.stringify is then canonicalJson. */
export function keysSorted (value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true
  // JSON.stringify would write an ExactNumber's rounded value: canonicalJson writes its digits
  if (value instanceof ExactNumber) return false
  if (Array.isArray(value)) {
    for (const v of value) if (!keysSorted(v)) return false
    return true
  }
  const keys = Object.keys(value)
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && (keys[i - 1] as string) > (keys[i] as string)) return false
    if (!keysSorted((value as Record<string, unknown>)[keys[i] as string])) return false
  }
  return true
}

/**
 * Canonical JSON of a value in the `go` dialect: what Go's encoding/json writes for the same
 * value decoded into Go maps (keys in byte order), ExactNumber and bigint with their digits.
 */
export function goCanonicalJson (value: unknown, opts: GoJsonOptions): string {
  const { indent, escapeHtml } = opts
  const prefix = opts.prefix ?? ''
  const nl = (depth: number): string => indent === undefined ? '' : '\n' + prefix + indent.repeat(depth)
  const sep = indent === undefined ? ':' : ': '
  const rec = (x: unknown, depth: number): string => {
    if (x === null || x === undefined) return 'null'
    if (typeof x === 'boolean') return String(x)
    if (typeof x === 'number') return JSON.stringify(x)
    if (x instanceof ExactNumber) return x.text
    if (typeof x === 'bigint') return x.toString()
    if (typeof x === 'string') return goJsonString(x, escapeHtml)
    if (x instanceof Date) return goJsonString(x.toISOString(), escapeHtml)
    if (Array.isArray(x)) {
      if (x.length === 0) return '[]'
      return '[' + x.map((e) => nl(depth + 1) + rec(e, depth + 1)).join(',') + nl(depth) + ']'
    }
    if (typeof x === 'object') {
      const o = x as Record<string, unknown>
      const keys = Object.keys(o).sort(compareUtf8)
      if (keys.length === 0) return '{}'
      return '{' + keys.map((k) => nl(depth + 1) + goJsonString(k, escapeHtml) + sep + rec(o[k], depth + 1)).join(',') + nl(depth) + '}'
    }
    throw new TypeError(`cannot encode a ${typeof x} as JSON`)
  }
  return (indent === undefined ? '' : prefix) + rec(value, 0)
}
