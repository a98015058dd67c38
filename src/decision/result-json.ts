/**
 * Answer bodies that carry decision results exactly. A result holding a number a double cannot
 * represent comes with its exact JSON text (Decision.resultJson); JSON.stringify cannot write
 * raw number text (Node 20 has no JSON.rawJSON), so such a result is put in the body as a
 * placeholder string and the serialized body gets the exact text in its place.
 */
import { randomUUID } from 'node:crypto'
import type { Decision } from './types.js'

export class ResultSlots {
  readonly #texts: string[] = []
  // A per-body nonce in the placeholder: a string in the body (a result echoing caller input)
  // cannot name a slot without knowing it. Made only when a slot is used.
  #mark: string | undefined

  /** The value to put in the body for `d`'s result. */
  valueOf (d: Pick<Decision, 'result' | 'resultJson'>): unknown {
    if (d.resultJson === undefined) return d.result
    this.#texts.push(d.resultJson)
    this.#mark ??= `\u0000portcullis-result-${randomUUID()}-`
    return `${this.#mark}${this.#texts.length - 1}`
  }

  /** JSON text of `body` with every placeholder replaced by its exact result text. */
  stringify (body: unknown, indent?: number): string {
    const text = JSON.stringify(body, null, indent)
    if (this.#mark === undefined) return text
    // JSON.stringify writes the mark's NUL as \u0000 and leaves the rest (hex and dashes) as is
    const quoted = JSON.stringify(this.#mark).slice(0, -1)
    return text.replaceAll(new RegExp(`${quoted.replaceAll('\\', '\\\\')}(\\d+)"`, 'g'), (_m, i: string) => this.#texts[Number(i)] as string)
  }
}
