/**
 * Go duration parsing: time.ParseDuration, with OPA's extra units (d, w, y).
 */

import { GoTimeError, NS_PER_S } from './calendar.js'
import { isDigitAt } from './layout.js'

const UNITS: Record<string, bigint> = {
  ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: NS_PER_S, m: 60n * NS_PER_S, h: 3600n * NS_PER_S,
  // OPA extends Go's units with days, weeks and (365-day) years.
  d: 86400n * NS_PER_S, w: 7n * 86400n * NS_PER_S, y: 365n * 86400n * NS_PER_S,
}
const TWO63 = 1n << 63n

/** Go's time.ParseDuration. */
export function parseDuration (orig: string): bigint {
  const invalid = (): never => { throw new GoTimeError(`time: invalid duration "${orig}"`) }
  let s = orig
  let d = 0n
  let neg = false
  if (s !== '' && (s[0] === '-' || s[0] === '+')) { neg = s[0] === '-'; s = s.slice(1) }
  if (s === '0') return 0n
  if (s === '') invalid()
  while (s !== '') {
    let v = 0n; let f = 0n; let scale = 1
    if (!(s[0] === '.' || isDigitAt(s, 0))) invalid()
    let i = 0
    for (; i < s.length && isDigitAt(s, i); i++) {
      if (v > TWO63 / 10n) invalid()
      v = v * 10n + BigInt(s[i] as string)
      if (v > TWO63) invalid()
    }
    const pre = i > 0
    s = s.slice(i)
    let post = false
    if (s !== '' && s[0] === '.') {
      s = s.slice(1)
      let j = 0; let overflow = false
      for (; j < s.length && isDigitAt(s, j); j++) {
        if (overflow) continue
        if (f > (TWO63 - 1n) / 10n) { overflow = true; continue }
        const y = f * 10n + BigInt(s[j] as string)
        if (y > TWO63) { overflow = true; continue }
        f = y
        scale *= 10
      }
      post = j > 0
      s = s.slice(j)
    }
    if (!pre && !post) invalid()
    let k = 0
    for (; k < s.length; k++) if (s[k] === '.' || isDigitAt(s, k)) break
    if (k === 0) throw new GoTimeError(`time: missing unit in duration "${orig}"`)
    const u = s.slice(0, k)
    s = s.slice(k)
    const unit = UNITS[u]
    if (unit === undefined) throw new GoTimeError(`time: unknown unit "${u}" in duration "${orig}"`)
    if (v > TWO63 / unit) invalid()
    v *= unit
    if (f > 0n) {
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)))
      if (v > TWO63) invalid()
    }
    d += v
    if (d > TWO63) invalid()
  }
  if (neg) return -d
  if (d > TWO63 - 1n) invalid()
  return d
}
