/**
 * X.509-SVID verification (SPIFFE X509-SVID standard §4, §5; RFC 5280 §6) with node:crypto.
 *
 * The same rules, in the same order and with the same codes, as the PKI.js path validation of
 * x509-svid-reference.ts, but the work is split by how often it changes:
 * - once per trust-bundle object (bundles are immutable; a reload is a new object): each X.509
 *   authority's facts, CA check, key identifiers and public KeyObject;
 * - once per distinct presented intermediate (bounded LRU by DER SHA-256): its PKI.js parse,
 *   facts, CA check and KeyObject; and once per (certificate, issuer) pair the signature check
 *   of a CA-issued certificate;
 * - per leaf: locate the DER fields (der.ts), decode only the extensions, validity and names
 *   (asn1js / PKI.js), check the SPIFFE leaf rules, find the issuer as PKI.js does and verify
 *   the leaf's signature over its tbsCertificate with crypto.verify.
 * Dates are compared with `now` on every verification (cached facts hold the dates, not the
 * verdict).
 *
 * The fast path decides only the shapes it fully understands: strict-DER certificates, ECDSA or
 * RSA PKCS#1 v1.5 signatures with SHA-2, at most one issuer candidate per step, no policy or
 * name-constraint extensions anywhere in the path. Everything else (and any doubt) is handed to
 * the reference verifier, so a chain the fast path does not know is judged exactly as before.
 * test/identity/x509-svid-differential.test.ts holds the two to the same answers.
 */
import { createPublicKey, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto'
import * as asn1js from 'asn1js'
import { LRUCache } from 'lru-cache'
import * as pkijs from 'pkijs'
import type { TrustBundle, X509Authority } from './bundle.js'
import type { CredentialSource, IdentityDocument } from './document.js'
import { parseCertificateDer } from './pem.js'
import { certificateLayout, children, oidToString, readExtensions, readTlv, readValidity, type CertificateLayout, type RawExtension, type Tlv } from './der.js'
import { verifyX509SvidReference } from './x509-svid-reference.js'
import { certificateFacts, checkDates, checkLeafFacts, checkSigningCertificate, fail, KNOWN_EXTENSIONS, OID, parseIntermediate, sha256, type LeafFacts, type X509Verification } from './x509-rules.js'

export { certificateFacts, checkLeafRules, parseChain, type LeafFacts, type ParsedCertificate, type X509Verification } from './x509-rules.js'
export { verifyX509SvidReference } from './x509-svid-reference.js'

/** Signature algorithms of the fast path (outer signatureAlgorithm OID content, hex). */
const SIGNATURE_ALGORITHMS: Record<string, { hash: string, keyType: 'ec' | 'rsa' }> = {
  '2a8648ce3d040302': { hash: 'sha256', keyType: 'ec' }, // ecdsa-with-SHA256
  '2a8648ce3d040303': { hash: 'sha384', keyType: 'ec' }, // ecdsa-with-SHA384
  '2a8648ce3d040304': { hash: 'sha512', keyType: 'ec' }, // ecdsa-with-SHA512
  '2a864886f70d01010b': { hash: 'sha256', keyType: 'rsa' }, // sha256WithRSAEncryption
  '2a864886f70d01010c': { hash: 'sha384', keyType: 'rsa' }, // sha384WithRSAEncryption
  '2a864886f70d01010d': { hash: 'sha512', keyType: 'rsa' }, // sha512WithRSAEncryption
}
const DER_NULL = Buffer.from([0x05, 0x00])

/** Extensions whose processing (RFC 5280 §6.1.3–4 policies, §4.2.1.10 name constraints) only the reference engine does. */
const REFERENCE_ONLY_EXTENSIONS = new Set(['2.5.29.30', '2.5.29.32', '2.5.29.33', '2.5.29.36', '2.5.29.54'])
const SKI = '2.5.29.14'
const AKI = '2.5.29.35'

/** The answer "the fast path does not decide this chain". */
const DEFER = Symbol('defer')
type Defer = typeof DEFER

/** How many chains each path decided (tests and the benchmark read it). */
export const x509PathStats = { fast: 0, deferred: 0 }

/** What the path search reads of any certificate, leaf or CA. */
interface PathCert {
  der: Buffer
  hash: string
  layout: CertificateLayout
  subjectName: () => pkijs.RelativeDistinguishedNames
  issuerName: () => pkijs.RelativeDistinguishedNames
  /** subjectKeyIdentifier of the first parsed SKI extension (PKI.js findIssuer reads only that one). */
  ski?: Uint8Array
  /** authorityKeyIdentifier keyIdentifier. */
  akiKeyId?: Uint8Array
  notBefore: number
  notAfter: number
}

/** A CA certificate: a trust anchor or a presented intermediate. */
interface CaCert extends PathCert {
  cert: pkijs.Certificate
  /** PKI.js checkForCA (RFC 5280 §6.1.4 (k), (n)) as the reference engine applies it to path certificates. */
  caOk: boolean
  /** certificateFacts, or undefined when they throw (the reference throws then; so does the fast path, by recomputing). */
  facts?: LeafFacts
  /** False when anything about it is for the reference engine to judge. */
  simple: boolean
  key?: KeyObject
}

function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
}

/** One AttributeTypeAndValue of a Name whose value is a plain string (see plainName). */
interface PlainAttribute { oid: string, value: string }

/** UTF8String, PrintableString, IA5String: string types whose printable-ASCII content reads the same in every decoder. */
const PLAIN_STRING_TAGS = new Set([0x0c, 0x13, 0x16])

/**
 * A Name (RFC 5280 §4.1.2.4) as its RDNs, each a list of attributes, when every value is one of
 * the plain string types holding printable ASCII; undefined otherwise (PKI.js / OpenSSL judge it).
 */
function plainName (der: Uint8Array): PlainAttribute[][] | undefined {
  const seq = readTlv(der, 0, der.byteLength)
  const rdns = seq === undefined || seq.tag !== 0x30 || seq.end !== der.byteLength ? undefined : children(der, seq)
  if (rdns === undefined) return undefined
  const out: PlainAttribute[][] = []
  for (const rdn of rdns) {
    const atvs = rdn.tag === 0x31 ? children(der, rdn) : undefined
    if (atvs === undefined || atvs.length === 0) return undefined
    const attrs: PlainAttribute[] = []
    for (const atv of atvs) {
      const parts = atv.tag === 0x30 ? children(der, atv) : undefined
      if (parts?.length !== 2 || parts[0]?.tag !== 0x06 || !PLAIN_STRING_TAGS.has((parts[1] as Tlv).tag)) return undefined
      const oid = oidToString(der.subarray(parts[0].contentStart, parts[0].end))
      const raw = der.subarray((parts[1] as Tlv).contentStart, (parts[1] as Tlv).end)
      if (oid === undefined || raw.some((c) => c < 0x20 || c > 0x7e)) return undefined
      attrs.push({ oid, value: fromLatin1(raw) })
    }
    out.push(attrs)
  }
  return out
}

/** PKI.js stringPrep: trim, collapse runs of spaces, lower-case. */
function stringPrep (s: string): string {
  return s.trim().replace(/ +/g, ' ').toLowerCase()
}

/**
 * PKI.js RelativeDistinguishedNames.isEqual: the same attribute types in the same order (RDN
 * boundaries ignored), string values equal after stringPrep. Byte equality decides the usual
 * case; plain names are compared here; any other name is parsed and compared by PKI.js.
 */
function namesEqual (aDer: Uint8Array, a: () => pkijs.RelativeDistinguishedNames, bDer: Uint8Array, b: () => pkijs.RelativeDistinguishedNames): boolean {
  if (bytesEqual(aDer, bDer)) return true
  const pa = plainName(aDer)?.flat()
  const pb = plainName(bDer)?.flat()
  if (pa === undefined || pb === undefined) return a().isEqual(b())
  if (pa.length !== pb.length) return false
  // printable ASCII: localeCompare(x, y) === 0 exactly when x === y
  return pa.every((x, i) => x.oid === (pb[i] as PlainAttribute).oid && stringPrep(x.value) === stringPrep((pb[i] as PlainAttribute).value))
}

/** OpenSSL short names (OBJ_nid2sn) of the attributes printName prints itself. */
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.5': 'serialNumber',
  '0.9.2342.19200300.100.1.25': 'DC', '0.9.2342.19200300.100.1.1': 'UID',
}

/**
 * X509Certificate.subject / .issuer text for a plain name, without parsing the certificate:
 * Node prints X509_NAME_print_ex(ASN1_STRFLGS_ESC_2253 | ESC_CTRL | UTF8_CONVERT |
 * XN_FLAG_SEP_MULTILINE | XN_FLAG_FN_SN), i.e. "SN=value" per attribute, one RDN per line.
 * Undefined (print with OpenSSL) for multi-valued RDNs, attributes without a short name here,
 * and values RFC 2253 escaping would change.
 */
function printName (der: Uint8Array): string | undefined {
  const rdns = plainName(der)
  if (rdns === undefined) return undefined
  const lines: string[] = []
  for (const rdn of rdns) {
    const attr = rdn[0] as PlainAttribute
    const sn = SHORT_NAMES[attr.oid]
    if (rdn.length !== 1 || sn === undefined || /[,+"\\<>;]|^[ #]| $/.test(attr.value)) return undefined
    lines.push(`${sn}=${attr.value}`)
  }
  return lines.join('\n')
}

/** Names parsed for a comparison, keyed by their DER (leaves of one workload share them). */
const parsedNames = new LRUCache<string, pkijs.RelativeDistinguishedNames>({ max: 4096 })

function nameOf (der: Uint8Array): () => pkijs.RelativeDistinguishedNames {
  return () => {
    const key = Buffer.from(der).toString('latin1')
    let name = parsedNames.get(key)
    if (name === undefined) {
      const asn = asn1js.fromBER(new Uint8Array(der))
      // The layout already proved these bytes are one DER SEQUENCE; PKI.js decides the rest.
      name = new pkijs.RelativeDistinguishedNames({ schema: asn.result })
      parsedNames.set(key, name)
    }
    return name
  }
}

/** PKI.js CertificateChainValidationEngine checkForCA (needToCheckCRL false); throws where it would throw. */
function pkijsCheckForCa (cert: pkijs.Certificate): boolean {
  let isCA = false
  let mustBeCA = false
  let keyUsagePresent = false
  if (cert.extensions !== undefined) {
    for (const extension of cert.extensions) {
      if (extension.critical && extension.parsedValue === undefined) return false
      if (extension.extnID === '2.5.29.15') {
        keyUsagePresent = true
        const view = new Uint8Array((extension.parsedValue as asn1js.BitString).valueBlock.valueHexView)
        if (((view[0] ?? 0) & 4) === 4) mustBeCA = true
      }
      if (extension.extnID === '2.5.29.19') {
        if ('cA' in (extension.parsedValue as object)) {
          if ((extension.parsedValue as pkijs.BasicConstraints).cA === true) isCA = true
        }
      }
    }
    if (mustBeCA && !isCA) return false
    if (keyUsagePresent && isCA && !mustBeCA) return false
  }
  return isCA
}

function keyIdentifiers (extensions: readonly pkijs.Extension[] | undefined): { ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } {
  const out: { ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } = { simple: true }
  let sawSki = false
  let sawAki = false
  for (const e of extensions ?? []) {
    if (REFERENCE_ONLY_EXTENSIONS.has(e.extnID)) out.simple = false
    if (e.extnID === SKI && !sawSki) {
      const v = e.parsedValue as asn1js.OctetString | undefined
      if (v === undefined) out.simple = false
      else { out.ski = new Uint8Array(v.valueBlock.valueHexView); sawSki = true }
    }
    if (e.extnID === AKI && !sawAki) {
      const v = e.parsedValue
      if (v instanceof pkijs.AuthorityKeyIdentifier) {
        sawAki = true
        if (v.keyIdentifier !== undefined) out.akiKeyId = new Uint8Array(v.keyIdentifier.valueBlock.valueHexView)
        // Issuer-and-serial matching (no keyIdentifier) is the reference engine's.
        else if (v.authorityCertIssuer !== undefined || v.authorityCertSerialNumber !== undefined) out.simple = false
      } else if (v !== undefined) out.simple = false
    }
  }
  return out
}

function caCert (der: Buffer, hash: string, cert: pkijs.Certificate): CaCert {
  const layout = certificateLayout(der)
  const base = {
    der,
    hash,
    cert,
    subjectName: () => cert.subject,
    issuerName: () => cert.issuer,
    notBefore: cert.notBefore.value.getTime(),
    notAfter: cert.notAfter.value.getTime(),
  }
  let simple = layout !== undefined && SIGNATURE_ALGORITHMS[layout.signatureOid] !== undefined
  let caOk = false
  try { caOk = pkijsCheckForCa(cert) } catch { simple = false }
  let facts: LeafFacts | undefined
  try { facts = certificateFacts(cert, 'certificate') } catch { simple = false }
  const ids = keyIdentifiers(cert.extensions)
  if (!ids.simple) simple = false
  const out: CaCert = { ...base, layout: layout ?? EMPTY_LAYOUT, caOk, simple }
  if (facts !== undefined) out.facts = facts
  if (ids.ski !== undefined) out.ski = ids.ski
  if (ids.akiKeyId !== undefined) out.akiKeyId = ids.akiKeyId
  return out
}

const EMPTY_LAYOUT: CertificateLayout = { tbs: new Uint8Array(), serial: new Uint8Array(), issuer: new Uint8Array(), subject: new Uint8Array(), validity: new Uint8Array(), subjectPublicKeyInfo: new Uint8Array(), signatureOid: '', signature: new Uint8Array() }

function keyOf (c: CaCert): KeyObject | undefined {
  if (c.key === undefined) {
    try { c.key = createPublicKey({ key: Buffer.from(c.layout.subjectPublicKeyInfo), format: 'der', type: 'spki' }) } catch { return undefined }
  }
  return c.key
}

/** Trust anchors of one bundle object, prepared once (the WeakMap lets a replaced bundle go). */
const anchorsOf = new WeakMap<X509Authority, CaCert>()
const bundleAnchors = new WeakMap<TrustBundle, { anchors: CaCert[], simple: boolean }>()

function anchorsOfBundle (bundle: TrustBundle): { anchors: CaCert[], simple: boolean } {
  let b = bundleAnchors.get(bundle)
  if (b === undefined) {
    const anchors = bundle.x509Authorities.map((a) => {
      let c = anchorsOf.get(a)
      if (c === undefined) {
        c = caCert(a.der, a.fingerprint_sha256, a.cert)
        anchorsOf.set(a, c)
      }
      return c
    })
    b = { anchors, simple: anchors.every((a) => a.simple) }
    bundleAnchors.set(bundle, b)
  }
  return b
}

/** Presented intermediates, prepared once per distinct DER (the parse itself is cached in x509-rules.ts too). */
const intermediates = new LRUCache<string, CaCert>({ max: 1024 })

function intermediateOf (der: Buffer, i: number): CaCert {
  const hash = sha256(der)
  let c = intermediates.get(hash)
  if (c === undefined) {
    c = caCert(der, hash, parseIntermediate(der, hash, `chain certificate ${i + 1}`))
    intermediates.set(hash, c)
  }
  return c
}

/** Signature checks of CA-issued certificates, keyed by (certificate, issuer) DER hashes. */
const caSignatures = new LRUCache<string, boolean>({ max: 4096 })

/** Does `issuer`'s key verify `child`'s signature? undefined when the fast path cannot tell. */
function signedBy (child: PathCert, issuer: CaCert, cache: boolean): boolean | undefined {
  const key = `${child.hash}/${issuer.hash}`
  if (cache) {
    const hit = caSignatures.get(key)
    if (hit !== undefined) return hit
  }
  const alg = SIGNATURE_ALGORITHMS[child.layout.signatureOid]
  const params = child.layout.signatureParams
  // RFC 5758 §3.2: ECDSA parameters absent; RFC 4055 §5: RSA parameters NULL (absent is tolerated, as PKI.js does).
  if (alg === undefined || (params !== undefined && (alg.keyType === 'ec' || !bytesEqual(params, DER_NULL)))) return undefined
  const pub = keyOf(issuer)
  if (pub === undefined || pub.asymmetricKeyType !== alg.keyType) return undefined
  let ok: boolean
  try {
    ok = cryptoVerify(alg.hash, child.layout.tbs, alg.keyType === 'ec' ? { key: pub, dsaEncoding: 'der' } : pub, child.layout.signature)
  } catch {
    ok = false
  }
  if (cache) caSignatures.set(key, ok)
  return ok
}

/** The leaf, read from its DER: only the fields the rules read are decoded. */
interface LeafView extends PathCert {
  facts: LeafFacts
  simple: boolean
}

function fromLatin1 (v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1')
}

/** A DER TLV that spans `v` exactly. */
function whole (v: Uint8Array, tag: number): Tlv | undefined {
  const t = readTlv(v, 0, v.byteLength)
  return t !== undefined && t.tag === tag && t.end === v.byteLength ? t : undefined
}

/**
 * certificateFacts (x509-rules.ts) over the leaf's raw extensions, with the same errors in the
 * same order; DEFER where an extension value is not in the plain DER shape whose PKI.js reading
 * is known (then PKI.js reads it, in the reference verifier).
 */
function leafFacts (exts: readonly RawExtension[]): { facts: LeafFacts, ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } | Defer {
  const what = 'leaf certificate'
  const seen = new Set<string>()
  for (const e of exts) {
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (seen.has(e.oid)) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `${what}: duplicate extension ${e.oid}`, { extension: e.oid })
    seen.add(e.oid)
    if (e.critical && !KNOWN_EXTENSIONS.has(e.oid)) {
      throw fail('PORTCULLIS_IDENTITY_UNKNOWN_CRITICAL_EXTENSION', `${what}: unknown critical extension ${e.oid}`, { extension: e.oid })
    }
  }
  const out: { facts: LeafFacts, ski?: Uint8Array, akiKeyId?: Uint8Array, simple: boolean } = { facts: { uris: [], dnsNames: [], ca: false }, simple: true }
  for (const e of exts) {
    if (REFERENCE_ONLY_EXTENSIONS.has(e.oid)) out.simple = false
    if (e.oid === OID.subjectAltName) {
      const seq = whole(e.value, 0x30)
      const names = seq === undefined ? undefined : children(e.value, seq)
      if (names === undefined || names.length === 0) return DEFER
      for (const n of names) {
        // GeneralName [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier (IA5String), [7] iPAddress.
        if (n.tag === 0x86) out.facts.uris.push(fromLatin1(e.value.subarray(n.contentStart, n.end)))
        else if (n.tag === 0x82) out.facts.dnsNames.push(fromLatin1(e.value.subarray(n.contentStart, n.end)))
        else if (n.tag !== 0x81 && n.tag !== 0x87) return DEFER
      }
    } else if (e.oid === OID.keyUsage) {
      const bits = whole(e.value, 0x03)
      // X.690 §8.6.2.2: at most 7 unused bits (asn1js refuses more, and the reference calls that unparseable).
      if (bits === undefined || bits.end - bits.contentStart < 2 || (e.value[bits.contentStart] as number) > 7) return DEFER
      out.facts.keyUsage = e.value[bits.contentStart + 1] as number
    } else if (e.oid === OID.basicConstraints) {
      const seq = whole(e.value, 0x30)
      const parts = seq === undefined ? undefined : children(e.value, seq)
      if (parts === undefined || parts.length > 2) return DEFER
      let k = 0
      const flag = parts[k]
      if (flag?.tag === 0x01) {
        const octet = flag.end - flag.contentStart === 1 ? e.value[flag.contentStart] : undefined
        if (octet !== 0x00 && octet !== 0xff) return DEFER
        out.facts.ca = octet === 0xff
        k++
      }
      const len = parts[k]
      if (len !== undefined) {
        const n = len.end - len.contentStart
        if (len.tag !== 0x02 || n < 1 || n > 3 || ((e.value[len.contentStart] as number) & 0x80) !== 0) return DEFER
        out.facts.pathLen = Number.parseInt(Buffer.from(e.value.subarray(len.contentStart, len.end)).toString('hex'), 16)
        k++
      }
      if (k !== parts.length) return DEFER
    } else if (e.oid === SKI) {
      const v = whole(e.value, 0x04)
      if (v === undefined) return DEFER
      out.ski = e.value.subarray(v.contentStart, v.end)
    } else if (e.oid === AKI) {
      const seq = whole(e.value, 0x30)
      const parts = seq === undefined ? undefined : children(e.value, seq)
      // Only [0] keyIdentifier; issuer-and-serial matching is the reference engine's.
      if (parts === undefined || parts.length !== 1 || parts[0]?.tag !== 0x80) return DEFER
      out.akiKeyId = e.value.subarray(parts[0].contentStart, parts[0].end)
    }
  }
  return out
}

function leafView (der: Buffer): LeafView | Defer {
  const layout = certificateLayout(der)
  if (layout === undefined) return DEFER
  const exts = layout.extensions === undefined ? [] : readExtensions(layout.extensions)
  const validity = readValidity(layout.validity)
  if (exts === undefined || validity === undefined) return DEFER
  const read = leafFacts(exts)
  if (read === DEFER) return DEFER
  const view: LeafView = {
    der,
    hash: sha256(der),
    layout,
    subjectName: nameOf(layout.subject),
    issuerName: nameOf(layout.issuer),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    facts: read.facts,
    simple: read.simple,
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
  return namesEqual(cur.layout.issuer, cur.issuerName, p.layout.subject, p.subjectName)
}

/**
 * The certificate path from the leaf to a trust anchor as PKI.js's sort() would build it, or
 * 'untrusted' where PKI.js finds no path, or DEFER where its answer needs its own search.
 */
function buildPath (leaf: LeafView, presented: readonly CaCert[], anchors: readonly CaCert[]): CaCert[] | 'untrusted' | Defer {
  const isAnchor = (c: PathCert): CaCert | undefined => anchors.find((a) => bytesEqual(a.layout.tbs, c.layout.tbs))
  // PKI.js de-duplicates by tbsCertificate and validates the last survivor: a leaf equal to
  // another certificate changes which one that is.
  if (isAnchor(leaf) !== undefined || presented.some((p) => bytesEqual(p.layout.tbs, leaf.layout.tbs))) return DEFER
  const pool = [...anchors, ...presented]
  const path: CaCert[] = []
  let cur: PathCert = leaf
  for (let depth = 0; depth <= 16; depth++) {
    // A self-issued certificate is first tried as its own issuer by PKI.js.
    if (namesEqual(cur.layout.subject, cur.subjectName, cur.layout.issuer, cur.issuerName)) return DEFER
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
    if (!next.simple || path.includes(next) || bytesEqual(next.layout.tbs, cur.layout.tbs)) return DEFER
    const ok = signedBy(cur, next, cur !== leaf)
    if (ok === undefined) return DEFER
    if (!ok) return 'untrusted'
    const anchor = isAnchor(next)
    if (anchor !== undefined) {
      if (anchor.hash !== next.hash) return DEFER
      path.push(anchor)
      return path
    }
    path.push(next)
    cur = next
  }
  return DEFER
}

/** OpenSSL's one-line subject strings (X509Certificate.subject), by name DER: the same bytes print the same. */
const displayedNames = new LRUCache<string, string>({ max: 4096 })

function display (name: string): string {
  return name.replace(/\n/g, ', ')
}

/** BN_bn2hex of a non-negative INTEGER (what X509Certificate.serialNumber prints); undefined for a negative one. */
function serialHex (content: Uint8Array): string | undefined {
  if (content.byteLength === 0 || ((content[0] as number) & 0x80) !== 0) return undefined
  let i = 0
  while (i < content.byteLength && content[i] === 0) i++
  return i === content.byteLength ? '0' : Buffer.from(content.subarray(i)).toString('hex').toUpperCase()
}

/**
 * subject, issuer and serial as the reference prints them from node's X509Certificate, without
 * parsing the leaf a second time when the names were printed before: the issuer name is the
 * issuing CA's subject (same bytes), and leaves of one workload share a subject.
 */
function displayNames (leaf: LeafView, issuerCert: CaCert): { subject: string, issuer: string, serial: string } | undefined {
  const subjectKey = fromLatin1(leaf.layout.subject)
  const issuerKey = fromLatin1(leaf.layout.issuer)
  let subject = displayedNames.get(subjectKey)
  let issuer = displayedNames.get(issuerKey)
  if (subject === undefined) {
    const printed = printName(leaf.layout.subject)
    if (printed !== undefined) subject = display(printed)
  }
  let serial = serialHex(leaf.layout.serial)
  if (issuer === undefined && bytesEqual(leaf.layout.issuer, issuerCert.layout.subject)) {
    try {
      issuer = display(new X509Certificate(issuerCert.der).subject)
      displayedNames.set(issuerKey, issuer)
    } catch {}
  }
  if (subject === undefined || issuer === undefined || serial === undefined) {
    let node: X509Certificate
    try { node = new X509Certificate(leaf.der) } catch { return undefined }
    subject = display(node.subject)
    issuer = display(node.issuer)
    serial = node.serialNumber.toUpperCase()
    displayedNames.set(subjectKey, subject)
    displayedNames.set(issuerKey, issuer)
  }
  return { subject, issuer, serial }
}

function verifyFast (chain: readonly Uint8Array[], bundleOf: (trustDomain: string) => TrustBundle | undefined, now: Date, source: CredentialSource): X509Verification | Defer {
  if (chain.length === 0) throw fail('PORTCULLIS_IDENTITY_MALFORMED', 'empty certificate chain')
  if (chain.length > 16) throw fail('PORTCULLIS_IDENTITY_MALFORMED', `certificate chain of ${chain.length} certificates is longer than 16`)
  // The reference parses every certificate before it applies any rule: a presented certificate
  // PKI.js cannot parse is MALFORMED before the leaf rules (which leafView applies) are heard.
  const presented = chain.slice(1).map((der, i) => intermediateOf(Buffer.from(der), i + 1))
  const leafDer = Buffer.from(chain[0] as Uint8Array)
  const leaf = leafView(leafDer)
  if (leaf === DEFER || !leaf.simple || presented.some((p) => !p.simple)) return DEFER

  const { facts, spiffeId } = checkLeafFacts(leaf.facts)
  const bundle = bundleOf(spiffeId.trustDomain)
  if (bundle === undefined) {
    throw fail('PORTCULLIS_IDENTITY_TRUST_DOMAIN_UNKNOWN', `no trust bundle for trust domain ${JSON.stringify(spiffeId.trustDomain)}`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  if (bundle.x509Authorities.length === 0) {
    throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `trust domain ${spiffeId.trustDomain} has no X.509 authorities (its bundle trusts nothing)`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  const { anchors, simple } = anchorsOfBundle(bundle)
  if (!simple) return DEFER

  checkDates({ notBefore: { value: new Date(leaf.notBefore) }, notAfter: { value: new Date(leaf.notAfter) } }, now, 'leaf certificate')
  for (const [i, c] of presented.entries()) {
    const what = `chain certificate ${i + 2}`
    checkDates(c.cert, now, what)
    checkSigningCertificate(c.cert, what)
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
  for (let i = path.length - 2; i >= 0; i--) {
    const c = path[i] as PathCert
    const up = path[i + 1] as PathCert
    if (!namesEqual(c.layout.issuer, c.issuerName, c.layout.subject, c.subjectName) && !namesEqual(c.layout.issuer, c.issuerName, up.layout.subject, up.subjectName)) {
      throw fail('PORTCULLIS_IDENTITY_UNTRUSTED', `certificate path of ${spiffeId.id}: incorrect name chaining`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
    }
  }
  for (const c of built) {
    if (!c.caOk) throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id}: one of the CA certificates is not a CA certificate`, { trust_domain: spiffeId.trustDomain, spiffe_id: spiffeId.id })
  }
  // RFC 5280 §6.1.4 (l, m): pathLenConstraint caps the number of intermediates below a CA.
  for (let i = 1; i < path.length; i++) {
    const c = built[i - 1] as CaCert
    const f = c.facts ?? certificateFacts(c.cert, `path certificate ${i + 1}`)
    if (f.pathLen !== undefined && i - 1 > f.pathLen) {
      throw fail('PORTCULLIS_IDENTITY_INTERMEDIATE_NOT_CA', `certificate path of ${spiffeId.id} exceeds pathLenConstraint ${f.pathLen} of path certificate ${i + 1}`, { spiffe_id: spiffeId.id })
    }
  }

  const names = displayNames(leaf, built[0] as CaCert)
  if (names === undefined) return DEFER
  const expiresAt = new Date(Math.min(...path.map((c) => c.notAfter)))
  const issuer = names.issuer
  const identity: IdentityDocument = {
    type: 'x509-svid',
    source,
    spiffe_id: spiffeId.id,
    trust_domain: spiffeId.trustDomain,
    path: spiffeId.path,
    subject: spiffeId.id,
    issuer,
    expires_at: expiresAt.toISOString(),
    x509: {
      fingerprint_sha256: leaf.hash,
      serial: names.serial,
      not_before: new Date(leaf.notBefore).toISOString(),
      not_after: new Date(leaf.notAfter).toISOString(),
      subject: names.subject,
      issuer,
      dns_sans: facts.dnsNames,
      chain_sha256: path.map((c) => c.hash),
    },
  }
  return { identity, expiresAt }
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
    // The reference parses the whole leaf with PKI.js before any rule, so a leaf PKI.js cannot
    // read is MALFORMED there whatever else is wrong with it. der.ts only locates fields, so a
    // rejection is confirmed against that parse (a rejection only: accepting needs a valid
    // signature of a trusted CA over exactly these bytes).
    if (chain.length > 0 && chain.length <= 16) parseCertificateDer(chain[0] as Uint8Array, 'leaf certificate')
    throw err
  }
  if (r !== DEFER) {
    x509PathStats.fast++
    return r
  }
  x509PathStats.deferred++
  return await verifyX509SvidReference(chain, bundleOf, now, source)
}
