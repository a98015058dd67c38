/**
 * Certificate names as the X.509-SVID fast path (x509-svid.ts) compares and prints them without
 * PKI.js or OpenSSL for the common case: equality as PKI.js's RelativeDistinguishedNames.isEqual
 * decides it, and the subject/issuer/serial text node's X509Certificate prints. Anything outside
 * the plain case is left to PKI.js (parsed on demand) or to OpenSSL (undefined here).
 */
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { plainName, type NameBlock, type PlainAttribute } from './certificate-tree.js'

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0
}

/** A Name of a certificate: its DER, its plain reading (certificate-tree.ts) and PKI.js's, parsed on demand. */
export interface NameRef {
  der: Uint8Array
  plain: PlainAttribute[][] | undefined
  parsed: () => pkijs.RelativeDistinguishedNames
}

export function nameRef (block: NameBlock, parsed?: () => pkijs.RelativeDistinguishedNames): NameRef {
  let name: pkijs.RelativeDistinguishedNames | undefined
  return {
    der: block.der,
    plain: block.plain ?? plainName(block.node),
    // The block matched PKI.js's Name schema inside its Certificate schema (or, read by node-forge,
    // is a plain name PKI.js reads the same way); PKI.js decides the rest.
    parsed: parsed ?? (() => (name ??= new pkijs.RelativeDistinguishedNames({ schema: block.asn1 ?? asn1js.fromBER(new Uint8Array(block.der)).result }))),
  }
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
export function namesEqual (a: NameRef, b: NameRef): boolean {
  if (bytesEqual(a.der, b.der)) return true
  const pa = a.plain?.flat()
  const pb = b.plain?.flat()
  if (pa === undefined || pb === undefined) return a.parsed().isEqual(b.parsed())
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
 * X509Certificate.subject / .issuer text for a plain name, without asking OpenSSL to print it
 * (each getter costs about as much as a third of the OpenSSL parse): Node prints
 * X509_NAME_print_ex(ASN1_STRFLGS_ESC_2253 | ESC_CTRL | UTF8_CONVERT | XN_FLAG_SEP_MULTILINE |
 * XN_FLAG_FN_SN), i.e. "SN=value" per attribute, one RDN per line. Undefined (OpenSSL prints it)
 * for multi-valued RDNs, attributes without a short name here, and values RFC 2253 escaping
 * would change.
 */
export function printName (name: NameRef): string | undefined {
  if (name.plain === undefined) return undefined
  const lines: string[] = []
  for (const rdn of name.plain) {
    const attr = rdn[0] as PlainAttribute
    const sn = SHORT_NAMES[attr.oid]
    if (rdn.length !== 1 || sn === undefined || /[,+"\\<>;]|^[ #]| $/.test(attr.value)) return undefined
    lines.push(`${sn}=${attr.value}`)
  }
  return lines.join(', ')
}

/** BN_bn2hex of a non-negative INTEGER (what X509Certificate.serialNumber prints); undefined for a negative one. */
export function serialHex (content: Uint8Array): string | undefined {
  if (content.byteLength === 0 || ((content[0] as number) & 0x80) !== 0) return undefined
  let i = 0
  while (i < content.byteLength && content[i] === 0) i++
  return i === content.byteLength ? '0' : Buffer.from(content.subarray(i)).toString('hex').toUpperCase()
}
