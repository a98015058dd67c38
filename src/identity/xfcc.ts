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
 */
import { BlockList, isIP } from 'node:net'
import { IdentityError } from '../errors.js'

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
const MAX_ELEMENTS = 32

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
      if (elements.length >= MAX_ELEMENTS) throw malformed(`more than ${MAX_ELEMENTS} elements`)
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
