/**
 * OPA's canonical form for hashing structured bundle files (v1/bundle/hash.go): the JSON value
 * re-encoded with object keys sorted (Go's byte order), no whitespace, numbers kept exactly as
 * written (OPA decodes with json.Number), strings encoded as Go's encoding/json does with HTML
 * escaping off. Signatures over bundle files are independent of formatting because of this.
 */

/** Canonical text of JSON source text. Throws SyntaxError on invalid JSON. */
export function canonicalJsonFromText (text: string): string {
  const p = new Parser(text)
  p.ws()
  const out = p.value()
  p.ws()
  if (p.i !== text.length) p.fail('unexpected trailing characters')
  return out
}

/** Canonical text of an already-parsed value (used for YAML files; numbers as JavaScript prints them). */
export function canonicalJsonFromValue (value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') return goString(value)
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return goString(value.toISOString())
  if (Array.isArray(value)) return `[${value.map(canonicalJsonFromValue).join(',')}]`
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort(compareUtf8)
    return `{${keys.map((k) => `${goString(k)}:${canonicalJsonFromValue((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  throw new TypeError(`cannot canonicalize a ${typeof value}`)
}

function compareUtf8 (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** Go encoding/json string encoding with SetEscapeHTML(false). */
function goString (s: string): string {
  return JSON.stringify(s.replace(LONE_SURROGATE, '\uFFFD'))
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
}

class Parser {
  i = 0
  constructor (readonly s: string) {}

  fail (what: string): never {
    throw new SyntaxError(`invalid JSON at offset ${this.i}: ${what}`)
  }

  ws (): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i)
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++
      else break
    }
  }

  value (): string {
    const c = this.s[this.i]
    if (c === '{') return this.object()
    if (c === '[') return this.array()
    if (c === '"') return goString(this.string())
    if (c === 't') return this.literal('true')
    if (c === 'f') return this.literal('false')
    if (c === 'n') return this.literal('null')
    return this.number()
  }

  literal (word: string): string {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length
      return word
    }
    return this.fail(`expected ${word}`)
  }

  number (): string {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 1024))
    if (m === null) return this.fail('expected a value')
    this.i += m[0].length
    return m[0]
  }

  string (): string {
    const start = this.i
    this.i++
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i)
      if (c === 0x22) {
        this.i++
        return JSON.parse(this.s.slice(start, this.i)) as string
      }
      if (c === 0x5c) this.i += 2
      else if (c < 0x20) this.fail('control character in string')
      else this.i++
    }
    return this.fail('unterminated string')
  }

  array (): string {
    this.i++
    const items: string[] = []
    this.ws()
    if (this.s[this.i] === ']') {
      this.i++
      return '[]'
    }
    for (;;) {
      this.ws()
      items.push(this.value())
      this.ws()
      const c = this.s[this.i++]
      if (c === ']') return `[${items.join(',')}]`
      if (c !== ',') this.fail('expected , or ]')
    }
  }

  object (): string {
    this.i++
    // Go's map decoding keeps the last value of a duplicated key.
    const members = new Map<string, string>()
    this.ws()
    if (this.s[this.i] === '}') {
      this.i++
      return '{}'
    }
    for (;;) {
      this.ws()
      if (this.s[this.i] !== '"') this.fail('expected a string key')
      const key = this.string()
      this.ws()
      if (this.s[this.i++] !== ':') this.fail('expected :')
      this.ws()
      members.set(key, this.value())
      this.ws()
      const c = this.s[this.i++]
      if (c === '}') break
      if (c !== ',') this.fail('expected , or }')
    }
    const keys = [...members.keys()].sort(compareUtf8)
    return `{${keys.map((k) => `${goString(k)}:${members.get(k) as string}`).join(',')}}`
  }
}
