/**
 * Answer bodies that carry decision results exactly. A result holding a number a double cannot
 * represent comes with its exact JSON text (Decision.resultJson); JSON.stringify cannot write
 * raw number text (Node 20 has no JSON.rawJSON), so such a result is put in the body as a
 * placeholder string and the serialized body gets the exact text in its place.
 */
import type { Decision } from './types.js'

const MARK = '\u0000portcullis-result-'

export class ResultSlots {
  readonly #texts: string[] = []

  /** The value to put in the body for `d`'s result. */
  valueOf (d: Pick<Decision, 'result' | 'resultJson'>): unknown {
    if (d.resultJson === undefined) return d.result
    this.#texts.push(d.resultJson)
    return `${MARK}${this.#texts.length - 1}`
  }

  /** JSON text of `body` with every placeholder replaced by its exact result text. */
  stringify (body: unknown, indent?: number): string {
    const text = JSON.stringify(body, null, indent)
    if (this.#texts.length === 0) return text
    return text.replace(/"\\u0000portcullis-result-(\d+)"/g, (_m, i: string) => this.#texts[Number(i)] as string)
  }
}
