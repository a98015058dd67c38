/**
 * yaml.is_valid, yaml.unmarshal, yaml.marshal (OPA v1/topdown/encoding.go over OPA's
 * internal/yaml, which is go.yaml.in/yaml/v3 plus JSON conversion).
 *
 * `opa build -t wasm` leaves all three to the host. opa-wasm's JavaScript glue answers them
 * with the `yaml` package's defaults (YAML 1.2 core schema, errors swallowed, `yaml.is_valid`
 * of a number undefined, only the first document checked), so answers differed from OPA's.
 * Here the `yaml` package only parses (every document, errors kept); values are resolved with
 * yaml.v3's rules (resolve.go: `0x1F`, `0o17`, `017`, `0b11`, `1_000` are integers, `yes` a
 * string, plain timestamps stay strings as OPA's normalize makes them), keys and merge keys
 * follow OPA's internal/yaml (dedupeKeys, collapseMergeKeys, keyString), and yaml.marshal
 * writes the block style yaml.v3's emitter writes (indent 2, keys in its natural order, its
 * quoting rules), which no YAML library in JavaScript reproduces.
 */
import { Alias, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, Scalar, type Document, type Node } from 'yaml'
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { ExactNumber, stringifyExact } from './exact-json.js'
import { isObj } from './args.js'
import { goFloat } from './sprintf.js'

/** Nodes one conversion may visit: aliases can multiply a small text (yaml.v3 refuses "excessive aliasing" too). */
const MAX_NODES = 1_000_000

type Value = null | boolean | number | string | ExactNumber | Value[] | { [k: string]: Value }

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/
const OLD_BOOL = new Set(['y', 'Y', 'yes', 'Yes', 'YES', 'on', 'On', 'ON', 'n', 'N', 'no', 'No', 'NO', 'off', 'Off', 'OFF'])
const RESOLVE_MAP = new Map<string, [string, unknown]>([
  ...['true', 'True', 'TRUE'].map((s): [string, [string, unknown]] => [s, ['bool', true]]),
  ...['false', 'False', 'FALSE'].map((s): [string, [string, unknown]] => [s, ['bool', false]]),
  ...['', '~', 'null', 'Null', 'NULL'].map((s): [string, [string, unknown]] => [s, ['null', null]]),
  ...['.nan', '.NaN', '.NAN'].map((s): [string, [string, unknown]] => [s, ['float', Number.NaN]]),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((s): [string, [string, unknown]] => [s, ['float', Number.POSITIVE_INFINITY]]),
  ...['-.inf', '-.Inf', '-.INF'].map((s): [string, [string, unknown]] => [s, ['float', Number.NEGATIVE_INFINITY]]),
  ['<<', ['merge', '<<']],
])

/** Go strconv.ParseInt(s, base, 64) (base 0: sign, then 0x / 0o / 0b / 0 prefixes), unsigned range when `unsigned`. */
function goParseInt (s: string, base: number, unsigned = false): bigint | undefined {
  let neg = false
  let t = s
  if (!unsigned && (t.startsWith('+') || t.startsWith('-'))) { neg = t.startsWith('-'); t = t.slice(1) }
  let b = base
  if (b === 0) {
    b = 10
    if (/^0[xX]/.test(t)) { b = 16; t = t.slice(2) } else if (/^0[oO]/.test(t)) { b = 8; t = t.slice(2) } else if (/^0[bB]/.test(t)) { b = 2; t = t.slice(2) } else if (t.length > 1 && t.startsWith('0')) { b = 8; t = t.slice(1) }
  }
  const digits = b === 16 ? /^[0-9a-fA-F]+$/ : b === 8 ? /^[0-7]+$/ : b === 2 ? /^[01]+$/ : /^[0-9]+$/
  if (!digits.test(t)) return undefined
  const prefix = b === 16 ? '0x' : b === 8 ? '0o' : b === 2 ? '0b' : ''
  const v = BigInt(prefix + t) * (neg ? -1n : 1n)
  if (unsigned ? v > UINT64_MAX : v < INT64_MIN || v > INT64_MAX) return undefined
  return v
}

/** Go strconv.ParseFloat(s, 64) for the forms YAML reaches it with; undefined on syntax or range error. */
function goParseFloat (s: string): number | undefined {
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined
  const v = Number(s)
  return Number.isFinite(v) ? v : undefined
}

/** yaml.v3 parseTimestamp's accepted forms (time.Parse layouts with short date fields). */
function isTimestamp (s: string): boolean {
  const m = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:([Tt])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d{1,9})?))?$/.exec(s)
  if (m === null) return false
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return false
  const hms = m[4] !== undefined ? [m[5], m[6], m[7]] : m[8] !== undefined ? [m[8], m[9], m[10]] : undefined
  return hms === undefined || (Number(hms[0]) < 24 && Number(hms[1]) < 60 && Number(hms[2]) < 60)
}

/** A resolved integer as the JSON number OPA gets (int64 / uint64 exactly). */
function intValue (v: bigint): number | ExactNumber {
  return Number.isSafeInteger(Number(v)) ? Number(v) : new ExactNumber(v.toString())
}

/** yaml.v3 resolve(tag, in) for scalars: the tag it resolves to and the Go value. */
function resolve (tag: string, text: string): [string, unknown] {
  if (tag === 'str' || tag === 'binary') return ['str', text]
  const hint = text === '' ? 'N' : /[+\-0-9]/.test(text[0] as string) ? 'D' : /[yYnNtTfFoO~]/.test(text[0] as string) ? 'M' : text[0] === '.' ? '.' : ''
  if (hint !== '') {
    const item = RESOLVE_MAP.get(text)
    if (item !== undefined) return item
    if (hint === '.') {
      const f = goParseFloat(text)
      if (f !== undefined) return ['float', f]
    } else if (hint === 'D') {
      if ((tag === '' || tag === 'timestamp') && isTimestamp(text)) return ['timestamp', text]
      const plain = text.replaceAll('_', '')
      const i = goParseInt(plain, 0)
      if (i !== undefined) return ['int', i]
      const u = goParseInt(plain, 0, true)
      if (u !== undefined) return ['int', u]
      if (YAML_STYLE_FLOAT.test(plain)) {
        const f = goParseFloat(plain)
        if (f !== undefined) return ['float', f]
      }
      for (const [prefix, base] of [['0b', 2], ['0o', 8]] as const) {
        if (plain.startsWith(prefix)) {
          const v = goParseInt(plain.slice(2), base) ?? goParseInt(plain.slice(2), base, true)
          if (v !== undefined) return ['int', v]
        } else if (plain.startsWith('-' + prefix)) {
          const v = goParseInt('-' + plain.slice(3), base)
          if (v !== undefined) return ['int', v]
        }
      }
    }
  }
  return ['str', text]
}

const SHORT_TAGS: Record<string, string> = {
  'tag:yaml.org,2002:str': 'str', 'tag:yaml.org,2002:int': 'int', 'tag:yaml.org,2002:float': 'float', 'tag:yaml.org,2002:bool': 'bool',
  'tag:yaml.org,2002:null': 'null', 'tag:yaml.org,2002:timestamp': 'timestamp', 'tag:yaml.org,2002:binary': 'binary', 'tag:yaml.org,2002:merge': 'merge',
}

/** Go's time.Time JSON (RFC 3339 with the fraction's trailing zeros cut) of an explicit !!timestamp. */
function timestampJson (d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, 'Z').replace(/\.(\d*?)0*Z$/, '.$1Z')
}

class Converter {
  #nodes = 0
  readonly #active = new Set<Node>()
  constructor (readonly b: string, readonly doc: Document.Parsed) {}

  fail (message: string): never {
    throw new BuiltinError(this.b, `yaml: ${message}`)
  }

  /** The node an alias names (yaml.v3 decodes the anchored node in its place). */
  target (n: unknown): unknown {
    if (!isAlias(n)) return n
    const t = (n as Alias).resolve(this.doc)
    if (t === undefined) this.fail(`unknown anchor '${(n as Alias).source}' referenced`)
    return t
  }

  /** A scalar node's Go value (before JSON conversion). */
  scalar (n: Scalar): unknown {
    const tag = n.tag === undefined ? '' : SHORT_TAGS[n.tag] ?? n.tag
    const v = n.value
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8')
    if (v instanceof Date) {
      if (Number.isNaN(v.getTime())) this.fail('cannot decode !!timestamp')
      return timestampJson(v)
    }
    if (typeof v !== 'string') return v
    if (tag === '!' || (tag !== '' && !(tag in RESOLVABLE))) return v
    const plain = n.type === Scalar.PLAIN
    if (tag === '' && !plain) return v
    const [rtag, out] = resolve(tag, v)
    if (tag === '' || tag === rtag || tag === 'str') return rtag === 'timestamp' ? v : rtag === 'merge' ? '<<' : out
    if (tag === 'float' && rtag === 'int') return Number(out as bigint)
    if (tag === 'timestamp' && rtag === 'timestamp') return v
    return this.fail(`cannot decode !!${rtag} \`${v}\` as a !!${tag}`)
  }

  value (node: unknown): Value {
    if (++this.#nodes > MAX_NODES) this.fail('document contains excessive aliasing')
    const n = this.target(node)
    if (n === null || n === undefined) return null
    if (this.#active.has(n as Node)) this.fail('anchor value contains itself')
    if (isScalar(n)) return this.json(this.scalar(n))
    this.#active.add(n as Node)
    try {
      if (isSeq(n)) return n.items.map((x) => this.value(x))
      if (isMap(n)) return this.mapping(n.items)
    } finally {
      this.#active.delete(n as Node)
    }
    return this.fail('unsupported node')
  }

  /** Go value -> JSON value, as encoding/json marshals it (NaN and infinities are errors). */
  json (v: unknown): Value {
    if (typeof v === 'bigint') return intValue(v)
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) this.fail(`json: unsupported value: ${goFloat(v, 'g', -1)}`)
      return v
    }
    return v as Value
  }

  /** keyString of OPA's internal/yaml: the JSON object key of a decoded mapping key. */
  key (node: unknown): string {
    const n = this.target(node)
    if (!isScalar(n)) return this.fail('unsupported map key of a collection type')
    const k = this.scalar(n)
    if (typeof k === 'string') return k
    if (typeof k === 'bigint') return k.toString()
    if (typeof k === 'boolean') return String(k)
    if (typeof k === 'number') return float32Text(k)
    return this.fail(`unsupported map key: ${String(k)}`)
  }

  /**
   * A mapping: explicit keys first (the last of duplicates wins, in the first's place), then
   * the merge keys' maps, each key only if no earlier source set it (yaml.v3 decoder.merge).
   */
  mapping (items: readonly unknown[]): Value {
    const out: Record<string, Value> = {}
    const merges: unknown[] = []
    for (const p of items) {
      if (!isPair(p)) continue
      const k = this.target(p.key)
      if (isScalar(k) && k.type === Scalar.PLAIN && k.value === '<<' && (k.tag === undefined || SHORT_TAGS[k.tag] === 'merge')) {
        merges.push(p.value)
        continue
      }
      const name = this.key(p.key)
      // An own-property write: a key named __proto__ is data, not the prototype.
      Object.defineProperty(out, name, { value: this.value(p.value), enumerable: true, writable: true, configurable: true })
    }
    const sources: unknown[] = []
    for (const m of merges) {
      const t = this.target(m)
      if (isSeq(t) && !isAlias(m)) sources.push(...t.items)
      else sources.push(m)
    }
    for (const s of sources) {
      const t = this.target(s)
      if (!isMap(t)) this.fail('map merge requires map or sequence of maps as the value')
      const merged = this.value(t) as Record<string, Value>
      for (const [k, v] of Object.entries(merged)) {
        if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
      }
    }
    return out
  }
}

const RESOLVABLE: Record<string, true> = { str: true, int: true, float: true, bool: true, null: true, timestamp: true, binary: true, merge: true }

/** strconv.FormatFloat(k, 'g', -1, 32) with yaml's names for the infinities and NaN. */
function float32Text (k: number): string {
  const f = Math.fround(k)
  if (Number.isNaN(f)) return '.nan'
  if (f === Number.POSITIVE_INFINITY) return '.inf'
  if (f === Number.NEGATIVE_INFINITY) return '-.inf'
  let p = 1
  while (p < 9 && Math.fround(Number(f.toPrecision(p))) !== f) p++
  return goFloat(Number(f.toPrecision(p)), 'g', -1)
}

/** YAMLToJSON of OPA's internal/yaml: every document must parse; the first one is the value. */
function unmarshal (b: string, text: string): Value {
  const docs = parseAllDocuments(text, { version: '1.2', schema: 'failsafe', uniqueKeys: false, prettyErrors: false, logLevel: 'silent' })
  const list = Array.isArray(docs) ? docs : []
  for (const d of list) {
    const e = d.errors[0]
    if (e !== undefined) throw new BuiltinError(b, `yaml: ${e.message.split('\n')[0] as string}`)
  }
  const first = list[0]
  if (first === undefined) return null
  return new Converter(b, first).value(first.contents)
}

// ---- yaml.v3's emitter, for JSON values ----

/** libyaml is_printable (the emitter runs with unicode on). */
function isPrintable (cp: number): boolean {
  return cp === 0x0a || (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd && cp !== 0xfeff)
}
const isBreak = (c: string): boolean => c === '\n' || c === '\r' || c === '\u0085' || c === '\u2028' || c === '\u2029'
/** libyaml is_blankz: a space, a tab, a line break (or the end). */
const isBlank = (c: string | undefined): boolean => c === undefined || c === ' ' || c === '\t' || isBreak(c)

interface ScalarAnalysis { multiline: boolean, blockPlain: boolean, singleQuoted: boolean, block: boolean }

/** yaml_emitter_analyze_scalar (emitterc.go), block context. */
function analyze (s: string): ScalarAnalysis {
  if (s === '') return { multiline: false, blockPlain: true, singleQuoted: true, block: false }
  const chars = [...s]
  let blockIndicators = s.startsWith('---') || s.startsWith('...')
  let lineBreaks = false; let special = false; let tabs = false
  let leadingSpace = false; let leadingBreak = false; let trailingSpace = false; let trailingBreak = false
  let breakSpace = false; let spaceBreak = false; let previousSpace = false; let previousBreak = false
  let precededByWhitespace = true
  chars.forEach((c, i) => {
    const next = chars[i + 1]
    const followedByWhitespace = next === undefined || next === ' ' || next === '\t'
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(c)) blockIndicators = true
      else if ((c === '?' || c === ':' || c === '-') && followedByWhitespace) blockIndicators = true
    } else if (c === ':' && followedByWhitespace) blockIndicators = true
    else if (c === '#' && precededByWhitespace) blockIndicators = true
    if (c === '\t') tabs = true
    else if (!isPrintable(c.codePointAt(0) as number)) special = true
    const last = i === chars.length - 1
    if (c === ' ') {
      if (i === 0) leadingSpace = true
      if (last) trailingSpace = true
      if (previousBreak) breakSpace = true
      previousSpace = true; previousBreak = false
    } else if (isBreak(c)) {
      lineBreaks = true
      if (i === 0) leadingBreak = true
      if (last) trailingBreak = true
      if (previousSpace) spaceBreak = true
      previousSpace = false; previousBreak = true
    } else {
      previousSpace = false; previousBreak = false
    }
    precededByWhitespace = isBlank(c)
  })
  let blockPlain = true; let singleQuoted = true; let block = true
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) blockPlain = false
  if (trailingSpace) block = false
  if (breakSpace) { blockPlain = false; singleQuoted = false }
  if (spaceBreak || tabs || special) { blockPlain = false; singleQuoted = false }
  if (spaceBreak || special) block = false
  if (lineBreaks) blockPlain = false
  if (blockIndicators) blockPlain = false
  return { multiline: lineBreaks, blockPlain, singleQuoted, block }
}

/** yaml_emitter_write_double_quoted_scalar's escapes. */
function doubleQuoted (s: string): string {
  let out = '"'
  for (const c of s) {
    const cp = c.codePointAt(0) as number
    if (isPrintable(cp) && !isBreak(c) && c !== '"' && c !== '\\') { out += c; continue }
    const named: Record<number, string> = { 0: '0', 7: 'a', 8: 'b', 9: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r', 0x1b: 'e', 0x22: '"', 0x5c: '\\', 0x85: 'N', 0xa0: '_', 0x2028: 'L', 0x2029: 'P' }
    const n = named[cp]
    if (n !== undefined) out += '\\' + n
    else if (cp <= 0xff) out += '\\x' + cp.toString(16).toUpperCase().padStart(2, '0')
    else if (cp <= 0xffff) out += '\\u' + cp.toString(16).toUpperCase().padStart(4, '0')
    else out += '\\U' + cp.toString(16).toUpperCase().padStart(8, '0')
  }
  return out + '"'
}

/**
 * A literal block scalar (yaml_emitter_write_literal_scalar), its lines at `indent`. The
 * text leaves out one final line break when it ends in one: the caller writes a break after
 * every node, where the emitter writes none after a block that already ended its line.
 */
function literal (s: string, indent: number): string {
  let out = '|'
  if (s.startsWith(' ') || isBreak(s[0] as string)) out += '2'
  if (!s.endsWith('\n')) out += '-'
  else if (s === '\n' || s.endsWith('\n\n')) out += '+'
  out += '\n'
  const pad = ' '.repeat(indent)
  let lineStart = true
  for (const c of s) {
    if (c === '\n') { out += '\n'; lineStart = true; continue }
    if (lineStart) out += pad
    out += c
    lineStart = false
  }
  return out.endsWith('\n') ? out.slice(0, -1) : out
}

/** encoder.stringv plus the emitter's style selection: plain, 'single', "double" or a literal block. */
function stringScalar (s: string, indent: number, key: boolean): string {
  const [rtag] = resolve('', s)
  const canUsePlain = rtag === 'str' && !(BASE60_FLOAT.test(s) || OLD_BOOL.has(s))
  const a = analyze(s)
  let style: 'plain' | 'single' | 'double' | 'literal' = s.includes('\n') ? 'literal' : canUsePlain ? 'plain' : 'double'
  if (key && a.multiline) style = 'double'
  if (style === 'plain' && (!a.blockPlain || (s === '' && key))) style = 'single'
  if (style === 'single' && !a.singleQuoted) style = 'double'
  if (style === 'literal' && (!a.block || key)) style = 'double'
  switch (style) {
    case 'plain': return s
    case 'single': return `'${s.replaceAll('\'', '\'\'')}'`
    case 'double': return doubleQuoted(s)
    case 'literal': return literal(s, indent)
  }
}

/** encoder.intv / uintv / floatv of the number yaml.v3 reads back from OPA's JSON text. */
function numberScalar (v: number | ExactNumber): string {
  const text = v instanceof ExactNumber ? v.text : String(v)
  const i = goParseInt(text, 10) ?? goParseInt(text, 10, true)
  if (i !== undefined) return i.toString()
  const f = Number(text)
  if (!Number.isFinite(f)) return f > 0 ? '.inf' : f < 0 ? '-.inf' : '.nan'
  return goFloat(f, 'g', -1)
}

/** yaml.v3 keyList.Less on string keys: letters before digits, digit runs compared as numbers. */
export function yamlKeyLess (a: string, b: string): boolean {
  const ar = [...a]; const br = [...b]
  const isDigit = (c: string): boolean => /\p{Nd}/u.test(c)
  const isLetter = (c: string): boolean => /\p{L}/u.test(c)
  let digits = false
  for (let i = 0; i < ar.length && i < br.length; i++) {
    const x = ar[i] as string; const y = br[i] as string
    if (x === y) { digits = isDigit(x); continue }
    const al = isLetter(x); const bl = isLetter(y)
    if (al && bl) return (x.codePointAt(0) as number) < (y.codePointAt(0) as number)
    if (al || bl) return digits ? al : bl
    let an = 0n; let bn = 0n
    if (x === '0' || y === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j] as string); j--) {
        if (ar[j] !== '0') { an = 1n; bn = 1n; break }
      }
    }
    let ai = i; let bi = i
    for (; ai < ar.length && isDigit(ar[ai] as string); ai++) an = an * 10n + BigInt((ar[ai] as string).charCodeAt(0) - 48)
    for (; bi < br.length && isDigit(br[bi] as string); bi++) bn = bn * 10n + BigInt((br[bi] as string).charCodeAt(0) - 48)
    if (an !== bn) return an < bn
    if (ai !== bi) return ai < bi
    return (x.codePointAt(0) as number) < (y.codePointAt(0) as number)
  }
  return ar.length < br.length
}

const isEmptyCollection = (v: unknown): boolean => (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.keys(v).length === 0)
const isCollection = (v: unknown): boolean => Array.isArray(v) || isObj(v)

/** A scalar or an empty collection, with the indentation a literal block would take. */
function inline (b: string, v: unknown, indent: number): string {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return String(v)
  if (typeof v === 'number' || v instanceof ExactNumber) return numberScalar(v)
  if (typeof v === 'string') return stringScalar(v, indent, false)
  if (Array.isArray(v)) return '[]'
  if (isObj(v)) return '{}'
  throw new BuiltinError(b, `unsupported value ${String(v)}`)
}

/** A node whose first line the caller has placed; later lines start at column `indent`. */
function block (b: string, v: unknown, indent: number): string {
  const pad = ' '.repeat(indent)
  if (Array.isArray(v) && v.length > 0) {
    return v.map((x, i) => (i === 0 ? '' : pad) + '- ' + (isCollection(x) && !isEmptyCollection(x) ? block(b, x, indent + 2) : inline(b, x, indent + 2))).join('\n')
  }
  if (isObj(v) && Object.keys(v).length > 0) {
    const keys = Object.keys(v).sort((x, y) => (yamlKeyLess(x, y) ? -1 : yamlKeyLess(y, x) ? 1 : 0))
    return keys.map((k, i) => {
      const x = v[k]
      const simple = !k.includes('\n') && [...k].length <= 128
      const key = simple ? stringScalar(k, indent, true) : `? ${stringScalar(k, indent + 2, false)}\n${pad}`
      const head = (i === 0 ? '' : pad) + key + ':'
      if (isCollection(x) && !isEmptyCollection(x)) return head + '\n' + pad + '  ' + block(b, x, indent + 2)
      return head + ' ' + inline(b, x, indent + 2)
    }).join('\n')
  }
  return inline(b, v, indent + 2)
}

/** yaml.Marshal of OPA's internal/yaml: one document, indent 2, ending in a newline. */
function marshal (b: string, v: unknown): string {
  return block(b, v, 0) + '\n'
}

export const yamlBuiltins: BuiltinSpec[] = [
  {
    name: 'yaml.unmarshal',
    impl: (_ctx, [x]) => {
      const b = 'yaml.unmarshal'
      if (typeof x !== 'string') throw new BuiltinError(b, 'operand 1 must be string')
      return new RawJson(stringifyExact(unmarshal(b, x)))
    },
  },
  {
    name: 'yaml.is_valid',
    // OPA: any operand that is not a string is simply not valid YAML.
    impl: (_ctx, [x]) => {
      if (typeof x !== 'string') return false
      try {
        unmarshal('yaml.is_valid', x)
        return true
      } catch (err) {
        if (err instanceof BuiltinError) return false
        throw err
      }
    },
  },
  {
    name: 'yaml.marshal',
    numberText: true,
    impl: (_ctx, [x]) => marshal('yaml.marshal', x),
  },
]
