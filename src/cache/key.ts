/**
 * The decision cache key: bundle revision + path + SHA-256 of the canonical JSON of the whole
 * input (identity included). Canonical: object keys sorted, no whitespace — two inputs that
 * differ only in key order share an entry; any other difference does not.
 */
import { hash } from 'node:crypto'

export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
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

export function decisionCacheKey (bundle: string, revision: string, path: string, input: unknown): string {
  const h = hash('sha256', input === undefined ? '\0undefined' : canonicalJson(input), 'base64url')
  // bundle and revision are separated by NUL so no revision string can impersonate another bundle's
  return `${bundle}\0${revision}\0${path}\0${h}`
}
