/**
 * Envoy's `x-forwarded-client-cert` header (Envoy docs, "HTTP header manipulation").
 *
 *   header  = element *( "," element )
 *   element = pair *( ";" pair )
 *   pair    = key "=" value
 *   value   = token | quoted-string        ; quoted when it contains , ; or =
 *   quoted-string = DQUOTE *( qdtext | "\" CHAR ) DQUOTE
 *
 * Keys are case-insensitive: By, Hash, Cert, Chain, Subject, URI, DNS. Cert and Chain are
 * URL-encoded PEM. The parser is a single left-to-right scan, so a comma, semicolon or
 * equals sign inside a quoted value can never start a new pair or element.
 *
 * The header is only meaningful when a proxy Portcullis trusts set it: see trustedProxy().
 *
 * The grammar alone is not enough: Envoy writes `URI=` and `DNS=` values unquoted and
 * unescaped (conn_manager_utility.cc, `absl::StrCat("URI=", uri)`), so a client certificate
 * whose URI SAN is `https://x/a,Cert="<someone's public SVID>"` turns Envoy's one element into
 * two, the second written by the client. assertUnambiguous() refuses every header in which an
 * element's certificate carries such a SAN, or whose URI/DNS values disagree with its certificate.
 */
import { BlockList, isIP } from 'node:net'
import * as pkijs from 'pkijs'
import { IdentityError } from '../errors.js'
import { readCertificateFast } from './certificate-fast.js'
import { isTag, readCertificate } from './certificate-tree.js'
import { parseCertificateDer } from './pem.js'
import { pemCertificates } from './pem-blocks.js'

export interface XfccElement {
  by: string[]
  hash?: string
  /** URL-decoded PEM of the client certificate. */
  cert?: string
  /** URL-decoded PEM of the client's chain (leaf first). */
  chain?: string
  subject?: string
  uri: string[]
  dns: string[]
}

/** Upper bound on the header (Envoy's own default header limit is 60 KiB). */
export const MAX_XFCC_BYTES = 64 * 1024
/** Elements one header may hold (one per proxy hop with APPEND_FORWARD). */
export const MAX_XFCC_ELEMENTS = 32

function malformed (reason: string): IdentityError {
  return new IdentityError('PORTCULLIS_IDENTITY_MALFORMED', `x-forwarded-client-cert: ${reason}`, { header: 'x-forwarded-client-cert', reason })
}

const TOKEN_STOP = new Set([',', ';', '=', '"'])

/** Parses the raw header into elements of key/value pairs; throws PORTCULLIS_IDENTITY_MALFORMED. */
export function parseXfccPairs (header: string): Array<Array<[string, string]>> {
  if (Buffer.byteLength(header) > MAX_XFCC_BYTES) throw malformed(`longer than ${MAX_XFCC_BYTES} bytes`)
  const elements: Array<Array<[string, string]>> = []
  let pairs: Array<[string, string]> = []
  let i = 0
  const n = header.length
  const skipSpace = (): void => { while (i < n && (header[i] === ' ' || header[i] === '\t')) i++ }
  // Every pass consumes at least one character (a key is never empty), so n + 1 passes bound the scan.
  for (let pass = 0; ; pass++) {
    if (pass > n) throw malformed('parser did not advance')
    skipSpace()
    // key
    const keyStart = i
    while (i < n && !TOKEN_STOP.has(header[i] as string) && header[i] !== ' ') i++
    const key = header.slice(keyStart, i)
    if (key === '') throw malformed(`empty key at offset ${keyStart}`)
    skipSpace()
    if (header[i] !== '=') throw malformed(`expected "=" after key ${JSON.stringify(key)} at offset ${i}`)
    i++
    skipSpace()
    // value
    let value = ''
    if (header[i] === '"') {
      i++
      let closed = false
      while (i < n) {
        const ch = header[i] as string
        if (ch === '\\') {
          if (i + 1 >= n) break
          value += header[i + 1]
          i += 2
        } else if (ch === '"') {
          closed = true
          i++
          break
        } else {
          value += ch
          i++
        }
      }
      if (!closed) throw malformed('unterminated quoted value')
    } else {
      const start = i
      while (i < n && header[i] !== ',' && header[i] !== ';') {
        if (header[i] === '"' || header[i] === '=') throw malformed(`unquoted value contains ${JSON.stringify(header[i])} at offset ${i}`)
        i++
      }
      value = header.slice(start, i).trimEnd()
    }
    pairs.push([key.toLowerCase(), value])
    skipSpace()
    if (i >= n) {
      elements.push(pairs)
      break
    }
    const sep = header[i]
    i++
    if (sep === ',') {
      elements.push(pairs)
      pairs = []
      if (elements.length >= MAX_XFCC_ELEMENTS) throw malformed(`more than ${MAX_XFCC_ELEMENTS} elements`)
    } else if (sep !== ';') {
      throw malformed(`expected "," or ";" at offset ${i - 1}`)
    }
  }
  return elements
}

function urlDecode (v: string, key: string): string {
  try {
    return decodeURIComponent(v)
  } catch {
    throw malformed(`${key} is not valid URL encoding`)
  }
}

/** Parses the header into typed elements (Cert / Chain URL-decoded). */
export function parseXfcc (header: string): XfccElement[] {
  return parseXfccPairs(header).map((pairs) => {
    const el: XfccElement = { by: [], uri: [], dns: [] }
    for (const [key, value] of pairs) {
      switch (key) {
        case 'by': el.by.push(value); break
        case 'uri': el.uri.push(value); break
        case 'dns': el.dns.push(value); break
        case 'hash':
        case 'cert':
        case 'chain':
        case 'subject':
          if (el[key] !== undefined) throw malformed(`duplicate ${key} in one element`)
          el[key] = key === 'cert' || key === 'chain' ? urlDecode(value, key) : value
          break
        default:
          // Unknown keys carry nothing we verify; Envoy may add keys in future versions.
          break
      }
    }
    return el
  })
}

const SAN_OID = '2.5.29.17'
const CONTEXT = 3

/** The URI and DNS names of a certificate's subjectAltName, in order. */
interface SanNames { uris: string[], dns: string[] }

/**
 * The URI and DNS SANs of one DER certificate: from the fast reader's tree (or asn1js's) when
 * the extension is in the plain shape, else from PKI.js's own reading; a certificate none of
 * them reads is MALFORMED (it could not be verified either).
 */
function sanNames (der: Buffer): SanNames {
  const out: SanNames = { uris: [], dns: [] }
  const tree = readCertificateFast(der) ?? readCertificate(der)
  const ext = tree?.extensions.find((e) => e.extnID === SAN_OID)
  if (tree !== undefined && ext === undefined) return out
  const v = ext?.value
  if (v !== undefined && isTag(v, 1, 16, true)) {
    // GeneralName [2] dNSName, [6] uniformResourceIdentifier: IA5String, read byte for byte
    for (const n of v.children ?? []) {
      const tag = n.tagClass === CONTEXT && !n.constructed && n.definite ? n.tagNumber : -1
      if (tag === 6) out.uris.push(Buffer.from(n.content).toString('latin1'))
      else if (tag === 2) out.dns.push(Buffer.from(n.content).toString('latin1'))
    }
    return out
  }
  const cert = parseCertificateDer(der, 'x-forwarded-client-cert Cert')
  const san = cert.extensions?.find((e) => e.extnID === SAN_OID)?.parsedValue as unknown
  if (san === undefined) return out
  if (!(san instanceof pkijs.AltName)) throw malformed('a certificate\'s subjectAltName cannot be read')
  for (const n of san.altNames) {
    if (n.type === 6 && typeof n.value === 'string') out.uris.push(n.value)
    else if (n.type === 2 && typeof n.value === 'string') out.dns.push(n.value)
  }
  return out
}

/** Characters that end or split an unquoted XFCC value: a SAN holding one makes Envoy's header ambiguous. */
const XFCC_SEPARATORS = /[,;"=]/

function sameList (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/**
 * Whether `values` are the `URI=` pairs Envoy writes for a certificate with these URI SANs
 * (conn_manager_utility.cc): all of them in order (current Envoy), only the first (older releases
 * wrote `sans[0]`), or one empty `URI=` when the certificate has none ("the URI key still
 * exists even if the URI is empty").
 */
function urisAsEnvoyWrites (values: readonly string[], sans: readonly string[]): boolean {
  if (sans.length === 0) return values.length === 1 && values[0] === ''
  return sameList(values, sans) || (values.length === 1 && values[0] === sans[0])
}

/**
 * Refuses (PORTCULLIS_IDENTITY_MALFORMED) a header that may not say what its proxy wrote: an
 * element without a certificate (Cert, or else Chain's first), which nothing can be checked
 * against, and for every element, not only the one used:
 *
 *   - a URI or DNS SAN containing `,` `;` `"` or `=`: Envoy writes it unquoted, so it may have
 *     split or extended the element (the client chose the SAN; the CA that issued it may be one
 *     Envoy accepts but Portcullis does not trust);
 *   - `URI=` / `DNS=` values that are not the certificate's URI / DNS SANs as Envoy writes them
 *     (every DNS SAN in order; every URI SAN in order, or only the first in older Envoy, or one
 *     empty `URI=` for a certificate without one), so a difference means the pairs were not all
 *     written by the proxy (e.g. a `;Cert=` appended through a SAN of a certificate the
 *     element does not carry).
 *
 * Cheap: one DER read per certificate, no signature checked.
 */
export function assertUnambiguous (elements: readonly XfccElement[]): void {
  for (const el of elements) {
    const ders: Buffer[] = []
    if (el.cert !== undefined) ders.push(...pemCertificates(el.cert, 'x-forwarded-client-cert Cert'))
    else if (el.chain !== undefined) ders.push(pemCertificates(el.chain, 'x-forwarded-client-cert Chain')[0] as Buffer)
    // An element without a certificate cannot be checked: its URI= may be a client's SAN that
    // split an element and appended one of its own (with someone's public Cert) after it.
    if (ders.length === 0) throw malformed('an element carries no Cert (or Chain): every element must, so that none can be a client\'s SAN read as pairs (configure Envoy set_current_client_cert_details cert: true on every hop)')
    let leafNames: SanNames | undefined
    for (const der of ders) {
      const names = sanNames(der)
      leafNames ??= names
      for (const name of [...names.uris, ...names.dns]) {
        if (XFCC_SEPARATORS.test(name)) throw malformed(`a certificate carries the subjectAltName ${JSON.stringify(name)}, which Envoy writes unquoted: the header is ambiguous`)
      }
    }
    const leaf = leafNames as SanNames
    if (el.uri.length > 0 && !urisAsEnvoyWrites(el.uri, leaf.uris)) throw malformed('URI values do not match the element\'s certificate')
    if (el.dns.length > 0 && !sameList(el.dns, leaf.dns)) throw malformed('DNS values do not match the element\'s certificate')
  }
}

/** A matcher for the configured trusted proxies (addresses and CIDRs, IPv4 and IPv6). */
export function trustedProxyMatcher (entries: string[]): (address: string | undefined) => boolean {
  const list = new BlockList()
  for (const e of entries) {
    const [addr, prefix] = e.split('/') as [string, string | undefined]
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
    if (prefix === undefined) list.addAddress(addr, type)
    else list.addSubnet(addr, Number(prefix), type)
  }
  return (address) => {
    if (address === undefined || address === '') return false
    let a = address
    // An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a)
    if (mapped !== null) a = mapped[1] as string
    const family = isIP(a)
    if (family === 0) return false
    return list.check(a, family === 6 ? 'ipv6' : 'ipv4')
  }
}
