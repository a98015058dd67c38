/**
 * X.509-SVID verification (SPIFFE X509-SVID standard §4, §5; RFC 5280 §6) with node:crypto.
 *
 * The same rules, in the same order and with the same codes, as the PKI.js path validation of
 * x509-svid-reference.ts, but the work is split by how often it changes:
 * - the CA side (x509-ca.ts), once per trust-bundle object (bundles are immutable; a reload is
 *   a new object): each X.509 authority's facts, CA check, key identifiers and public
 *   KeyObject; once per distinct presented intermediate (bounded LRU by DER SHA-256): its
 *   PKI.js parse, facts, CA check and KeyObject; and once per (certificate, issuer) pair the
 *   signature check of a CA-issued certificate;
 * - per leaf: read the certificate with node-forge where certificate-tree.ts proves PKI.js and
 *   OpenSSL read it the same way (readCertificateFast), else with asn1js against PKI.js's
 *   Certificate schema (readCertificate; a leaf PKI.js cannot parse is MALFORMED, as in the
 *   reference), read its extensions from the trees parsed inside their OCTET STRINGs
 *   (leafFacts, the rules of x509-rules.ts's certificateFacts; an unusual shape goes to the
 *   reference), find the issuer as PKI.js does and verify the leaf's signature over its
 *   tbsCertificate with crypto.verify; OpenSSL parses the leaf (X509Certificate) only when the
 *   fast reader did not read it or cannot print its names and serial itself.
 * Dates are compared with `now` on every verification (cached facts hold the dates, not the
 * verdict).
 *
 * The fast path decides only the shapes it fully understands: ECDSA or
 * RSA PKCS#1 v1.5 signatures with SHA-2, at most one issuer candidate per step, no policy or
 * name-constraint extensions anywhere in the path. Everything else (and any doubt) is handed to
 * the reference verifier, so a chain the fast path does not know is judged exactly as before.
 * test/identity/x509-svid-differential.test.ts holds the two to the same answers.
 */
import type { TrustBundle } from './bundle.js'
import type { CredentialSource } from './document.js'
import { parseCertificateDer } from './pem.js'
import { readCertificateFast } from './certificate-fast.js'
import { isTag, readCertificate, type DerNode, type ExtensionBlock } from './certificate-tree.js'
import { verifyX509SvidReference } from './x509-svid-reference.js'
import { bytesEqual, nameRef, namesEqual, printName, serialHex } from './x509-names.js'
import { checkDates, checkLeafFacts, checkPresentedEncoding, checkSigningFacts, fail, x509BundleOf, x509Verification, KNOWN_EXTENSIONS, OID, openSslCertificate, sha256, type LeafFacts, type X509Verification } from './x509-rules.js'
import { AKI, anchorsOfBundle, intermediateOf, isSimple, REFERENCE_ONLY_EXTENSIONS, signedBy, SKI, type CaCert, type PathCert, type SimpleCaCert } from './x509-ca.js'

export type { X509Verification } from './x509-rules.js'
export { verifyX509SvidReference } from './x509-svid-reference.js'

/** The answer "the fast path does not decide this chain". */
const DEFER = Symbol('defer')
type Defer = typeof DEFER

/** How many chains each path decided (tests and the benchmark read it). */
export const x509PathStats = { fast: 0, deferred: 0 }
/** How many leaves each reader of certificate-tree.ts read on the node:crypto path (the benchmark reads it). */
export const x509LeafReads = { nodeForge: 0, asn1js: 0 }

/** The leaf, read from its DER: only the fields the rules read are decoded. */
interface LeafView extends PathCert {
  facts: LeafFacts
  simple: boolean
  /** Read by node-forge (readCertificateFast), not by asn1js. */
  readFast: boolean
}

function fromLatin1 (v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1')
}

const UNIVERSAL = 1
const CONTEXT = 3

/** isTag for a primitive element, without narrowing (a GeneralName is tested against several tags). */
function primitive (n: DerNode, tagClass: number, tagNumber: number): boolean {
  return isTag(n, tagClass, tagNumber, false)
}

/**
 * certificateFacts (x509-rules.ts) over the leaf's extensions, with the same errors in the same
 * order, reading each value from the tree parsed inside its OCTET STRING (certificate-tree.ts); DEFER where a
 * value is not in the plain shape whose PKI.js reading is known (then PKI.js's extension classes
 * read it, in the reference verifier).
 */
function leafFacts (exts: readonly ExtensionBlock[]): { facts: LeafFacts, ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } | Defer {
  const what = 'leaf certificate'
  const seen = new Set<string>()
  for (const e of exts) {
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(e.extnID)) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: duplicate extension ${e.extnID}`, { extension: e.extnID })
    seen.add(e.extnID)
    if (e.critical && !KNOWN_EXTENSIONS.has(e.extnID)) {
      throw fail('PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION', `${what}: unknown critical extension ${e.extnID}`, { extension: e.extnID })
    }
  }
  const out: { facts: LeafFacts, ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } = { facts: { uris: [], dnsNames: [], ca: false }, simple: true }
  for (const e of exts) {
    const id = e.extnID
    if (REFERENCE_ONLY_EXTENSIONS.has(id)) out.simple = false
    if (id !== OID.subjectAltName && id !== OID.keyUsage && id !== OID.basicConstraints && id !== SKI && id !== AKI) continue
    const v = e.value
    if (v === undefined) return DEFER
    if (id === OID.subjectAltName) {
      const names = isTag(v, UNIVERSAL, 16, true) ? v.children ?? [] : []
      if (names.length === 0) return DEFER
      for (const n of names) {
        // GeneralName [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier (IA5String), [7] iPAddress.
        if (primitive(n, CONTEXT, 6)) out.facts.uris.push(fromLatin1(n.content))
        else if (primitive(n, CONTEXT, 2)) out.facts.dnsNames.push(fromLatin1(n.content))
        else if (!primitive(n, CONTEXT, 1) && !primitive(n, CONTEXT, 7)) return DEFER
      }
    } else if (id === OID.keyUsage) {
      const bits = isTag(v, UNIVERSAL, 3, false) ? v.content : undefined
      // X.690 §8.6.2.2: at most 7 unused bits (asn1js refuses more, and the reference calls that unparseable).
      if (bits === undefined || bits.byteLength < 2 || (bits[0] as number) > 7) return DEFER
      out.facts.keyUsage = bits[1] as number
    } else if (id === OID.basicConstraints) {
      const parts = isTag(v, UNIVERSAL, 16, true) ? v.children ?? [] : undefined
      if (parts === undefined || parts.length > 2) return DEFER
      let k = 0
      const flag = parts[k]
      if (isTag(flag, UNIVERSAL, 1, false)) {
        const c = flag.content
        const octet = c.byteLength === 1 ? c[0] : undefined
        if (octet !== 0x00 && octet !== 0xff) return DEFER
        out.facts.ca = octet === 0xff
        k++
      }
      const len = parts[k]
      if (len !== undefined) {
        const c = isTag(len, UNIVERSAL, 2, false) ? len.content : undefined
        if (c === undefined || c.byteLength < 1 || c.byteLength > 3 || ((c[0] as number) & 0x80) !== 0) return DEFER
        out.facts.pathLen = Number.parseInt(Buffer.from(c).toString('hex'), 16)
        k++
      }
      if (k !== parts.length) return DEFER
    } else if (id === SKI) {
      if (!isTag(v, UNIVERSAL, 4, false)) return DEFER
      out.ski = v.content
    } else {
      const parts = isTag(v, UNIVERSAL, 16, true) ? v.children ?? [] : []
      // Only [0] keyIdentifier; issuer-and-serial matching is the reference engine's.
      if (parts.length !== 1 || !isTag(parts[0], CONTEXT, 0, false)) return DEFER
      out.akiKeyId = parts[0].content
    }
  }
  return out
}

/**
 * The leaf as asn1js reads it against PKI.js's Certificate schema (certificate-tree.ts), its
 * extensions read by leafFacts. A leaf that does not read is MALFORMED from the reference's own
 * parse, so the fast path never gets further with a leaf the reference refuses.
 */
function leafView (der: Buffer): LeafView | Defer {
  const fast = readCertificateFast(der)
  const tree = fast ?? readCertificate(der)
  if (fast !== undefined) x509LeafReads.nodeForge++
  else x509LeafReads.asn1js++
  if (tree === undefined) {
    parseCertificateDer(der, 'leaf certificate')
    // PKI.js parsed what the schema check refused: not expected; the reference decides.
    return DEFER
  }
  const read = leafFacts(tree.extensions)
  if (read === DEFER) return DEFER
  const view: LeafView = {
    der,
    hash: sha256(der),
    layout: tree,
    subject: nameRef(tree.subject),
    issuer: nameRef(tree.issuer),
    notBefore: tree.notBefore,
    notAfter: tree.notAfter,
    facts: read.facts,
    simple: read.simple,
    readFast: fast !== undefined,
  }
  if (read.ski !== undefined) view.ski = read.ski
  if (read.akiKeyId !== undefined) view.akiKeyId = read.akiKeyId
  return view
}

/**
 * PKI.js findIssuer (without its self-signed shortcut, which the caller defers): by
 * authorityKeyIdentifier against subjectKeyIdentifier where both exist, else by name.
 */
function issues (p: PathCert, cur: PathCert): boolean {
  if (cur.akiKeyId !== undefined && p.ski !== undefined) return bytesEqual(p.ski, cur.akiKeyId)
  return namesEqual(cur.issuer, p.subject)
}

/**
 * The certificate path from the leaf to a trust anchor as PKI.js's sort() would build it, or
 * 'untrusted' where PKI.js finds no path, or DEFER where its answer needs its own search.
 */
function buildPath (leaf: LeafView, presented: readonly CaCert[], anchors: readonly CaCert[]): SimpleCaCert[] | 'untrusted' | Defer {
  const isAnchor = (c: PathCert): CaCert | undefined => anchors.find((a) => bytesEqual(a.layout.tbs, c.layout.tbs))
  // PKI.js de-duplicates by tbsCertificate and validates the last survivor: a leaf equal to
  // another certificate changes which one that is.
  if (isAnchor(leaf) !== undefined || presented.some((p) => bytesEqual(p.layout.tbs, leaf.layout.tbs))) return DEFER
  const pool = [...anchors, ...presented]
  const path: SimpleCaCert[] = []
  let cur: PathCert = leaf
  for (let depth = 0; depth <= 16; depth++) {
    // A self-issued certificate is first tried as its own issuer by PKI.js.
    if (namesEqual(cur.subject, cur.issuer)) return DEFER
    // PKI.js also offers the leaf itself as an issuer candidate: that is a search for it to run.
    if (issues(leaf, cur)) return DEFER
    const found = pool.filter((p) => issues(p, cur))
    // The same certificate may be both an anchor and presented; anything more is a search.
    const distinct: CaCert[] = []
    for (const c of found) {
      const same = distinct.find((d) => bytesEqual(d.layout.tbs, c.layout.tbs))
      if (same === undefined) distinct.push(c)
      else if (same.hash !== c.hash) return DEFER
    }
    if (distinct.length === 0) return 'untrusted'
    if (distinct.length > 1) return DEFER
    const next = distinct[0] as CaCert
    if (!isSimple(next) || path.includes(next) || bytesEqual(next.layout.tbs, cur.layout.tbs)) return DEFER
    const ok = signedBy(cur, next, cur !== leaf)
    if (ok === undefined) return DEFER
    if (!ok) return 'untrusted'
    const anchor = isAnchor(next)
    if (anchor !== undefined) {
      // (every anchor is simple here: verifyFast deferred a bundle with one that is not)
      if (anchor.hash !== next.hash || !isSimple(anchor)) return DEFER
      path.push(anchor)
      return path
    }
    path.push(next)
    cur = next
  }
  return DEFER
}

/**
 * subject, issuer and serial as the reference prints them from OpenSSL's parse of the leaf
 * (node's X509Certificate). Plain names and non-negative serials are printed here as OpenSSL
 * prints them. OpenSSL's parse runs on every leaf asn1js read, and on any leaf whose names or
 * serial are printed by OpenSSL: a leaf OpenSSL refuses is MALFORMED (openSslCertificate). A leaf
 * the node-forge reader read skips it when nothing is left to print: that reader accepts only
 * leaves OpenSSL parses (certificate-fast.ts; its property test holds it to that).
 */
function displayNames (leaf: LeafView): { subject: string, issuer: string, serial: string } {
  const subject = printName(leaf.subject)
  const issuer = printName(leaf.issuer)
  const serial = serialHex(leaf.layout.serial)
  // A leaf node-forge read is one OpenSSL parses (certificate-tree.ts; its property test holds the
  // fast reader to that): OpenSSL's parse, three times the cost of the signature check, is then
  // needed only to print what is printed here.
  if (leaf.readFast && subject !== undefined && issuer !== undefined && serial !== undefined) return { subject, issuer, serial }
  const node = openSslCertificate(leaf.der, 'leaf certificate')
  return {
    subject: subject ?? node.subject.replace(/\n/g, ', '),
    issuer: issuer ?? node.issuer.replace(/\n/g, ', '),
    serial: serial ?? node.serialNumber.toUpperCase(),
  }
}

function verifyFast (chain: readonly Uint8Array[], bundleOf: (trustDomain: string) => TrustBundle | undefined, now: Date, source: CredentialSource): X509Verification | Defer {
  if (chain.length === 0) throw fail('PORTCULLIS_IDENTITY_MALFORMED', 'empty certificate chain')
  if (chain.length > 16) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `certificate chain of ${chain.length} certificates is longer than 16`)
  // The reference parses every certificate before it applies any rule: a presented certificate
  // PKI.js cannot parse is MALFORMED before the leaf rules (which leafView applies) are heard.
  const presented = chain.slice(1).map((der, i) => intermediateOf(Buffer.from(der), i + 1))
  const leafDer = Buffer.from(chain[0] as Uint8Array)
  const leaf = leafView(leafDer)
  if (leaf === DEFER || !leaf.simple || !presented.every(isSimple)) return DEFER

  const { facts, spiffeId } = checkLeafFacts(leaf.facts)
  // after the leaf rules, before the trust domain: the reference's order
  checkPresentedEncoding([{ tree: leaf.layout, what: 'leaf certificate' }, ...presented.map((c, i) => ({ tree: c.layout, what: `chain certificate ${i + 2}` }))])
  const bundle = x509BundleOf(bundleOf, spiffeId)
  const { anchors, simple } = anchorsOfBundle(bundle)
  if (!simple) return DEFER

  checkDates({ notBefore: { value: new Date(leaf.notBefore) }, notAfter: { value: new Date(leaf.notAfter) } }, now, 'leaf certificate')
  for (const [i, c] of presented.entries()) {
    const what = `chain certificate ${i + 2}`
    checkDates(c.cert, now, what)
    checkSigningFacts(c.facts, what)
  }

  const built = buildPath(leaf, presented, anchors)
  if (built === DEFER) return DEFER
  if (built === 'untrusted') {
    throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate of ${spiffeId.id} does not chain to an X.509 authority of trust domain ${spiffeId.trustDomain}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  const path: PathCert[] = [leaf, ...built]
  const t = now.getTime()
  // RFC 5280 §6.1.3 (a)(2): every certificate of the path is valid now; only anchors are left to check.
  for (const c of built) {
    if (c.notBefore > t || c.notAfter < t) {
      const early = bundle.x509Authorities.some((a) => a.cert.notBefore.value.getTime() > t)
      throw fail(early ? 'PORTCULLIS_IDENTITY_NOT_YET_VALID' : 'PORTCULLIS_IDENTITY_EXPIRED', `certificate path of ${spiffeId.id} is not valid at ${now.toISOString()}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
    }
  }
  // RFC 5280 §6.1.4 (a)(4): name chaining (PKI.js checks it after the key-identifier search).
  // PKI.js also lets a self-issued certificate chain to itself; no such certificate is below
  // the anchor here (buildPath hands every self-issued one to the reference), so only the name
  // of the next certificate up is compared.
  for (let i = path.length - 2; i >= 0; i--) {
    const c = path[i] as PathCert
    const up = path[i + 1] as PathCert
    if (!namesEqual(c.issuer, up.subject)) {
      throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate path of ${spiffeId.id}: incorrect name chaining`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
    }
  }
  for (const c of built) {
    if (!c.caOk) throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id}: one of the CA certificates is not a CA certificate`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  // RFC 5280 §6.1.4 (l, m): pathLenConstraint caps the number of intermediates below a CA.
  for (let i = 1; i < path.length; i++) {
    const f = (built[i - 1] as SimpleCaCert).facts
    if (f.pathLen !== undefined && i - 1 > f.pathLen) {
      throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id} exceeds pathLenConstraint ${f.pathLen} of path certificate ${i + 1}`, { spiffe_id: spiffeId.id })
    }
  }

  const names = displayNames(leaf)
  const expiresAt = new Date(Math.min(...path.map((c) => c.notAfter)))
  return x509Verification(spiffeId, source, expiresAt, {
    fingerprint_sha256: leaf.hash,
    serial: names.serial,
    not_before: new Date(leaf.notBefore).toISOString(),
    not_after: new Date(leaf.notAfter).toISOString(),
    subject: names.subject,
    issuer: names.issuer,
    dns_sans: facts.dnsNames,
    chain_sha256: path.map((c) => c.hash),
  })
}

/**
 * Verifies an X509-SVID chain (DER, leaf first) at `now`.
 *
 * @param bundleOf returns the trust bundle of a trust domain, or undefined when unknown.
 * @throws IdentityError with a PORTCULLIS_IDENTITY_* code.
 */
export async function verifyX509Svid (chain: readonly Uint8Array[], bundleOf: (trustDomain: string) => TrustBundle | undefined, now: Date, source: CredentialSource): Promise<X509Verification> {
  let r: X509Verification | Defer
  try {
    r = verifyFast(chain, bundleOf, now, source)
  } catch (err) {
    x509PathStats.fast++
    throw err
  }
  if (r !== DEFER) {
    x509PathStats.fast++
    return r
  }
  x509PathStats.deferred++
  return await verifyX509SvidReference(chain, bundleOf, now, source)
}
