/**
 * net.cidr_* host builtins and net.lookup_ip_addr (OPA v1/topdown/cidr.go, net.go) over Go's
 * net.ParseCIDR / net.ParseIP parsing rules (netip: no leading zeros in IPv4, no zones).
 */
import { execFileSync } from 'node:child_process'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj, setOf, str } from './args.js'

export interface Addr { v: 4 | 6, n: bigint }
export interface Prefix { addr: Addr, bits: number }

function parseV4 (s: string): bigint | undefined {
  // Dotted quad, no leading zeros (netip.ParseAddr), scanned by hand: this runs per element of large lists.
  let n = 0; let octet = 0; let digits = 0; let parts = 0
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46
    if (c === 46) {
      if (digits === 0 || parts === 4) return undefined
      n = n * 256 + octet
      parts++; octet = 0; digits = 0
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined
      octet = octet * 10 + (c - 48)
      if (++digits > 3 || octet > 255) return undefined
    } else return undefined
  }
  return parts === 4 ? BigInt(n) : undefined
}

function parseV6 (s: string): bigint | undefined {
  if (s.includes('%')) return undefined
  let tail4: bigint | undefined
  const lastColon = s.lastIndexOf(':')
  if (s.slice(lastColon + 1).includes('.')) {
    tail4 = parseV4(s.slice(lastColon + 1))
    if (tail4 === undefined) return undefined
    s = s.slice(0, lastColon + 1) + '0:0'
  }
  const dbl = s.indexOf('::')
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined
  const groups = (x: string): string[] | undefined => x === '' ? [] : x.split(':')
  let head: string[] | undefined; let tail: string[] | undefined
  if (dbl >= 0) { head = groups(s.slice(0, dbl)); tail = groups(s.slice(dbl + 2)) } else { head = groups(s); tail = [] }
  if (head === undefined || tail === undefined) return undefined
  const all = [...head, ...tail]
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined
  if (dbl >= 0 ? all.length > 7 : all.length !== 8) return undefined
  const full = dbl >= 0 ? [...head, ...Array(8 - all.length).fill('0'), ...tail] : all
  let n = 0n
  for (const g of full) n = (n << 16n) | BigInt(parseInt(g, 16))
  if (tail4 !== undefined) n = (n & ~0xffffffffn) | tail4
  return n
}

/** netip.ParseAddr without zones. */
export function parseAddr (s: string): Addr | undefined {
  if (s.includes(':')) {
    const n = parseV6(s)
    return n === undefined ? undefined : { v: 6, n }
  }
  const n = parseV4(s)
  return n === undefined ? undefined : { v: 4, n }
}

/** Go net.ParseCIDR: the network (host bits cleared) and the prefix length. */
export function parseCIDR (s: string): Prefix | undefined {
  const i = s.indexOf('/')
  if (i < 0) return undefined
  const addr = parseAddr(s.slice(0, i))
  if (addr === undefined) return undefined
  const m = /^(\d+)/.exec(s.slice(i + 1))
  if (m === null || m[1] !== s.slice(i + 1) || m[1].length > 6) return undefined
  const bits = Number(m[1])
  const width = addr.v === 4 ? 32 : 128
  if (bits > width) return undefined
  return { addr: { v: addr.v, n: addr.n & mask(width, bits) }, bits }
}

function mask (width: number, bits: number): bigint {
  return ((1n << BigInt(width)) - 1n) ^ ((1n << BigInt(width - bits)) - 1n)
}

/** Go net.IP.String(): dotted IPv4 (also for IPv4-mapped IPv6), RFC 5952 IPv6. */
export function formatAddr (a: Addr): string {
  if (a.v === 4 || (a.n >> 32n) === 0xffffn) {
    const n = a.n & 0xffffffffn
    return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.')
  }
  const g: number[] = []
  for (let i = 7; i >= 0; i--) g.push(Number((a.n >> BigInt(i * 16)) & 0xffffn))
  let bestStart = -1; let bestLen = 0
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':')
  if (bestStart < 0) return hex(g)
  return hex(g.slice(0, bestStart)) + '::' + hex(g.slice(bestStart + bestLen))
}

function formatPrefix (p: Prefix): string {
  if (p.addr.v === 6 && (p.addr.n >> 32n) === 0xffffn && p.bits >= 96) return `${formatAddr(p.addr)}/${p.bits - 96}`
  return `${formatAddr(p.addr)}/${p.bits}`
}

function contains (net: Prefix, a: Addr, bits: number): boolean {
  const width = net.addr.v === 4 ? 32 : 128
  let n = a.n
  if (a.v !== net.addr.v) {
    // Go compares 16-byte forms: an IPv4 address matches its IPv4-mapped IPv6 form.
    if (a.v === 4 && net.addr.v === 6) { n = 0xffff00000000n | a.n; bits += 96 } else if (a.v === 6 && net.addr.v === 4 && (a.n >> 32n) === 0xffffn) { n = a.n & 0xffffffffn; bits -= 96 } else return false
  }
  return bits >= net.bits && (n & mask(width, net.bits)) === net.addr.n
}

/** A bare IPv4 address with its classful default mask (Go net.IP.DefaultMask), as OPA's cidr_merge reads it. */
function parseMergeElement (s: string): Prefix | undefined {
  if (s.includes('/')) return parseCIDR(s)
  const a = parseAddr(s)
  if (a === undefined) return undefined
  let n = a.n
  if (a.v === 6) {
    if ((n >> 32n) !== 0xffffn) return undefined
    n &= 0xffffffffn
  }
  const first = Number(n >> 24n)
  const bits = first < 0x80 ? 8 : first < 0xc0 ? 16 : 24
  return { addr: { v: 4, n: n & mask(32, bits) }, bits }
}

/** A CIDR, or a bare IP as its single-address prefix. */
function parseCidrOrIp (s: string): Prefix | undefined {
  if (s.includes('/')) return parseCIDR(s)
  const a = parseAddr(s)
  return a === undefined ? undefined : { addr: a, bits: a.v === 4 ? 32 : 128 }
}

/** Minimal CIDR cover of the union of prefixes of one family. */
function mergeFamily (prefixes: Prefix[], v: 4 | 6): Prefix[] {
  const width = v === 4 ? 32 : 128
  const ranges = prefixes.map((p) => [p.addr.n, p.addr.n + (1n << BigInt(width - p.bits)) - 1n] as [bigint, bigint]).sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
  const merged: Array<[bigint, bigint]> = []
  for (const r of ranges) {
    const last = merged[merged.length - 1]
    if (last !== undefined && r[0] <= last[1] + 1n) { if (r[1] > last[1]) last[1] = r[1] } else merged.push([r[0], r[1]])
  }
  const out: Prefix[] = []
  for (let [lo, hi] of merged) {
    while (lo <= hi) {
      // The largest aligned block at lo that fits: bounded by lo's trailing zeros and the remaining length.
      const align = lo === 0n ? width : (lo & -lo).toString(2).length - 1
      const fit = (hi - lo + 1n).toString(2).length - 1
      const size = Math.min(align, fit, width)
      out.push({ addr: { v, n: lo }, bits: width - size })
      lo += 1n << BigInt(size)
    }
  }
  return out
}

const MAX_EXPAND = 1n << 20n

/** Collection elements with their keys (array index, object key, or the string itself). */
function entries (b: string, x: unknown, pos: number): Array<[unknown, unknown]> {
  if (typeof x === 'string') return [[x, x]]
  if (Array.isArray(x)) return x.map((v, i) => [i, v])
  if (isObj(x)) return Object.entries(x)
  return []
}

function elementCidr (b: string, v: unknown): string {
  if (typeof v === 'string') return v
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0]
  throw new BuiltinError(b, 'operand elements must be strings or arrays whose first element is a string')
}

export const netBuiltins: BuiltinSpec[] = [
  {
    name: 'net.cidr_is_valid',
    impl: (_ctx, [x]) => typeof x === 'string' && parseCIDR(x) !== undefined,
  },
  {
    name: 'net.cidr_expand',
    impl: (_ctx, [x]) => {
      const b = 'net.cidr_expand'
      const p = parseCIDR(str(b, x, 1))
      if (p === undefined) throw new BuiltinError(b, `invalid CIDR address: ${String(x)}`)
      const width = p.addr.v === 4 ? 32 : 128
      const count = 1n << BigInt(width - p.bits)
      // OPA would enumerate until the query deadline; Portcullis refuses more than 2^20 hosts.
      if (count > MAX_EXPAND) throw new BuiltinError(b, 'CIDR too large to expand')
      const out: string[] = []
      for (let i = 0n; i < count; i++) out.push(formatAddr({ v: p.addr.v, n: p.addr.n + i }))
      return setOf([...new Set(out)])
    },
  },
  {
    name: 'net.cidr_merge',
    impl: (_ctx, [x]) => {
      const b = 'net.cidr_merge'
      if (!Array.isArray(x)) throw new BuiltinError(b, 'operand 1 must be one of {array, set}')
      const v4: Prefix[] = []; const v6: Prefix[] = []
      for (const e of x) {
        if (typeof e !== 'string') throw new BuiltinError(b, 'element must be string')
        const p = parseMergeElement(e)
        if (p === undefined) throw new BuiltinError(b, `${e} is not a valid IP address or CIDR`)
        ;(p.addr.v === 4 ? v4 : v6).push(p)
      }
      return setOf([...mergeFamily(v4, 4), ...mergeFamily(v6, 6)].map(formatPrefix))
    },
  },
  {
    name: 'net.cidr_contains_matches',
    impl: (_ctx, [cidrs, targets]) => {
      const b = 'net.cidr_contains_matches'
      const nets = entries(b, cidrs, 1).map(([k, v]) => {
        const s = elementCidr(b, v)
        const p = parseCIDR(s)
        if (p === undefined) throw new BuiltinError(b, `invalid CIDR: ${s}`)
        return [k, p] as const
      })
      const ts = entries(b, targets, 2).map(([k, v]) => {
        const s = elementCidr(b, v)
        const p = parseCidrOrIp(s)
        if (p === undefined) throw new BuiltinError(b, `invalid IP or CIDR: ${s}`)
        return [k, p] as const
      })
      const out = new Map<string, unknown[]>()
      for (const [k1, n] of nets) {
        for (const [k2, t] of ts) {
          if (contains(n, t.addr, t.bits)) out.set(JSON.stringify([k1, k2]), [k1, k2])
        }
      }
      return setOf([...out.values()])
    },
  },
  {
    name: 'net.lookup_ip_addr',
    nondeterministic: true,
    requiresSwitch: 'net_lookup_ip_addr',
    impl: (_ctx, [x]) => {
      const b = 'net.lookup_ip_addr'
      const name = str(b, x, 1)
      if (!/^[A-Za-z0-9.-]{1,253}$/.test(name)) throw new BuiltinError(b, `invalid host name ${name}`)
      // Synchronous resolution: the system resolver in a short-lived child (getaddrinfo, as Go's cgo resolver).
      let out: string
      try {
        out = execFileSync(process.execPath, ['-e', `require('node:dns').lookup(process.argv[1], { all: true }, (e, a) => { if (e) { process.stderr.write(e.code || 'ERR'); process.exit(1) } process.stdout.write(JSON.stringify(a.map((x) => x.address))) })`, name], { encoding: 'utf8', timeout: 5000 })
      } catch (err) {
        throw new BuiltinError(b, `lookup ${name} failed`)
      }
      return setOf([...new Set(JSON.parse(out) as string[])])
    },
  },
]
