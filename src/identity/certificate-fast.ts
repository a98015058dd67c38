/**
 * The fast leaf reader (certificate-tree.ts explains the two readers): node-forge's strict DER
 * parse, accepted only where it provably reads what PKI.js's parse (asn1js against PKI.js's
 * Certificate schema) reads — canonical DER that re-encodes to the same bytes, exactly X.509 v3,
 * plain names, canonical UTCTime, none of the encodings asn1js refuses, within asn1js's node
 * limit. Anything else is undefined here and read by readCertificate.
 */
import forge from 'node-forge'
import { isTag, latin1, oidString, plainName, UNIVERSAL, type CertificateTree, type DerNode, type ExtensionBlock, type NameBlock } from './certificate-tree.js'

const FORGE_OPTIONS = { strict: true, parseAllBytes: true, decodeBitStrings: false }
const EMPTY = new Uint8Array(0)
/** asn1js's fromBER node limit (DEFAULT_MAX_NODES) counts the elements of its embedded parses too; stay well below it. */
const NODE_BUDGET = 8000
/** Nesting depth the fast reader follows, embedded OCTET/BIT STRING parses included. */
const MAX_DEPTH = 32
/** Octets of embedded content the fast reader re-parses per certificate, as a multiple of its size. */
const EMBEDDED_BYTES_FACTOR = 4
interface Budget { nodes: number, bytes: number }
/** Universal string types the fast reader accepts anywhere (plainName decides what names hold). */
const STRING_TAGS = new Set([12, 19, 22])

/** Length of an element's identifier and length octets in canonical DER (low tag number, minimal definite length). */
function headerLength (contentLength: number): number {
  return contentLength < 0x80 ? 2 : contentLength < 0x100 ? 3 : contentLength < 0x10000 ? 4 : 5
}

/** A DerNode over the octets node-forge read, with the position of each element in them. */
interface ForgeNode extends DerNode {
  /** The octets the element was read from, and where its encoding begins and ends in them (derOf). */
  bytes: Uint8Array
  begin: number
  end: number
  children: ForgeNode[] | undefined
  /** A primitive OCTET STRING's content read as one element (what asn1js's embedded parse finds), when it is one. */
  inner?: ForgeNode
}

/** A node-forge element with its content length noted (contentLength). */
type Sized = forge.asn1.Asn1 & { contentLength?: number }

/**
 * The content length of a node-forge element (parseCanonical proved the octets are canonical
 * DER, so these lengths place each element), noted on the element: it is our own parse result,
 * read once.
 */
function contentLength (a: Sized): number {
  let n = a.contentLength
  if (n === undefined) {
    if (Array.isArray(a.value)) {
      n = 0
      for (const c of a.value) {
        const l = contentLength(c)
        n += headerLength(l) + l
      }
    } else {
      n = (a.value as string).length
    }
    a.contentLength = n
  }
  return n
}

/**
 * The forge element at `offset` of `bytes` as a DerNode; undefined where asn1js might read it
 * differently or refuse it.
 */
function nodeOfForge (a: forge.asn1.Asn1, bytes: Uint8Array, offset: number, budget: Budget, depth: number): ForgeNode | undefined {
  if (--budget.nodes < 0 || depth > MAX_DEPTH) return undefined
  const tagClass = (a.tagClass >> 6) + 1
  const tagNumber = a.type as number
  // 31: a high tag number, which node-forge does not read; universal 0 and 15 are refused by asn1js.
  if (tagNumber === 31 || (tagClass === UNIVERSAL && (tagNumber === 0 || tagNumber === 15))) return undefined
  // 30: node-forge decodes every primitive element with tag number 30, of any class, as a
  // BMPString (two octets a character), so its value no longer measures its content
  if (tagNumber === 30 && !Array.isArray(a.value)) return undefined
  const length = contentLength(a)
  const start = offset + headerLength(length)
  const end = start + length
  if (Array.isArray(a.value)) {
    if (!a.constructed || (tagClass === UNIVERSAL && tagNumber !== 16 && tagNumber !== 17)) return undefined
    const children: ForgeNode[] = []
    let at = start
    for (const c of a.value) {
      const n = nodeOfForge(c, bytes, at, budget, depth + 1)
      if (n === undefined) return undefined
      children.push(n)
      at = n.end
    }
    // (A constructed element's content is never read: its children are.)
    return { tagClass, tagNumber, constructed: true, definite: true, content: EMPTY, bytes, begin: offset, end, children }
  }
  if (a.constructed || typeof a.value !== 'string') return undefined
  const content = bytes.subarray(start, end)
  const node: ForgeNode = { tagClass, tagNumber, constructed: false, definite: true, content, bytes, begin: offset, end, children: undefined }
  if (tagClass === UNIVERSAL) {
    switch (tagNumber) {
      case 1: if (length !== 1) return undefined; break // BOOLEAN
      case 2: if (length === 0) return undefined; break // INTEGER
      case 3: // BIT STRING: asn1js refuses more than 7 unused bits, and parses the rest when none are unused
        if (length === 0 || (content[0] as number) > 7) return undefined
        // (Nothing reads a BIT STRING's embedded tree: only its cost to asn1js's node budget counts.)
        if (content[0] === 0 && !embedded(content.subarray(1), budget, depth, false)) return undefined
        break
      case 4: { // OCTET STRING: asn1js parses its content too
        const inner = embedded(content, budget, depth)
        if (inner === false) return undefined
        if (inner !== true) node.inner = inner
        break
      }
      case 5: if (length !== 0) return undefined; break // NULL
      case 6: {
        const oid = oidString(content, a.value)
        if (oid === undefined) return undefined
        node.oid = oid
        break
      }
      case 23: if (!/^\d{12}Z$/.test(a.value)) return undefined; break // UTCTime
      default: if (!STRING_TAGS.has(tagNumber)) return undefined
    }
  }
  return node
}

/**
 * asn1js parses the content of every primitive OCTET STRING (and BIT STRING without unused
 * bits) as BER, counting those elements against its node limit. Charge the budget with what that
 * parse can create: the elements node-forge finds when the content is canonical DER of the kind
 * nodeOfForge accepts (returned: asn1js finds the same), else a bound that holds whatever asn1js
 * makes of it (each element takes at least two octets at each nesting level: (n/2)²; true).
 * False when the budget is spent.
 */
function embedded (content: Uint8Array, budget: Budget, depth: number, tree = true): ForgeNode | boolean {
  if (content.byteLength === 0) return true
  const bound = Math.ceil((content.byteLength / 2) ** 2)
  // When the tree is not wanted and the bound fits, the bound is charged without parsing.
  if (!tree && bound <= budget.nodes / 4) {
    budget.nodes -= bound
    return true
  }
  // An embedded parse nests inside its element (the depth limit holds across OCTET STRINGs) and
  // re-reads its content: the octets re-parsed per certificate are bounded, so nested strings
  // cost at most a few times the certificate's size. Past either bound the leaf is left to asn1js.
  budget.bytes -= content.byteLength
  if (depth >= MAX_DEPTH || budget.bytes < 0) return false
  const parsed = parseCanonical(content)
  if (parsed !== undefined) {
    const before = budget.nodes
    const node = nodeOfForge(parsed, content, 0, budget, depth + 1)
    if (node !== undefined) return budget.nodes >= 0 ? node : false
    budget.nodes = before
  }
  budget.nodes -= bound
  return budget.nodes >= 0
}

/** node-forge's strict parse of exactly one element that re-encodes to the same octets (canonical DER); undefined otherwise. */
function parseCanonical (der: Uint8Array): forge.asn1.Asn1 | undefined {
  const bytes = latin1(der)
  try {
    const a = forge.asn1.fromDer(bytes, FORGE_OPTIONS as never)
    return forge.asn1.toDer(a).getBytes() === bytes ? a : undefined
  } catch {
    return undefined
  }
}

function derOf (n: ForgeNode): Uint8Array {
  return n.bytes.subarray(n.begin, n.end)
}

/** UTCTime YYMMDDHHMMSSZ as asn1js reads it (years 50–99 are 19xx), when every field is in range; else undefined. */
function utcTime (n: ForgeNode | undefined): number | undefined {
  if (!isTag(n, UNIVERSAL, 23, false)) return undefined
  const d = latin1(n.content)
  const [yy, mo, dd, hh, mi, ss] = [0, 2, 4, 6, 8, 10].map((i) => Number(d.slice(i, i + 2))) as [number, number, number, number, number, number]
  if (mo < 1 || mo > 12 || dd < 1 || dd > 31 || hh > 23 || mi > 59 || ss > 59) return undefined
  const t = Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, mo - 1, dd, hh, mi, ss)
  // A day past the month's end would roll over in Date.UTC (and in asn1js): not canonical.
  return new Date(t).getUTCDate() === dd ? t : undefined
}

/** SEQUENCE { OID, NULL or OID OPTIONAL }: an AlgorithmIdentifier whose parameters the fast path knows. */
function algorithmOf (n: ForgeNode | undefined): { oid: string, params?: ForgeNode } | undefined {
  const [oid, params, extra] = isTag(n, UNIVERSAL, 16, true) ? n.children ?? [] : []
  if (!isTag(oid, UNIVERSAL, 6, false) || extra !== undefined) return undefined
  if (params !== undefined && !isTag(params, UNIVERSAL, 5, false) && !isTag(params, UNIVERSAL, 6, false)) return undefined
  const dotted = oid.oid ?? oidString(oid.content)
  if (dotted === undefined) return undefined
  return params === undefined ? { oid: dotted } : { oid: dotted, params }
}

/** A non-empty Name whose every value is a plain string (plainName). */
function plainNameBlock (n: ForgeNode | undefined): NameBlock | undefined {
  const plain = n === undefined || n.children === undefined || n.children.length === 0 ? undefined : plainName(n)
  if (n === undefined || plain === undefined) return undefined
  return { der: derOf(n), node: n, plain }
}

/**
 * Reads one DER certificate with node-forge when it is in the shape described at the top of this
 * file (where PKI.js reads it the same way, field for field); undefined otherwise: then
 * readCertificate (asn1js, PKI.js's own parse) decides, never this function.
 */
export function readCertificateFast (der: Uint8Array): CertificateTree | undefined {
  // 64 KiB: no SPIFFE leaf comes near it, and asn1js's length and node limits stay far away.
  if (der.byteLength > 65536) return undefined
  // Anything this reader does not expect (a thrown error included) leaves the leaf to asn1js.
  try {
    return readFast(der)
  } catch {
    return undefined
  }
}

function readFast (der: Uint8Array): CertificateTree | undefined {
  const cert = parseCanonical(der)
  if (cert === undefined) return undefined
  const root = nodeOfForge(cert, new Uint8Array(der.buffer, der.byteOffset, der.byteLength), 0, { nodes: NODE_BUDGET, bytes: EMBEDDED_BYTES_FACTOR * der.byteLength }, 0)
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
  const [tbs, algorithm, signatureValue, extra] = isTag(root, UNIVERSAL, 16, true) ? root.children ?? [] : []
  if (!isTag(tbs, UNIVERSAL, 16, true) || extra !== undefined || !isTag(signatureValue, UNIVERSAL, 3, false)) return undefined
  const signatureAlgorithm = algorithmOf(algorithm)
  if (signatureAlgorithm === undefined) return undefined
  const t = tbs.children ?? []
  // TBSCertificate (v3 only: the X509-SVID leaf carries extensions): version [0] EXPLICIT INTEGER 2,
  // serial, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions [3] EXPLICIT.
  const [version, serial, signature, issuer, validity, subject, spki, exts, more] = t
  const v = isTag(version, 3, 0, true) ? version.children ?? [] : []
  if (v.length !== 1 || !isTag(v[0], UNIVERSAL, 2, false) || v[0].content.byteLength !== 1 || v[0].content[0] !== 2) return undefined
  if (!isTag(serial, UNIVERSAL, 2, false) || algorithmOf(signature) === undefined || more !== undefined) return undefined
  const [notBefore, notAfter, validityExtra] = isTag(validity, UNIVERSAL, 16, true) ? validity.children ?? [] : []
  const nb = utcTime(notBefore)
  const na = utcTime(notAfter)
  if (nb === undefined || na === undefined || validityExtra !== undefined) return undefined
  const [spkiAlgorithm, spkiKey, spkiExtra] = isTag(spki, UNIVERSAL, 16, true) ? spki.children ?? [] : []
  if (spki === undefined || algorithmOf(spkiAlgorithm) === undefined || !isTag(spkiKey, UNIVERSAL, 3, false) || spkiExtra !== undefined) return undefined
  // [3] EXPLICIT Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
  const e = isTag(exts, 3, 3, true) && exts.children?.length === 1 ? exts.children[0] : undefined
  const list = isTag(e, UNIVERSAL, 16, true) ? e.children ?? [] : []
  if (list.length === 0) return undefined
  const extensions: ExtensionBlock[] = []
  for (const x of list) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const parts = isTag(x, UNIVERSAL, 16, true) ? x.children ?? [] : []
    const id = parts[0]
    const flag = parts.length === 3 ? parts[1] : undefined
    const value = parts[parts.length - 1]
    if ((parts.length !== 2 && parts.length !== 3) || !isTag(id, UNIVERSAL, 6, false) || !isTag(value, UNIVERSAL, 4, false)) return undefined
    if (flag !== undefined && !isTag(flag, UNIVERSAL, 1, false)) return undefined
    const extnID = id.oid ?? oidString(id.content)
    // The value must be one element node-forge reads as asn1js's embedded parse does (else: asn1js decides).
    const innerNode = value.inner
    if (extnID === undefined || innerNode === undefined) return undefined
    // asn1js Boolean: any non-zero octet is true.
    extensions.push({ extnID, critical: flag !== undefined && flag.content[0] !== 0, value: innerNode })
  }
  const issuerName = plainNameBlock(issuer)
  const subjectName = plainNameBlock(subject)
  if (issuerName === undefined || subjectName === undefined) return undefined
  const tree: CertificateTree = {
    tbs: derOf(tbs),
    serial: serial.content,
    issuer: issuerName,
    subject: subjectName,
    notBefore: nb,
    notAfter: na,
    subjectPublicKeyInfo: derOf(spki),
    extensions,
    signatureOid: signatureAlgorithm.oid,
    // utcTime() reads only the canonical form
    strict: { signatureAlgorithmsMatch: Buffer.from(derOf(signature as ForgeNode)).equals(Buffer.from(derOf(algorithm as ForgeNode))), canonicalTimes: true },
  }
  const params = signatureAlgorithm.params
  if (params !== undefined) tree.signatureParams = derOf(params)
  if (signatureValue.content[0] === 0) tree.signature = signatureValue.content.subarray(1)
  return tree
}
