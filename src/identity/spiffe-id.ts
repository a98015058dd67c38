/**
 * SPIFFE ID parsing and validation (spiffe/spiffe standards/SPIFFE-ID.md §2).
 *
 * A SPIFFE ID is `spiffe://<trust-domain><path>`. The rules are applied byte by byte
 * rather than through `new URL()`, because WHATWG URL parsing normalizes (lowercases,
 * percent-decodes, resolves `.`/`..`), which would accept IDs the standard forbids.
 */
import { IdentityError } from '../errors.js'

/** A validated SPIFFE ID. */
export interface SpiffeId {
  /** The whole ID, exactly as presented (it is already canonical when valid). */
  id: string
  /** Trust domain name, e.g. `example.org`. */
  trustDomain: string
  /** Path including the leading `/`, or `''` for the trust domain itself. */
  path: string
}

const SCHEME = 'spiffe://'
/** SPIFFE-ID §2.1: trust domain names are lowercase letters, digits, `.`, `-`, `_`. */
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/
/** SPIFFE-ID §2.2: path segments use letters, digits, `.`, `-`, `_`. */
const PATH_CHAR = /^[a-zA-Z0-9._-]$/
/** Whole strings of those characters: one test for the usual case, the loops below name the offending character. */
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/
const PATH_SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/
/**
 * The usual SPIFFE ID in one test: lowercase trust domain of at most 255 characters, then
 * segments of path characters (all ASCII, so characters are bytes). Dot segments and the
 * 2048-byte limit are checked beside it; anything else takes the rule-by-rule path below,
 * which names the problem.
 */
const USUAL_SPIFFE_ID = /^spiffe:\/\/([a-z0-9._-]{1,255})((?:\/[a-zA-Z0-9._-]+)*)$/
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/
/** SPIFFE-ID §2.1: a trust domain name is at most 255 bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255
/** SPIFFE-ID §2.3: implementations must accept URIs up to 2048 bytes and should not produce longer ones. */
export const MAX_SPIFFE_ID_BYTES = 2048

function bad (input: string, reason: string): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_BAD_SPIFFE_ID', `invalid SPIFFE ID ${JSON.stringify(input.length > 200 ? input.slice(0, 200) + '…' : input)}: ${reason}`, { spiffe_id: input.slice(0, 2048), reason })
}

/** Returns why `name` is not a valid trust domain name, or undefined when it is. */
export function trustDomainProblem (name: string): string | undefined {
  if (name.length === 0) return 'trust domain is empty'
  if (Buffer.byteLength(name, 'utf8') > MAX_TRUST_DOMAIN_BYTES) return `trust domain longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`
  if (TRUST_DOMAIN_CHARS.test(name)) return undefined
  for (const ch of name) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue
    if (ch === '@') return 'trust domain must not contain userinfo'
    if (ch === ':') return 'trust domain must not contain a port'
    if (ch === '%') return 'trust domain must not be percent-encoded'
    if (ch >= 'A' && ch <= 'Z') return 'trust domain must be lowercase'
    return `trust domain contains ${JSON.stringify(ch)}; only [a-z0-9.-_] are allowed`
  }
  return undefined
}

/** True when `name` is a valid trust domain name (no scheme). */
export function isTrustDomain (name: string): boolean {
  return trustDomainProblem(name) === undefined
}

/**
 * Parses and validates a SPIFFE ID; throws IdentityError PORTCULLIS_IDENTITY_BAD_SPIFFE_ID.
 *
 * @example
 *   parseSpiffeId('spiffe://example.org/ns/prod/sa/api')
 *   // { id: 'spiffe://example.org/ns/prod/sa/api', trustDomain: 'example.org', path: '/ns/prod/sa/api' }
 */
export function parseSpiffeId (input: string): SpiffeId {
  if (typeof input !== 'string') throw bad(String(input), 'not a string')
  if (input.length <= MAX_SPIFFE_ID_BYTES) {
    const m = USUAL_SPIFFE_ID.exec(input)
    if (m !== null && !DOT_SEGMENT.test(m[2] as string)) return { id: input, trustDomain: m[1] as string, path: m[2] as string }
  }
  return parseSpiffeIdByRules(input)
}

/** parseSpiffeId rule by rule (exported for the test that holds USUAL_SPIFFE_ID to these rules). */
export function parseSpiffeIdByRules (input: string): SpiffeId {
  if (typeof input !== 'string') throw bad(String(input), 'not a string')
  if (Buffer.byteLength(input, 'utf8') > MAX_SPIFFE_ID_BYTES) throw bad(input, `longer than ${MAX_SPIFFE_ID_BYTES} bytes`)
  // §2: the scheme is exactly `spiffe` in lowercase, followed by `://`.
  if (!input.startsWith(SCHEME)) throw bad(input, 'scheme must be exactly "spiffe://"')
  const rest = input.slice(SCHEME.length)
  if (rest.includes('?')) throw bad(input, 'query is not allowed')
  if (rest.includes('#')) throw bad(input, 'fragment is not allowed')
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  const tdProblem = trustDomainProblem(trustDomain)
  if (tdProblem !== undefined) throw bad(input, tdProblem)
  if (path !== '') {
    // path starts with '/', so the first split element is ''.
    const segments = path.split('/').slice(1)
    for (const seg of segments) {
      if (seg === '') throw bad(input, path.endsWith('/') ? 'trailing slash is not allowed' : 'empty path segment')
      if (seg === '.' || seg === '..') throw bad(input, 'dot segments are not allowed')
      if (PATH_SEGMENT_CHARS.test(seg)) continue
      for (const ch of seg) {
        if (ch === '%') throw bad(input, 'percent-encoding is not allowed')
        if (!PATH_CHAR.test(ch)) throw bad(input, `path contains ${JSON.stringify(ch)}; only [a-zA-Z0-9.-_] are allowed`)
      }
    }
  }
  return { id: input, trustDomain, path }
}

/**
 * Parses a SPIFFE ID that must name a workload: X509-SVID §2 and JWT-SVID §3 forbid
 * an SVID for the trust domain itself (a root path).
 */
export function parseWorkloadSpiffeId (input: string): SpiffeId {
  const id = parseSpiffeId(input)
  if (id.path === '') throw bad(input, 'an SVID must not name the trust domain itself (root path)')
  return id
}

/** The canonical SPIFFE ID of a trust domain, e.g. `spiffe://example.org`. */
export function trustDomainId (trustDomain: string): string {
  return SCHEME + trustDomain
}
