/**
 * A certificate's fields as asn1js reads them, without building PKI.js's Certificate object.
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
import * as pkijs from 'pkijs'

/** One Extension (RFC 5280 §4.1) as PKI.js's Extension.fromSchema reads it from the matched blocks. */
export interface ExtensionBlock {
  extnID: string
  critical: boolean
  extnValue: asn1js.OctetString
}

export interface CertificateTree {
  /** tbsCertificate, tag and length included: the bytes the issuer signed. */
  tbs: Uint8Array
  /** serialNumber INTEGER content. */
  serial: Uint8Array
  issuer: asn1js.Sequence
  subject: asn1js.Sequence
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

/** Extension.fromSchema: the schema (matched within the Certificate schema) is SEQUENCE { OID, BOOLEAN OPTIONAL, OCTET STRING }. */
function extensionOf (e: asn1js.Sequence): ExtensionBlock {
  const parts = e.valueBlock.value
  const critical = parts.length === 3 ? (parts[1] as asn1js.Boolean).valueBlock.value : false
  return { extnID: (parts[0] as asn1js.ObjectIdentifier).valueBlock.toString(), critical, extnValue: parts[parts.length - 1] as asn1js.OctetString }
}

function timeOf (block: asn1js.UTCTime | asn1js.GeneralizedTime): number {
  // What PKI.js's Time object holds (Time.fromSchema: toDate()).
  return block.toDate().getTime()
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
    issuer: block<asn1js.Sequence>(`${TBS}.issuer`),
    subject: block<asn1js.Sequence>(`${TBS}.subject`),
    notBefore: timeOf(block(`${TBS}.notBefore`)),
    notAfter: timeOf(block(`${TBS}.notAfter`)),
    subjectPublicKeyInfo: block<asn1js.Sequence>(`${TBS}.subjectPublicKeyInfo`).valueBeforeDecodeView,
    extensions: (block<asn1js.Sequence[] | undefined>(EXTENSIONS) ?? []).map(extensionOf),
    signatureOid: (algorithm[0] as asn1js.ObjectIdentifier).valueBlock.toString(),
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
export function plainName (name: asn1js.AsnType): PlainAttribute[][] | undefined {
  if (!(name instanceof asn1js.Sequence)) return undefined
  const out: PlainAttribute[][] = []
  for (const rdn of name.valueBlock.value) {
    if (!(rdn instanceof asn1js.Set) || rdn.valueBlock.value.length === 0) return undefined
    const attrs: PlainAttribute[] = []
    for (const atv of rdn.valueBlock.value) {
      const parts = atv instanceof asn1js.Sequence ? atv.valueBlock.value : []
      const [type, value] = parts
      if (parts.length !== 2 || !(type instanceof asn1js.ObjectIdentifier) || value === undefined) return undefined
      if (value.idBlock.tagClass !== 1 || value.idBlock.isConstructed || !PLAIN_STRING_TAGS.has(value.idBlock.tagNumber)) return undefined
      // The content octets: the encoding minus its identifier and length octets.
      const raw = contentOf(value)
      if (raw.some((c) => c < 0x20 || c > 0x7e)) return undefined
      attrs.push({ oid: type.valueBlock.toString(), value: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1') })
    }
    out.push(attrs)
  }
  return out
}

/** The content octets of a definite-length block (its encoding minus identifier and length octets). */
export function contentOf (block: asn1js.AsnType): Uint8Array {
  return block.valueBeforeDecodeView.subarray(block.idBlock.blockLength + block.lenBlock.blockLength)
}

/** Is `block` the primitive (or constructed) encoding of tag `tagNumber` in `tagClass` (1 universal, 3 context-specific)? */
export function isTag (block: asn1js.AsnType | undefined, tagClass: number, tagNumber: number, constructed: boolean): block is asn1js.AsnType {
  return block !== undefined && block.idBlock.tagClass === tagClass && block.idBlock.tagNumber === tagNumber &&
    block.idBlock.isConstructed === constructed && !block.lenBlock.isIndefiniteForm
}

/**
 * An extension's value as asn1js parsed it inside its OCTET STRING (fromBER's embedded parse,
 * kept only when the value is exactly one complete structure); undefined otherwise.
 */
export function extensionValue (e: ExtensionBlock): asn1js.AsnType | undefined {
  if (e.extnValue.idBlock.isConstructed) return undefined
  const inner = e.extnValue.valueBlock.value
  return inner.length === 1 ? inner[0] : undefined
}
