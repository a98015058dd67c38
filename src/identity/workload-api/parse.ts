/**
 * The Workload API's messages into what Portcullis uses, strictly (SPIFFE Workload API §5–6):
 * X.509 bundles are ASN.1 DER certificates concatenated with nothing between or after them; JWT
 * bundles are JWK Set JSON bytes; map keys are trust domains' SPIFFE IDs (`spiffe://example.org`;
 * a bare trust domain name is accepted as go-spiffe accepts it). A message with any malformed part
 * is refused whole (PORTCULLIS_IDENTITY_BUNDLE_INVALID), so the last good state stays.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { IdentityError } from '../../errors.js'
import { parseJwks, x509Authority, type BundleContent } from '../bundle.js'
import { parseCertificateDer } from '../pem.js'
import { isTrustDomain, parseWorkloadSpiffeId } from '../spiffe-id.js'
import { checkLeafRules } from '../x509-rules.js'

/** More certificates than this in one bundle or chain is not a trust bundle. */
const MAX_CERTIFICATES = 1000

function invalid (what: string, reason: string): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_BUNDLE_INVALID', `Workload API ${what}: ${reason}`, { source: 'workload_api', what, reason })
}

/** Splits concatenated DER certificates (each an ASN.1 SEQUENCE with a definite length). */
export function splitDerCertificates (buf: Uint8Array, what: string): Buffer[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const out: Buffer[] = []
  let at = 0
  while (at < b.length) {
    if (out.length >= MAX_CERTIFICATES) throw invalid(what, `more than ${MAX_CERTIFICATES} certificates`)
    if (b[at] !== 0x30) throw invalid(what, `byte ${at}: expected an ASN.1 SEQUENCE (a DER certificate)`)
    const first = b[at + 1]
    if (first === undefined) throw invalid(what, `byte ${at}: truncated length`)
    let len: number
    let header: number
    if (first < 0x80) {
      len = first
      header = 2
    } else {
      const n = first & 0x7f
      // DER: long form only for lengths ≥ 128, minimal, at most 4 length bytes here; 0x80 (indefinite) is BER.
      if (n === 0 || n > 4 || at + 2 + n > b.length) throw invalid(what, `byte ${at}: not a DER length`)
      len = 0
      for (let i = 0; i < n; i++) len = len * 256 + (b[at + 2 + i] as number)
      if (b[at + 2] === 0 || len < 128) throw invalid(what, `byte ${at}: not a minimal DER length`)
      header = 2 + n
    }
    const end = at + header + len
    if (end > b.length) throw invalid(what, `byte ${at}: certificate runs past the end (${end} > ${b.length})`)
    out.push(Buffer.from(b.subarray(at, end)))
    at = end
  }
  return out
}

/** A map key: `spiffe://td` (the standard's form) or a bare trust domain name. */
export function trustDomainOfKey (key: string, what: string): string {
  const td = key.startsWith('spiffe://') ? key.slice('spiffe://'.length) : key
  if (!isTrustDomain(td)) throw invalid(what, `${JSON.stringify(key)} is not a trust domain's SPIFFE ID`)
  return td
}

function x509Content (der: Uint8Array, what: string): BundleContent {
  const certs = splitDerCertificates(der, what)
  return { x509Authorities: certs.map((c, i) => x509Authority(c, `Workload API ${what} certificate ${i + 1}`)), jwtAuthorities: [] }
}

function rethrowAs (what: string, err: unknown): never {
  if (err instanceof IdentityError) throw err
  throw invalid(what, (err as Error).message)
}

/** X509BundlesResponse.bundles → X.509 authorities per trust domain. */
/**
 * A response always carries at least the workload's own trust domain (SPIFFE Workload API §4.5,
 * §5.2.2): an empty map is malformed, not "trust nothing" (that is PermissionDenied's job).
 */
function nonEmpty (bundles: Record<string, Uint8Array> | undefined, what: string): Record<string, Uint8Array> {
  if (bundles === undefined || Object.keys(bundles).length === 0) throw invalid(what, 'empty bundles map (the workload\'s own trust domain is always present)')
  return bundles
}

export function parseX509Bundles (bundles: Record<string, Uint8Array> | undefined): Map<string, BundleContent> {
  bundles = nonEmpty(bundles, 'X.509 bundles')
  const out = new Map<string, BundleContent>()
  for (const [key, der] of Object.entries(bundles)) {
    const what = `X.509 bundle ${key}`
    const td = trustDomainOfKey(key, what)
    if (out.has(td)) throw invalid(what, `trust domain ${td} appears twice`)
    try { out.set(td, x509Content(der, what)) } catch (err) { rethrowAs(what, err) }
  }
  return out
}

/** JWTBundlesResponse.bundles → JWT authorities per trust domain. */
export function parseJwtBundles (bundles: Record<string, Uint8Array> | undefined): Map<string, BundleContent> {
  bundles = nonEmpty(bundles, 'JWT bundles')
  const out = new Map<string, BundleContent>()
  for (const [key, bytes] of Object.entries(bundles)) {
    const what = `JWT bundle ${key}`
    const td = trustDomainOfKey(key, what)
    if (out.has(td)) throw invalid(what, `trust domain ${td} appears twice`)
    let text: string
    // ignoreBOM: a leading U+FEFF stays, and the JSON is refused as Go's decoder refuses it
    try { text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) } catch { throw invalid(what, 'not UTF-8') }
    out.set(td, parseJwks(text, `Workload API ${what}`, { requireKid: true }))
  }
  return out
}

/** The serving identity taken from an X509SVIDResponse. */
export interface ServingSvid {
  spiffeId: string
  hint: string
  /** PEM chain, leaf first (as the SVID's chain). */
  certPem: string
  /** PKCS#8 PEM. */
  keyPem: string
  /**
   * PEM of the SVID's own trust domain's authorities and the federated ones: the TLS layer's
   * client-certificate pool only. It is a union, so a chain that passes it is then verified
   * against the bundle of its own trust domain (`bundles`, SPIFFE Workload API §4.6; peer.ts).
   */
  caPem: string
  /** The SVID's trust domain. */
  trustDomain: string
  /** X.509 authorities per trust domain: the SVID's own (`bundle`) and the federated ones. */
  bundles: ReadonlyMap<string, BundleContent>
  notAfter: Date
}

interface X509SvidMessage {
  spiffe_id?: string
  x509_svid?: Uint8Array
  x509_svid_key?: Uint8Array
  bundle?: Uint8Array
  hint?: string
}

function pem (der: Buffer): string {
  return new X509Certificate(der).toString()
}

/**
 * Picks the serving SVID (by SPIFFE ID, else by hint, else the first: SPIFFE Workload API §5.3,
 * the first is the default identity) and checks that its key matches its leaf.
 */
/**
 * The chain (leaf first) must lead to one of `roots`: each certificate issued and signed by the
 * next, the last by an authority of the bundle (Node's X509Certificate: checkIssued + verify).
 */
function chainsTo (chain: X509Certificate[], roots: X509Certificate[]): boolean {
  for (let i = 0; i + 1 < chain.length; i++) {
    const c = chain[i] as X509Certificate
    const issuer = chain[i + 1] as X509Certificate
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey)) return false
  }
  const last = chain[chain.length - 1] as X509Certificate
  return roots.some((r) => last.fingerprint256 === r.fingerprint256 || (last.checkIssued(r) && last.verify(r.publicKey)))
}

export function parseServingSvid (msg: { svids?: X509SvidMessage[], federated_bundles?: Record<string, Uint8Array> }, pick: { spiffeId?: string, hint?: string }, now: Date = new Date()): ServingSvid {
  const svids = msg.svids ?? []
  if (svids.length === 0) throw invalid('X.509-SVID response', 'no SVIDs')
  const chosen = pick.spiffeId !== undefined
    ? svids.find((s) => s.spiffe_id === pick.spiffeId)
    : pick.hint !== undefined ? svids.find((s) => s.hint === pick.hint) : svids[0]
  if (chosen === undefined) {
    throw invalid('X.509-SVID response', pick.spiffeId !== undefined ? `no SVID for ${pick.spiffeId}` : `no SVID with hint ${JSON.stringify(pick.hint)}`)
  }
  const what = `X.509-SVID ${chosen.spiffe_id ?? ''}`
  try {
    const id = parseWorkloadSpiffeId(chosen.spiffe_id ?? '')
    const chain = splitDerCertificates(chosen.x509_svid ?? new Uint8Array(), what)
    if (chain.length === 0) throw invalid(what, 'empty certificate chain')
    const certs = chain.map((c) => new X509Certificate(c))
    const leaf = certs[0] as X509Certificate
    const key = createPrivateKey({ key: Buffer.from(chosen.x509_svid_key ?? new Uint8Array()), format: 'der', type: 'pkcs8' })
    if (!leaf.checkPrivateKey(key)) throw invalid(what, 'the private key does not match the leaf certificate')
    // The SAN read from the certificate's ASN.1 (not OpenSSL's display string): exactly one URI SAN, the response's SPIFFE ID.
    let leafId: { id: string }
    try { leafId = checkLeafRules(parseCertificateDer(chain[0] as Buffer, `${what} leaf`)).spiffeId } catch (err) { throw invalid(what, (err as Error).message) }
    if (leafId.id !== id.id) throw invalid(what, `the leaf names ${leafId.id}, not the response's SPIFFE ID`)
    // Not served before or after its validity: the current SVID stays (the refusal is counted).
    if (now.getTime() < Date.parse(leaf.validFrom)) throw invalid(what, `the leaf is not valid before ${new Date(leaf.validFrom).toISOString()}`)
    if (now.getTime() >= Date.parse(leaf.validTo)) throw invalid(what, `the leaf expired at ${new Date(leaf.validTo).toISOString()}`)
    // `bundle` is a mandatory field (SPIFFE Workload API §5.2.2), and the SVID must chain to it.
    const own = splitDerCertificates(chosen.bundle ?? new Uint8Array(), `${what} bundle`)
    if (own.length === 0) throw invalid(what, 'empty bundle (a mandatory field)')
    if (!chainsTo(certs, own.map((c) => new X509Certificate(c)))) throw invalid(what, 'the SVID does not chain to its trust domain\'s bundle')
    const cas = [...own]
    const bundles = new Map<string, BundleContent>([[id.trustDomain, { x509Authorities: own.map((c, i) => x509Authority(c, `${what} bundle certificate ${i + 1}`)), jwtAuthorities: [] }]])
    for (const [k, der] of Object.entries(msg.federated_bundles ?? {})) {
      const td = trustDomainOfKey(k, `federated bundle ${k}`)
      // The SVID's own trust domain comes from its `bundle` only: a federated entry cannot add to it.
      if (bundles.has(td)) throw invalid(`federated bundle ${k}`, `trust domain ${td} appears twice (or is the SVID's own)`)
      const certs = splitDerCertificates(der, `federated bundle ${k}`)
      bundles.set(td, x509Content(der, `federated bundle ${k}`))
      cas.push(...certs)
    }
    const out: ServingSvid = {
      spiffeId: chosen.spiffe_id as string,
      hint: chosen.hint ?? '',
      certPem: chain.map(pem).join(''),
      keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
      caPem: cas.map(pem).join(''),
      trustDomain: id.trustDomain,
      bundles,
      notAfter: new Date(leaf.validTo),
    }
    createSecureContext({ cert: out.certPem, key: out.keyPem }) // usable by TLS, checked now and not at the first handshake
    return out
  } catch (err) {
    rethrowAs(what, err)
  }
}
