/** uri.parse and uri.is_valid (OPA v1/topdown/uri.go) over Go's net/url.Parse rules. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { str } from './args.js'

class UrlError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

type Mode = 'path' | 'host' | 'fragment'

function shouldEscape (c: string, mode: Mode): boolean {
  if (/[A-Za-z0-9]/.test(c)) return false
  if (mode === 'host' && '!$&\'()*+,;=:[]<>"'.includes(c)) return false
  if ('-_.~'.includes(c)) return false
  if ('$&+,/:;=?@'.includes(c)) {
    if (mode === 'path') return c === '?'
    if (mode === 'fragment') return false
  }
  if (mode === 'fragment' && '!()*'.includes(c)) return false
  return true
}

/** Go's net/url unescape: `%XX` escapes, checked per mode; in query components `+` is a space. */
function unescape (s: string, mode: Mode | 'query'): string {
  const bytes = Buffer.from(s, 'utf8')
  const out: number[] = []
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number
    if (b === 0x25) {
      const h = bytes.subarray(i + 1, i + 3).toString('latin1')
      if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new UrlError('invalid URL escape')
      // Go: in the host, %-encoding may only stand for non-ASCII bytes (or %25).
      if (mode === 'host' && parseInt(h, 16) < 0x80 && h !== '25') throw new UrlError('invalid URL escape')
      out.push(parseInt(h, 16))
      i += 2
      continue
    }
    if (mode === 'query' && b === 0x2b) {
      out.push(0x20)
      continue
    }
    if (mode === 'host' && b < 0x80 && shouldEscape(String.fromCharCode(b), 'host')) throw new UrlError('invalid character in host name')
    out.push(b)
  }
  return utf8.decode(Uint8Array.from(out))
}

/** Go url.QueryUnescape; undefined on a malformed escape. */
export function queryUnescape (s: string): string | undefined {
  try {
    return unescape(s, 'query')
  } catch (err) {
    if (err instanceof UrlError) return undefined
    throw err
  }
}

export function escape (s: string, mode: Mode): string {
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b)
    out += b < 0x80 && !shouldEscape(c, mode) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

const validOptionalPort = (p: string): boolean => p === '' || /^:\d*$/.test(p)

export interface GoUrl { scheme: string, opaque: string, host: string, path: string, rawPath: string, rawQuery: string, fragment: string, rawFragment: string, user: boolean, forceQuery: boolean, omitHost: boolean }

/** Go net/url.Parse. */
export function parseUrl (raw: string): GoUrl {
  const hashAt = raw.indexOf('#')
  const u0 = hashAt >= 0 ? raw.slice(0, hashAt) : raw
  const frag = hashAt >= 0 ? raw.slice(hashAt + 1) : ''
  if (/[\x00-\x1f\x7f]/.test(u0)) throw new UrlError('invalid control character in URL')
  const url: GoUrl = { scheme: '', opaque: '', host: '', path: '', rawPath: '', rawQuery: '', fragment: '', rawFragment: '', user: false, forceQuery: false, omitHost: false }
  if (u0 === '*') { url.path = '*'; return url }
  let rest = u0
  for (let i = 0; i < u0.length; i++) {
    const c = u0[i] as string
    if (/[A-Za-z]/.test(c)) continue
    if (/[0-9+.-]/.test(c)) { if (i === 0) break; continue }
    if (c === ':') {
      if (i === 0) throw new UrlError('missing protocol scheme')
      url.scheme = u0.slice(0, i).toLowerCase()
      rest = u0.slice(i + 1)
    }
    break
  }
  if (rest.endsWith('?') && rest.split('?').length === 2) { rest = rest.slice(0, -1); url.forceQuery = true }
  else {
    const q = rest.indexOf('?')
    if (q >= 0) { url.rawQuery = rest.slice(q + 1); rest = rest.slice(0, q) }
  }
  if (!rest.startsWith('/')) {
    if (url.scheme !== '') { url.opaque = rest; setFragment(url, frag); return url }
    const seg = rest.split('/')[0] as string
    if (seg.includes(':')) throw new UrlError('first path segment in URL cannot contain colon')
  }
  if ((url.scheme !== '' || !rest.startsWith('///')) && rest.startsWith('//')) {
    let authority = rest.slice(2)
    rest = ''
    const slash = authority.indexOf('/')
    if (slash >= 0) { rest = authority.slice(slash); authority = authority.slice(0, slash) }
    const at = authority.lastIndexOf('@')
    let host = authority
    if (at >= 0) {
      const userinfo = authority.slice(0, at)
      if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) throw new UrlError('invalid userinfo')
      unescape(userinfo, 'fragment')
      url.user = true
      host = authority.slice(at + 1)
    }
    if (host.startsWith('[')) {
      const end = host.lastIndexOf(']')
      if (end < 0) throw new UrlError("missing ']' in host")
      if (!validOptionalPort(host.slice(end + 1))) throw new UrlError('invalid port after host')
    } else {
      const colon = host.lastIndexOf(':')
      if (colon >= 0 && !validOptionalPort(host.slice(colon))) throw new UrlError('invalid port after host')
    }
    url.host = unescape(host, 'host')
  } else if (url.scheme !== '' && rest.startsWith('/')) url.omitHost = true
  url.path = unescape(rest, 'path')
  url.rawPath = escape(url.path, 'path') === rest ? '' : rest
  setFragment(url, frag)
  return url
}

function setFragment (url: GoUrl, frag: string): void {
  if (frag === '') return
  url.fragment = unescape(frag, 'fragment')
  url.rawFragment = escape(url.fragment, 'fragment') === frag ? '' : frag
}

function hostname (host: string): string {
  if (host.startsWith('[')) { const e = host.indexOf(']'); return e >= 0 ? host.slice(1, e) : host.slice(1) }
  const c = host.lastIndexOf(':')
  return c >= 0 ? host.slice(0, c) : host
}

function port (host: string): string {
  const c = host.lastIndexOf(':')
  if (c < 0 || (host.startsWith('[') && c < host.indexOf(']'))) return ''
  const p = host.slice(c + 1)
  return /^\d+$/.test(p) ? p : ''
}

export const uriBuiltins: BuiltinSpec[] = [
  {
    name: 'uri.parse',
    impl: (_ctx, [x]) => {
      const b = 'uri.parse'
      let u: GoUrl
      try {
        u = parseUrl(str(b, x, 1))
      } catch (err) {
        if (err instanceof UrlError) throw new BuiltinError(b, `parse ${String(x)}: ${err.message}`)
        throw err
      }
      const out: Record<string, string> = {}
      if (u.scheme !== '') out.scheme = u.scheme
      if (hostname(u.host) !== '') out.hostname = hostname(u.host)
      if (port(u.host) !== '') out.port = port(u.host)
      if (u.path !== '') { out.path = u.path; out.raw_path = u.rawPath !== '' ? u.rawPath : u.path }
      if (u.rawQuery !== '') out.raw_query = u.rawQuery
      if (u.fragment !== '') out.fragment = u.fragment
      return out
    },
  },
  {
    name: 'uri.is_valid',
    impl: (_ctx, [x]) => {
      if (typeof x !== 'string' || x === '') return false
      try {
        parseUrl(x)
        return true
      } catch {
        return false
      }
    },
  },
]
