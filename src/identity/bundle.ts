/**
 * Trust-bundle formats, per trust domain: PEM CA files, SPIFFE bundles (SPIFFE Trust Domain
 * and Bundle §4: a JWK Set whose keys carry `use` x509-svid / jwt-svid) and JWKS files.
 * Parsing is pure; loading, watching and polling live in trust-store.ts.
 */
import { createHash, X509Certificate } from 'node:crypto'
import type { JWK } from 'jose'
import type * as pkijs from 'pkijs'
import { compareUtf8 } from '../canonical-json.js'
import { IdentityError } from '../errors.js'
import { parseCertificateDer, pemCertificates } from './pem.js'

/** One X.509 authority (trust anchor) of a trust domain. */
export interface X509Authority {
  der: Buffer
  cert: pkijs.Certificate
  fingerprint_sha256: string
}

/** What one source contributed. */
export interface BundleContent {
  x509Authorities: X509Authority[]
  /** Public JWT-SVID keys, without `use` so that jose selects them (see jwt-svid.ts). */
  jwtAuthorities: JWK[]
  /** `spiffe_sequence` of a SPIFFE bundle. */
  sequence?: number
  /** `spiffe_refresh_hint` of a SPIFFE bundle, seconds. */
  refreshHint?: number
}

/** The trust bundle of one trust domain: the union of its sources' last good contents. */
export interface TrustBundle extends BundleContent {
  trustDomain: string
  /** SHA-256 over the authorities, so a reload that changes nothing is not a change. */
  digest: string
}

/** Keys that hold private material; a bundle carrying them is refused rather than trusted. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']
/** Key types usable with the JWT-SVID algorithms (RS*, PS* → RSA; ES* → EC). Others are ignored. */
const JWT_KTY = new Set(['RSA', 'EC'])
const PUBLIC_MEMBERS: Record<string, string[]> = { RSA: ['kty', 'kid', 'alg', 'n', 'e'], EC: ['kty', 'kid', 'alg', 'crv', 'x', 'y'] }

function bundleError (file: string, reason: string, cause?: unknown): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_BUNDLE_INVALID', `trust bundle ${file}: ${reason}`, { file, reason }, cause === undefined ? undefined : { cause })
}

export function x509Authority (der: Buffer, what: string): X509Authority {
  const cert = parseCertificateDer(der, what, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  return { der, cert, fingerprint_sha256: createHash('sha256').update(der).digest('hex') }
}

/** PEM file of CA certificates. */
export function parsePemAuthorities (text: string, file: string): BundleContent {
  const ders = pemCertificates(text, `trust bundle ${file}`, 'PORTCULLIS_IDENTITY_BUNDLE_INVALID')
  return { x509Authorities: ders.map((d, i) => x509Authority(d, `trust bundle ${file} certificate ${i + 1}`)), jwtAuthorities: [] }
}

/**
 * A key whose `key_ops` (RFC 7517 §4.3) leave out `verify` is not for checking signatures: it is
 * skipped, as jose's JWK Sets skip it (a `key_ops` that is not a list of strings is an error).
 */
function notForVerification (key: Record<string, unknown>, where: string, file: string): boolean {
  const ops = key.key_ops
  if (ops === undefined) return false
  if (!Array.isArray(ops) || !ops.every((o) => typeof o === 'string')) throw bundleError(file, `${where} has a "key_ops" that is not a list of strings`)
  return !ops.includes('verify')
}

function publicJwk (key: Record<string, unknown>, where: string, file: string): JWK {
  for (const m of PRIVATE_MEMBERS) if (m in key) throw bundleError(file, `${where} contains private key material ("${m}")`)
  const kty = key.kty as string
  const out: Record<string, unknown> = {}
  for (const m of PUBLIC_MEMBERS[kty] ?? []) if (key[m] !== undefined) out[m] = key[m]
  for (const m of (PUBLIC_MEMBERS[kty] ?? []).filter((x) => x !== 'kid' && x !== 'alg')) {
    if (typeof out[m] !== 'string' || out[m] === '') throw bundleError(file, `${where} lacks "${m}"`)
  }
  if (out.kid !== undefined && typeof out.kid !== 'string') throw bundleError(file, `${where} has a non-string kid`)
  // jose's JWK Set selects only keys whose `use` is absent or "sig": SPIFFE's "jwt-svid" is dropped here.
  return out as JWK
}

function parseJson (text: string, file: string): Record<string, unknown> {
  let doc: unknown
  try { doc = JSON.parse(text) } catch (err) { throw bundleError(file, 'not JSON', err) }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bundleError(file, 'not a JSON object')
  const d = doc as Record<string, unknown>
  if (!Array.isArray(d.keys)) throw bundleError(file, '"keys" must be an array')
  return d
}

function optionalUint (d: Record<string, unknown>, key: string, file: string): number | undefined {
  const v = d[key]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bundleError(file, `"${key}" must be a non-negative integer`)
  return v
}

/**
 * SPIFFE bundle (Trust Domain and Bundle §4). Entries with unknown `use` or `kty` are ignored
 * (§4.2.1); an empty `keys` array is valid and means "trust nothing" for the domain.
 * A malformed entry of a known use fails the whole bundle, so the last good one stays.
 */
export function parseSpiffeBundle (text: string, file: string): BundleContent {
  const d = parseJson(text, file)
  const out: BundleContent = { x509Authorities: [], jwtAuthorities: [] }
  const seq = optionalUint(d, 'spiffe_sequence', file)
  const hint = optionalUint(d, 'spiffe_refresh_hint', file)
  if (seq !== undefined) out.sequence = seq
  if (hint !== undefined) out.refreshHint = hint
  const kids = new Set<string>()
  for (const [i, k] of (d.keys as unknown[]).entries()) {
    const where = `keys[${i}]`
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw bundleError(file, `${where} is not an object`)
    const key = k as Record<string, unknown>
    if (typeof key.kty !== 'string') throw bundleError(file, `${where} lacks "kty"`)
    if (key.use === 'x509-svid') {
      // §4.2.1: an entry whose kty this implementation does not know is ignored, not an error.
      if (!['RSA', 'EC', 'OKP'].includes(key.kty)) continue
      // §4.2.2: x509-svid entries carry exactly one certificate in x5c.
      if (!Array.isArray(key.x5c) || key.x5c.length !== 1 || typeof key.x5c[0] !== 'string') throw bundleError(file, `${where}: x509-svid entry must have exactly one x5c certificate`)
      const b64 = key.x5c[0]
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw bundleError(file, `${where}: x5c is not base64`)
      out.x509Authorities.push(x509Authority(Buffer.from(b64, 'base64'), `trust bundle ${file} ${where}`))
    } else if (key.use === 'jwt-svid') {
      if (!JWT_KTY.has(key.kty)) continue
      // §4.2.3: jwt-svid entries must carry a kid, unique within the bundle.
      if (typeof key.kid !== 'string' || key.kid === '') throw bundleError(file, `${where}: jwt-svid entry must have a "kid"`)
      if (kids.has(key.kid)) throw bundleError(file, `${where}: duplicate kid ${JSON.stringify(key.kid)}`)
      kids.add(key.kid)
      if (notForVerification(key, where, file)) continue
      out.jwtAuthorities.push(publicJwk(key, where, file))
    }
  }
  return out
}

/** JWKS file of JWT signing keys: entries with `use` absent, `sig` or `jwt-svid` and kty RSA/EC. */
/**
 * @param opts.requireKid every key must carry a `kid`, unique in the set (the Workload API's JWT
 *   bundles: go-spiffe refuses keys without one, and a token names its key by kid).
 */
export function parseJwks (text: string, file: string, opts: { requireKid?: boolean } = {}): BundleContent {
  const d = parseJson(text, file)
  const out: BundleContent = { x509Authorities: [], jwtAuthorities: [] }
  const kids = new Set<string>()
  for (const [i, k] of (d.keys as unknown[]).entries()) {
    const where = `keys[${i}]`
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw bundleError(file, `${where} is not an object`)
    const key = k as Record<string, unknown>
    if (opts.requireKid === true) {
      if (typeof key.kid !== 'string' || key.kid === '') throw bundleError(file, `${where} has no kid`)
      if (kids.has(key.kid)) throw bundleError(file, `${where}: kid ${JSON.stringify(key.kid)} appears twice`)
      kids.add(key.kid)
    }
    if (key.use !== undefined && key.use !== 'sig' && key.use !== 'jwt-svid') continue
    if (typeof key.kty !== 'string' || !JWT_KTY.has(key.kty)) continue
    if (notForVerification(key, where, file)) continue
    out.jwtAuthorities.push(publicJwk(key, where, file))
  }
  return out
}

/** Detects the format of a trust-bundle file: JSON with `keys` → SPIFFE bundle, else PEM. */
export function parseAnyBundle (text: string, file: string): BundleContent {
  return text.trimStart().startsWith('{') ? parseSpiffeBundle(text, file) : parsePemAuthorities(text, file)
}

/** A JWK as JSON with its members in a fixed order (publicJwk keeps only string members). */
function canonicalJwk (k: JWK): string {
  return JSON.stringify(Object.entries(k).sort(([a], [b]) => compareUtf8(a, b)))
}

/** Merges a trust domain's source contents (never across trust domains). */
export function mergeBundle (trustDomain: string, parts: BundleContent[]): TrustBundle {
  const seen = new Set<string>()
  const x509Authorities: X509Authority[] = []
  for (const p of parts) {
    for (const a of p.x509Authorities) {
      if (seen.has(a.fingerprint_sha256)) continue
      seen.add(a.fingerprint_sha256)
      x509Authorities.push(a)
    }
  }
  // The same key from two sources is one key: twice, it would be two candidates for its kid,
  // and jose's key set refuses a token that several keys fit (jwt.ts verifyWithKeySet).
  const jwtSeen = new Set<string>()
  const jwtAuthorities: JWK[] = []
  for (const p of parts) {
    for (const k of p.jwtAuthorities) {
      const canonical = canonicalJwk(k)
      if (jwtSeen.has(canonical)) continue
      jwtSeen.add(canonical)
      jwtAuthorities.push(k)
    }
  }
  const hash = createHash('sha256')
  for (const a of [...x509Authorities].sort((x, y) => compareUtf8(x.fingerprint_sha256, y.fingerprint_sha256))) hash.update(`x509:${a.fingerprint_sha256}\n`)
  for (const k of [...jwtSeen].sort()) hash.update(`jwt:${k}\n`)
  const out: TrustBundle = { trustDomain, x509Authorities, jwtAuthorities, digest: hash.digest('hex') }
  const seqs = parts.map((p) => p.sequence).filter((s): s is number => s !== undefined)
  if (seqs.length > 0) out.sequence = Math.max(...seqs)
  const hints = parts.map((p) => p.refreshHint).filter((s): s is number => s !== undefined)
  if (hints.length > 0) out.refreshHint = Math.min(...hints)
  return out
}

/** Subject of an authority for status output. */
export function authoritySubject (a: X509Authority): string {
  try { return new X509Certificate(a.der).subject.replace(/\n/g, ', ') } catch { return '' }
}
