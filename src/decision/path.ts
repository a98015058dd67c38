/**
 * Data API paths. A path names a document: `authz/allow` is `data.authz.allow`. OPA splits the
 * path on '/', skips empty segments and percent-decodes each segment on its own
 * (v1/server/server.go stringPathToRef), so `a//b/` is `a/b`. Portcullis keeps a path as its
 * segments joined by '/', which cannot represent a segment that itself contains '/' or that
 * carries control characters without ambiguity; such paths are refused with
 * PORTCULLIS_PATH_INVALID (400) instead of being folded into another path.
 */
import { PortcullisError } from '../errors.js'

/** True when `s` has a C0 control character or DEL. */
function hasControl (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

function invalid (path: string, why: string): PortcullisError {
  return new PortcullisError('PORTCULLIS_PATH_INVALID', `data path ${JSON.stringify(path)} ${why}`, { path })
}

/**
 * The canonical form of a decoded Data API path: segments without empty ones, joined by '/'.
 * Throws PORTCULLIS_PATH_INVALID for control characters (a NUL must never reach a key).
 *
 * @example dataPath('/authz//allow/') === 'authz/allow'
 */
export function dataPath (raw: string): string {
  if (hasControl(raw)) throw invalid(raw, 'contains a control character')
  // the common case, a path already in canonical form, allocates nothing
  if (raw.length === 0 || (raw.charCodeAt(0) !== 0x2f && raw.charCodeAt(raw.length - 1) !== 0x2f && !raw.includes('//'))) return raw
  return raw.split('/').filter((s) => s !== '').join('/')
}

// a '%' not followed by two hex digits
const MALFORMED_ESCAPE = /%(?![0-9A-Fa-f]{2})/

/**
 * The Data API path of a raw, still percent-encoded URL path (the part after `/v1/data/`, no
 * query string), decoded as OPA decodes it: split on '/', empty segments skipped, each segment
 * percent-decoded. Refused with PORTCULLIS_PATH_INVALID: a segment that decodes to something
 * containing '/' (`%2F`: a key Portcullis cannot address without folding it into another
 * path), invalid UTF-8, control characters, and malformed escapes (OPA keeps such a segment as
 * written; HTTP routers refuse the URL, and one answer for both routes matters more).
 */
export function dataPathFromUrl (encoded: string): string {
  if (!encoded.includes('%')) return dataPath(encoded)
  const out: string[] = []
  for (const segment of encoded.split('/')) {
    if (segment === '') continue
    if (!segment.includes('%')) {
      out.push(segment)
      continue
    }
    if (MALFORMED_ESCAPE.test(segment)) throw invalid(encoded, "has a malformed percent-escape (a '%' not followed by two hex digits)")
    let decoded: string
    try {
      decoded = decodeURIComponent(segment) // URIError: the bytes are not UTF-8
    } catch {
      throw invalid(encoded, 'is not valid UTF-8 once percent-decoded')
    }
    if (decoded.includes('/')) throw invalid(encoded, "has a segment with an encoded '/' (%2F)")
    out.push(decoded)
  }
  return dataPath(out.join('/'))
}
