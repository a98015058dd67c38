/**
 * The decision cache key: bundle revision + path + SHA-256 of the canonical JSON of the whole
 * input (identity included). Canonical: object keys sorted, no whitespace — two inputs that
 * differ only in key order share an entry; any other difference does not.
 */
import { createHash } from 'node:crypto'

export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`
  const keys = Object.keys(value).sort()
  let out = '{'
  let first = true
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k]
    if (v === undefined || typeof v === 'function') continue
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`
    first = false
  }
  return out + '}'
}

export function decisionCacheKey (bundle: string, revision: string, path: string, input: unknown): string {
  const h = createHash('sha256').update(input === undefined ? '\0undefined' : canonicalJson(input)).digest('base64url')
  // bundle and revision are separated by NUL so no revision string can impersonate another bundle's
  return `${bundle}\0${revision}\0${path}\0${h}`
}
