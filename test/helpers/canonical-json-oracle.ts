/**
 * The test oracle for src/bundles/canonical-hash.ts: the JavaScript-value implementation of
 * OPA's canonical JSON (bundle signature hashing) that Portcullis used before it, kept here
 * only to compare against. It parses the text into values (numbers as ExactNumber) and
 * writes them with goCanonicalJson.
 *
 * One change from the shipped version, where that one was wrong against Go: a key is stored
 * under its Go-decoded form (lone surrogates as U+FFFD), so two keys that differ only in lone
 * surrogates are one key and the last wins, as in Go (test/bundles/canonical-hash.test.ts
 * checks that case against a bundle signed by the real opa).
 */
import { ExactNumber, goCanonicalJson } from '../../src/canonical-json.js'

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
const LONE_SURROGATE_ONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * OPA's canonical text of JSON source text (bundle hashing): parsed as Go decodes it with
 * json.Number — every number keeps the digits it was written with, a duplicated key keeps its
 * last value — and written in the `go` dialect without HTML escaping. Throws SyntaxError on
 * invalid JSON; with `strict`, also on what Portcullis refuses in signed files although Go
 * accepts it (docs/policies.md §5): a repeated key in an object, a lone surrogate escape.
 */
export function goCanonicalJsonFromTextOracle (text: string, opts: { strict?: boolean } = {}): string {
  const p = new ExactParser(text, opts.strict === true)
  p.ws()
  const value = p.value()
  p.ws()
  if (p.i !== text.length) p.fail('unexpected trailing characters')
  return goCanonicalJson(value, { escapeHtml: false })
}

/** A JSON parser that keeps every number as an ExactNumber of its source text. */
class ExactParser {
  i = 0
  constructor (readonly s: string, readonly strict = false) {}

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

  value (): unknown {
    const c = this.s[this.i]
    if (c === '{') return this.object()
    if (c === '[') return this.array()
    if (c === '"') return this.string()
    if (c === 't') return this.literal('true', true)
    if (c === 'f') return this.literal('false', false)
    if (c === 'n') return this.literal('null', null)
    return this.number()
  }

  literal<T> (word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail(`expected ${word}`)
    this.i += word.length
    return v
  }

  number (): ExactNumber {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 1024))
    if (m === null) return this.fail('expected a value')
    this.i += m[0].length
    return new ExactNumber(m[0])
  }

  string (): string {
    const start = this.i
    this.i++
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i)
      if (c === 0x22) {
        this.i++
        const v = JSON.parse(this.s.slice(start, this.i)) as string
        if (this.strict && LONE_SURROGATE_ONE.test(v)) this.fail('lone surrogate')
        return v
      }
      if (c === 0x5c) this.i += 2
      else if (c < 0x20) this.fail('control character in string')
      else this.i++
    }
    return this.fail('unterminated string')
  }

  array (): unknown[] {
    this.i++
    const items: unknown[] = []
    this.ws()
    if (this.s[this.i] === ']') {
      this.i++
      return items
    }
    for (;;) {
      this.ws()
      items.push(this.value())
      this.ws()
      const c = this.s[this.i++]
      if (c === ']') return items
      if (c !== ',') this.fail('expected , or ]')
    }
  }

  object (): Record<string, unknown> {
    this.i++
    // Go's map decoding keeps the last value of a duplicated key (so does assignment here)
    const members: Record<string, unknown> = Object.create(null) as Record<string, unknown>
    this.ws()
    if (this.s[this.i] === '}') {
      this.i++
      return members
    }
    for (;;) {
      this.ws()
      if (this.s[this.i] !== '"') this.fail('expected a string key')
      const key = this.string()
      this.ws()
      if (this.s[this.i++] !== ':') this.fail('expected :')
      this.ws()
      if (this.strict && key in members) this.fail('duplicate key')
      members[key.replace(LONE_SURROGATE, '\uFFFD')] = this.value()
      this.ws()
      const c = this.s[this.i++]
      if (c === '}') return members
      if (c !== ',') this.fail('expected , or }')
    }
  }
}
