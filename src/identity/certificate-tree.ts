/**
 * A certificate's fields, read by node-forge's DER parser where that is proven to agree with
 * PKI.js, else by asn1js as PKI.js reads them; without building PKI.js's Certificate object.
 *
 * readCertificateFast (certificate-fast.ts: node-forge and its checks, 10–25 µs for a SPIFFE leaf, where asn1js takes 300–400 µs)
 * reads only certificates in the shape it can prove PKI.js reads the same way: the DER
 * re-encodes to the same bytes (definite minimal lengths, low tag numbers: canonical DER), the
 * structure is exactly X.509's (RFC 5280 §4.1, v3), names are plain, times are canonical
 * UTCTime, and nothing in it is one of the encodings asn1js refuses (reserved tags, constructed
 * primitives, more than 7 unused bits, an unterminated OID, its node limit). Everything else
 * returns undefined and is read by readCertificate below, so the answer never depends on which
 * reader read it (test/identity/certificate-tree.test.ts compares the two on mutated leaves).
 *
 * The parse is the first two steps of the PKI.js parse the reference verifier runs
 * (pem.ts parseCertificateDer): `asn1js.fromBER` on the whole DER with the same options, no
 * trailing bytes, then `asn1js.compareSchema` against PKI.js's own `Certificate.schema()`. What
 * the Certificate constructor does after that only wraps the blocks the schema matched, so a
 * certificate read here is one PKI.js parses, and a certificate PKI.js refuses is not read here
 * (test/identity/x509-svid-differential.test.ts holds the two to that). The fields are the
 * schema's named blocks and their DER bytes (`valueBeforeDecodeView`); each extension is read as
 * PKI.js's Extension.fromSchema reads it, and its value is the tree asn1js parsed inside the
 * OCTET STRING.
 */
import * as asn1js from 'asn1js'
import forge from 'node-forge'
import * as pkijs from 'pkijs'

/**
 * One decoded ASN.1 element, whichever library read it: node-forge (readCertificateFast) or
 * asn1js (readCertificate). tagClass uses asn1js's numbering (1 universal, 2 application, 3
 * context-specific, 4 private). `children` holds a constructed element's elements, or for a
 * primitive OCTET STRING extension value nothing (see ExtensionBlock.value).
 */
export interface DerNode {
  tagClass: number
  tagNumber: number
  constructed: boolean
  /** False for an indefinite-length encoding (asn1js only: the fast reader refuses them). */
  definite: boolean
  /** The content octets. */
  content: Uint8Array
  children: DerNode[] | undefined
  /** An OBJECT IDENTIFIER's dotted form, when the reader noted it (oidString of the content). */
  oid?: string
}

/** One Extension (RFC 5280 §4.1) as PKI.js's Extension.fromSchema reads it from the matched blocks. */
export interface ExtensionBlock {
  extnID: string
  critical: boolean
  /**
   * The value inside the OCTET STRING read as one complete ASN.1 element (asn1js's embedded parse,
   * or node-forge's strict parse); undefined when it is not one, or the OCTET STRING is constructed.
   */
  value: DerNode | undefined
}

/** A Name's DER and its decoded tree. */
export interface NameBlock {
  der: Uint8Array
  node: DerNode
  /** plainName(node), when the reader computed it already. */
  plain?: PlainAttribute[][]
  /** The asn1js block PKI.js would wrap (asn1js reader), or undefined (fast reader: parse the DER on demand). */
  asn1?: asn1js.AsnType
}

export interface CertificateTree {
  /** tbsCertificate, tag and length included: the bytes the issuer signed. */
  tbs: Uint8Array
  /** serialNumber INTEGER content. */
  serial: Uint8Array
  issuer: NameBlock
  subject: NameBlock
  notBefore: number
  notAfter: number
  /** SubjectPublicKeyInfo DER. */
  subjectPublicKeyInfo: Uint8Array
  extensions: ExtensionBlock[]
  /** Outer signatureAlgorithm: dotted OID, and the parameters' DER when present. */
  signatureOid: string
  signatureParams?: Uint8Array
  /** signatureValue BIT STRING content without the unused-bits octet; undefined when bits are unused. */
  signature?: Uint8Array
  /**
   * RFC 5280 §4.1.1.2 and §4.1.2.5 as DER encodes them: tbsCertificate.signature is the same
   * AlgorithmIdentifier as signatureAlgorithm, and both validity times are the canonical
   * YYMMDDHHMMSSZ (UTCTime) / YYYYMMDDHHMMSSZ (GeneralizedTime) — Zulu, with seconds, no
   * fraction. (asn1js reads an offset or a local time wrongly: a notAfter that is not in Zulu
   * can move by hours or days.) The verifiers refuse a certificate without them (x509-rules.ts
   * checkEncoding).
   */
  strict: { signatureAlgorithmsMatch: boolean, canonicalTimes: boolean }
}

// The names PKI.js's Certificate.fromSchema asks compareSchema for (pkijs src/Certificate.ts).
const TBS = 'tbsCertificate'
const EXTENSIONS = `${TBS}.extensions`

/**
 * Built once: compareSchema writes its findings on the data's root, and only trims the schema's
 * names (idempotent), so one schema object serves every parse (building it costs as much as a
 * third of the parse).
 */
const CERTIFICATE_SCHEMA = pkijs.Certificate.schema({ names: { tbsCertificate: { names: { extensions: { names: { extensions: EXTENSIONS } } } } } } as never)

/** An asn1js block as a DerNode (its embedded parse of an OCTET STRING is not a child). */
export function nodeOfAsn1 (block: asn1js.AsnType): DerNode {
  const constructed = block.idBlock.isConstructed
  const value = (block as asn1js.Sequence).valueBlock.value as asn1js.AsnType[] | undefined
  return {
    tagClass: block.idBlock.tagClass,
    tagNumber: block.idBlock.tagNumber,
    constructed,
    definite: !block.lenBlock.isIndefiniteForm,
    content: contentOf(block),
    children: constructed && Array.isArray(value) ? value.map(nodeOfAsn1) : undefined,
  }
}

/** Extension.fromSchema: the schema (matched within the Certificate schema) is SEQUENCE { OID, BOOLEAN OPTIONAL, OCTET STRING }. */
function extensionOf (e: asn1js.Sequence): ExtensionBlock {
  const parts = e.valueBlock.value
  const critical = parts.length === 3 ? (parts[1] as asn1js.Boolean).valueBlock.value : false
  const extnValue = parts[parts.length - 1] as asn1js.OctetString
  // asn1js's embedded parse, kept only when the value is exactly one complete structure.
  const inner = extnValue.idBlock.isConstructed ? [] : extnValue.valueBlock.value
  return { extnID: (parts[0] as asn1js.ObjectIdentifier).valueBlock.toString(), critical, value: inner.length === 1 ? nodeOfAsn1(inner[0] as asn1js.AsnType) : undefined }
}

/** Whether a validity time is in the one form RFC 5280 allows (Zulu, with seconds, no fraction). */
function canonicalTime (block: asn1js.UTCTime | asn1js.GeneralizedTime): boolean {
  const text = Buffer.from(block.valueBlock.valueHexView).toString('latin1')
  return block instanceof asn1js.GeneralizedTime ? /^\d{14}Z$/.test(text) : /^\d{12}Z$/.test(text)
}

function timeOf (block: asn1js.UTCTime | asn1js.GeneralizedTime): number {
  // What PKI.js's Time object holds (Time.fromSchema: toDate()).
  return block.toDate().getTime()
}

function nameOf (block: asn1js.Sequence): NameBlock {
  return { der: block.valueBeforeDecodeView, node: nodeOfAsn1(block), asn1: block }
}

/**
 * Reads one DER certificate; undefined exactly where PKI.js's parse (parseCertificateDer) throws:
 * not one complete BER structure, or not the X.509 Certificate schema.
 */
export function readCertificate (der: Uint8Array): CertificateTree | undefined {
  const bytes = new Uint8Array(der.buffer, der.byteOffset, der.byteLength)
  const asn = asn1js.fromBER(bytes)
  if (asn.offset === -1 || asn.offset !== bytes.byteLength) return undefined
  const matched = asn1js.compareSchema(asn.result, asn.result, CERTIFICATE_SCHEMA)
  if (!matched.verified) return undefined
  const r = matched.result as Record<string, asn1js.AsnType | asn1js.AsnType[] | undefined>
  const block = <T>(name: string): T => r[name] as T
  const algorithm = block<asn1js.Sequence>('signatureAlgorithm').valueBlock.value
  const signatureValue = block<asn1js.BitString>('signatureValue')
  const tree: CertificateTree = {
    tbs: block<asn1js.Sequence>(TBS).valueBeforeDecodeView,
    serial: block<asn1js.Integer>(`${TBS}.serialNumber`).valueBlock.valueHexView,
    issuer: nameOf(block<asn1js.Sequence>(`${TBS}.issuer`)),
    subject: nameOf(block<asn1js.Sequence>(`${TBS}.subject`)),
    notBefore: timeOf(block(`${TBS}.notBefore`)),
    notAfter: timeOf(block(`${TBS}.notAfter`)),
    subjectPublicKeyInfo: block<asn1js.Sequence>(`${TBS}.subjectPublicKeyInfo`).valueBeforeDecodeView,
    extensions: (block<asn1js.Sequence[] | undefined>(EXTENSIONS) ?? []).map(extensionOf),
    signatureOid: (algorithm[0] as asn1js.ObjectIdentifier).valueBlock.toString(),
    strict: {
      signatureAlgorithmsMatch: Buffer.from(block<asn1js.Sequence>(`${TBS}.signature`).valueBeforeDecodeView).equals(Buffer.from(block<asn1js.Sequence>('signatureAlgorithm').valueBeforeDecodeView)),
      canonicalTimes: canonicalTime(block(`${TBS}.notBefore`)) && canonicalTime(block(`${TBS}.notAfter`)),
    },
  }
  const params = algorithm[1]
  if (params !== undefined) tree.signatureParams = params.valueBeforeDecodeView
  // A BIT STRING signature with unused bits is no signature a CA produces.
  if (signatureValue.valueBlock.unusedBits === 0 && !signatureValue.idBlock.isConstructed) tree.signature = signatureValue.valueBlock.valueHexView
  return tree
}

/** One AttributeTypeAndValue of a Name whose value is a plain string (see plainName). */
export interface PlainAttribute { oid: string, value: string }

/** UTF8String, PrintableString, IA5String (universal tags 12, 19, 22): types whose printable-ASCII content reads the same in every decoder. */
const PLAIN_STRING_TAGS = new Set([12, 19, 22])

/**
 * A Name (RFC 5280 §4.1.2.4), as asn1js read it, as its RDNs, each a list of attributes, when
 * every value is one of the plain string types holding printable ASCII; undefined otherwise
 * (PKI.js / OpenSSL judge that name).
 */
export function plainName (name: DerNode): PlainAttribute[][] | undefined {
  if (!isTag(name, UNIVERSAL, 16, true)) return undefined
  const out: PlainAttribute[][] = []
  for (const rdn of name.children ?? []) {
    if (!isTag(rdn, UNIVERSAL, 17, true) || rdn.children === undefined || rdn.children.length === 0) return undefined
    const attrs: PlainAttribute[] = []
    for (const atv of rdn.children) {
      const parts = isTag(atv, UNIVERSAL, 16, true) ? atv.children ?? [] : []
      const [type, value] = parts
      if (parts.length !== 2 || !isTag(type, UNIVERSAL, 6, false) || value === undefined) return undefined
      if (value.tagClass !== UNIVERSAL || value.constructed || !value.definite || !PLAIN_STRING_TAGS.has(value.tagNumber)) return undefined
      const raw = value.content
      if (raw.some((c) => c < 0x20 || c > 0x7e)) return undefined
      const oid = type.oid ?? oidString(type.content)
      if (oid === undefined) return undefined
      attrs.push({ oid, value: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1') })
    }
    out.push(attrs)
  }
  return out
}

/** The content octets of a definite-length block (its encoding minus identifier and length octets). */
function contentOf (block: asn1js.AsnType): Uint8Array {
  return block.valueBeforeDecodeView.subarray(block.idBlock.blockLength + block.lenBlock.blockLength)
}

/** Is `node` the primitive (or constructed) definite-length encoding of tag `tagNumber` in `tagClass` (1 universal, 3 context-specific)? */
export function isTag<T extends DerNode> (node: T | undefined, tagClass: number, tagNumber: number, constructed: boolean): node is T {
  return node !== undefined && node.tagClass === tagClass && node.tagNumber === tagNumber && node.constructed === constructed && node.definite
}

/**
 * The dotted form of an OBJECT IDENTIFIER's content (node-forge's derToOid); undefined where
 * OpenSSL or asn1js would refuse it — empty, unterminated, or a subidentifier padded with a
 * leading 0x80 (X.690 §8.19.2) — and where a subidentifier is too large for node-forge to print
 * exactly (then asn1js reads the certificate).
 */
export function oidString (content: Uint8Array, contentLatin1?: string): string | undefined {
  if (content.byteLength === 0 || ((content[content.byteLength - 1] as number) & 0x80) !== 0) return undefined
  let run = 0
  for (let i = 0; i < content.byteLength; i++) {
    const b = content[i] as number
    if (b === 0x80 && run === 0) return undefined
    // More than 7 octets (49 bits) would pass 2^53, where node-forge's arithmetic (not asn1js's BigInt) loses digits.
    run = (b & 0x80) !== 0 ? run + 1 : 0
    if (run >= 7) return undefined
  }
  const key = contentLatin1 ?? latin1(content)
  let dotted = OIDS.get(key)
  if (dotted === undefined) {
    dotted = forge.asn1.derToOid(key)
    // The same few dozen OIDs fill every certificate; the bound keeps odd ones from growing it.
    if (OIDS.size < 4096) OIDS.set(key, dotted)
  }
  return dotted
}
const OIDS = new Map<string, string>()

/** A byte view as a latin1 string (node-forge reads DER from such strings). */
export function latin1 (v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1')
}

/** asn1js's number of the universal tag class. */
export const UNIVERSAL = 1
