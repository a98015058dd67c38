/**
 * YAML data files as OPA reads them, for the bundle loader and the signed-bundle hash alike.
 *
 * OPA turns a bundle's `data.yaml` into JSON with sigs.k8s.io/yaml over go-yaml v3, whose
 * resolution of plain scalars is YAML 1.2's core schema for booleans and nulls (`yes`, `on`
 * stay strings) but its own for numbers (resolve.go): underscores are dropped, then Go's
 * strconv.ParseInt(s, 0, 64) — so `0755` is octal 493, `0b101` is 5, `0x1_F` is 31 — then
 * ParseUint, then ParseFloat where the text looks like a float (`08` is 8, an integer beyond 64
 * bits a float), and a number ParseFloat cannot hold (`1e400`) stays a string. Merge keys (`<<`)
 * are merged. The yaml package's core schema differs on each of these, so plain scalars that
 * start like a number are resolved here by go-yaml's rule; integers beyond a double's 53 bits
 * stay exact (ExactNumber), as OPA keeps them.
 *
 * Alias expansion is bounded twice: in count (the yaml package's maxAliasCount) and in size —
 * an anchor of megabytes used by a few dozen aliases would otherwise expand into gigabytes
 * before any limit saw it. The expanded text (the file plus, for every alias, what its anchor
 * expands to) may not exceed max(4 × the file, 4 MiB).
 */
import { isNode, parseDocument, visit, type Document, type Node, type ScalarTag } from 'yaml'
import { ExactNumber } from '../canonical-json.js'

/** go-yaml's yamlStyleFloat (resolve.go), on the text without underscores. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n
const DIGITS: Record<number, RegExp> = { 2: /^[01]+$/, 8: /^[0-7]+$/, 10: /^[0-9]+$/, 16: /^[0-9a-fA-F]+$/ }
const PREFIX: Record<number, string> = { 2: '0b', 8: '0o', 10: '', 16: '0x' }

/** Go's strconv.ParseInt(s, 0, bits) / ParseUint's digits: the value, or undefined where Go fails (range left to the caller). */
function goParseInteger (s: string, signed: boolean): bigint | undefined {
  let body = s
  let negative = false
  if (signed && (body.startsWith('+') || body.startsWith('-'))) {
    negative = body.startsWith('-')
    body = body.slice(1)
  }
  let base = 10
  if (body.length > 1 && body[0] === '0') {
    const p = (body[1] as string).toLowerCase()
    if (p === 'x') { base = 16; body = body.slice(2) } else if (p === 'o') { base = 8; body = body.slice(2) } else if (p === 'b') { base = 2; body = body.slice(2) } else { base = 8; body = body.slice(1) }
  }
  if (!(DIGITS[base] as RegExp).test(body)) return undefined
  const v = BigInt(`${PREFIX[base] as string}${body}`)
  return negative ? -v : v
}

function integerValue (v: bigint): number | ExactNumber {
  const n = Number(v)
  return Number.isSafeInteger(n) ? n : new ExactNumber(v.toString())
}

/** go-yaml v3's resolution of a plain scalar that starts like a number: a number, or the text itself. */
export function goYamlNumber (text: string): number | ExactNumber | string {
  const plain = text.replaceAll('_', '')
  const signed = goParseInteger(plain, true)
  if (signed !== undefined && signed >= INT64_MIN && signed <= INT64_MAX) return integerValue(signed)
  const unsigned = goParseInteger(plain, false)
  if (unsigned !== undefined && unsigned >= 0n && unsigned <= UINT64_MAX) return integerValue(unsigned)
  if (YAML_STYLE_FLOAT.test(plain)) {
    const f = Number(plain)
    if (Number.isFinite(f)) return f
  }
  return text
}

/**
 * Plain scalars that start like a number (a digit, or a sign or dot before one): resolved by
 * go-yaml's rule, ahead of the core schema's int and float tags. `.inf` and `.nan` are left to
 * the core float tag (OPA then fails to write them as JSON; so does the loader).
 */
const GO_NUMBER: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  test: /^[-+]?\.?[0-9][0-9A-Za-z_.+-]*$/,
  resolve: (text: string) => goYamlNumber(text) as unknown as number,
  identify: () => false,
}

/** The expanded size of each node that aliases point at, memoised; Infinity for an alias inside its own anchor. */
function expandedSize (node: Node, doc: Document, memo: Map<Node, number>): number {
  const known = memo.get(node)
  if (known !== undefined) return known
  memo.set(node, Infinity) // in progress: a recursive alias expands without end
  const range = node.range
  let size = range === null || range === undefined ? 0 : range[2] - range[0]
  visit(node, {
    Alias: (_key, alias) => {
      const target = alias.resolve(doc)
      if (target !== undefined && isNode(target)) size += expandedSize(target, doc, memo)
    },
  })
  memo.set(node, size)
  return size
}

/**
 * Parses one YAML data document as OPA reads it (see above). Throws (Error) on a syntax error,
 * several documents, a repeated key, an excessive alias expansion, or a value JSON cannot hold.
 */
export function parseDataYaml (text: string): unknown {
  const doc = parseDocument(text, {
    version: '1.2',
    merge: true,
    uniqueKeys: true,
    customTags: (tags) => [GO_NUMBER, ...tags],
  })
  if (doc.errors.length > 0) throw doc.errors[0] as Error
  if (doc.contents !== null && isNode(doc.contents)) {
    let aliases = false
    visit(doc, { Alias: () => { aliases = true; return visit.BREAK } })
    if (aliases) {
      const limit = Math.max(4 * text.length, 4 * 1024 * 1024)
      const size = expandedSize(doc.contents, doc, new Map())
      if (size > limit) throw new RangeError(`its aliases expand it to ${Number.isFinite(size) ? `${size} bytes` : 'without end'}, more than ${limit} (4 × the file, at least 4 MiB)`)
    }
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 })
  // JSON holds no Infinity or NaN (.inf, .nan): OPA's conversion fails on them too
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError(`it holds ${String(v)}, which JSON cannot hold`)
    if (Array.isArray(v)) for (const x of v) stack.push(x)
    else if (v !== null && typeof v === 'object' && !(v instanceof ExactNumber)) for (const x of Object.values(v)) stack.push(x)
  }
  return value
}
