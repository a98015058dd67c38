/**
 * The CA side of the node:crypto X.509-SVID path (x509-svid.ts): what is read of a CA
 * certificate once and kept, so each leaf costs only its own reading and one signature check.
 * - once per trust-bundle object (bundles are immutable; a reload is a new object): each X.509
 *   authority's facts, CA check (PKI.js checkForCA), key identifiers and public KeyObject, and
 *   whether the whole bundle is simple enough for the fast path;
 * - once per distinct presented intermediate (bounded LRU by DER SHA-256): its PKI.js parse,
 *   facts, CA check and KeyObject;
 * - once per (certificate, issuer) pair the signature check of a CA-issued certificate
 *   (a leaf's own check is never cached).
 * A CA that is anything but simple (unreadable facts, a reference-only extension, issuer-and-
 * serial key identifiers, a signature algorithm outside SIGNATURE_ALGORITHMS) is marked so,
 * and the leaf side hands its chains to the reference verifier.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import type * as asn1js from 'asn1js'
import { LRUCache } from 'lru-cache'
import * as pkijs from 'pkijs'
import type { TrustBundle, X509Authority } from './bundle.js'
import { readCertificate, type CertificateTree, type NameBlock } from './certificate-tree.js'
import { bytesEqual, nameRef, type NameRef } from './x509-names.js'
import { certificateFacts, parseIntermediate, sha256, type LeafFacts } from './x509-rules.js'

/** Signature algorithms of the fast path (outer signatureAlgorithm OID). */
export const SIGNATURE_ALGORITHMS: Record<string, { hash: string, keyType: 'ec' | 'rsa' }> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', keyType: 'ec' }, // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': { hash: 'sha384', keyType: 'ec' }, // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4': { hash: 'sha512', keyType: 'ec' }, // ecdsa-with-SHA512
  '1.2.840.113549.1.1.11': { hash: 'sha256', keyType: 'rsa' }, // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': { hash: 'sha384', keyType: 'rsa' }, // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13': { hash: 'sha512', keyType: 'rsa' }, // sha512WithRSAEncryption
}
const DER_NULL = Buffer.from([0x05, 0x00])

/** Extensions whose processing (RFC 5280 §6.1.3–4 policies, §4.2.1.10 name constraints) only the reference engine does. */
export const REFERENCE_ONLY_EXTENSIONS = new Set(['2.5.29.30', '2.5.29.32', '2.5.29.33', '2.5.29.36', '2.5.29.54'])
export const SKI = '2.5.29.14'
export const AKI = '2.5.29.35'

/** What the path search reads of any certificate, leaf or CA. */
export interface PathCert {
  der: Buffer
  hash: string
  layout: CertificateTree
  subject: NameRef
  issuer: NameRef
  /** subjectKeyIdentifier of the first parsed SKI extension (PKI.js findIssuer reads only that one). */
  ski?: Uint8Array
  /** authorityKeyIdentifier keyIdentifier. */
  akiKeyId?: Uint8Array
  notBefore: number
  notAfter: number
}

/** A CA certificate: a trust anchor or a presented intermediate. */
export interface CaCert extends PathCert {
  cert: pkijs.Certificate
  /** PKI.js checkForCA (RFC 5280 §6.1.4 (k), (n)) as the reference engine applies it to path certificates. */
  caOk: boolean
  /** certificateFacts, or undefined when they throw (such a CA is not simple: the reference judges it). */
  facts?: LeafFacts
  /** False when anything about it is for the reference engine to judge. */
  simple: boolean
  key?: KeyObject
}

/** A CA certificate the fast path may judge: simple, so its facts were read. */
export type SimpleCaCert = CaCert & { simple: true, facts: LeafFacts }

export function isSimple (c: CaCert): c is SimpleCaCert {
  return c.simple && c.facts !== undefined
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
  const tree = readCertificate(der)
  const layout = tree ?? EMPTY_TREE
  const base = {
    der,
    hash,
    cert,
    layout,
    subject: nameRef(layout.subject, () => cert.subject),
    issuer: nameRef(layout.issuer, () => cert.issuer),
    notBefore: cert.notBefore.value.getTime(),
    notAfter: cert.notAfter.value.getTime(),
  }
  let simple = tree !== undefined && tree.signature !== undefined && SIGNATURE_ALGORITHMS[tree.signatureOid] !== undefined
  let caOk = false
  try { caOk = pkijsCheckForCa(cert) } catch { simple = false }
  let facts: LeafFacts | undefined
  try { facts = certificateFacts(cert, 'certificate') } catch { simple = false }
  const ids = keyIdentifiers(cert.extensions)
  if (!ids.simple) simple = false
  const out: CaCert = { ...base, caOk, simple }
  if (facts !== undefined) out.facts = facts
  if (ids.ski !== undefined) out.ski = ids.ski
  if (ids.akiKeyId !== undefined) out.akiKeyId = ids.akiKeyId
  return out
}

/** The layout of a CA certificate asn1js did not read (never expected: PKI.js read it); such a CA is not simple. */
const EMPTY_NAME: NameBlock = { der: new Uint8Array(), node: { tagClass: 1, tagNumber: 16, constructed: true, definite: true, content: new Uint8Array(), children: [] } }
const EMPTY_TREE: CertificateTree = { tbs: new Uint8Array(), serial: new Uint8Array(), issuer: EMPTY_NAME, subject: EMPTY_NAME, notBefore: 0, notAfter: 0, subjectPublicKeyInfo: new Uint8Array(), extensions: [], signatureOid: '', strict: { signatureAlgorithmsMatch: true, canonicalTimes: true } }

function keyOf (c: CaCert): KeyObject | undefined {
  if (c.key === undefined) {
    try { c.key = createPublicKey({ key: Buffer.from(c.layout.subjectPublicKeyInfo), format: 'der', type: 'spki' }) } catch { return undefined }
  }
  return c.key
}

/** Trust anchors of one bundle object, prepared once (the WeakMap lets a replaced bundle go). */
const anchorsOf = new WeakMap<X509Authority, CaCert>()
const bundleAnchors = new WeakMap<TrustBundle, { anchors: CaCert[], simple: boolean }>()

export function anchorsOfBundle (bundle: TrustBundle): { anchors: CaCert[], simple: boolean } {
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

export function intermediateOf (der: Buffer, i: number): CaCert {
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
export function signedBy (child: PathCert, issuer: CaCert, cache: boolean): boolean | undefined {
  const key = `${child.hash}/${issuer.hash}`
  if (cache) {
    const hit = caSignatures.get(key)
    if (hit !== undefined) return hit
  }
  const alg = SIGNATURE_ALGORITHMS[child.layout.signatureOid]
  const params = child.layout.signatureParams
  const signature = child.layout.signature
  // RFC 5758 §3.2: ECDSA parameters absent; RFC 4055 §5: RSA parameters NULL (absent is tolerated, as PKI.js does).
  if (alg === undefined || signature === undefined || (params !== undefined && (alg.keyType === 'ec' || !bytesEqual(params, DER_NULL)))) return undefined
  const pub = keyOf(issuer)
  if (pub === undefined || pub.asymmetricKeyType !== alg.keyType) return undefined
  let ok: boolean
  try {
    ok = cryptoVerify(alg.hash, child.layout.tbs, alg.keyType === 'ec' ? { key: pub, dsaEncoding: 'der' } : pub, signature)
  } catch {
    ok = false
  }
  if (cache) caSignatures.set(key, ok)
  return ok
}
