/**
 * net.cidr_* host builtins and net.lookup_ip_addr (OPA v1/topdown/cidr.go, net.go) over Go's
 * net.ParseCIDR / net.ParseIP parsing rules (netip: no leading zeros in IPv4, no zones).
 */
import { execFileSync } from 'node:child_process'
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RegoSet } from './types.js'
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

/**
 * The address text Go's LookupIPAddr gives for an IP literal (IPAddr.String(): IP.String(),
 * then `%zone` for a zoned IPv6 address), or undefined when `s` is not one.
 */
function ipLiteral (s: string): string | undefined {
  const pct = s.indexOf('%')
  const zone = pct >= 0 ? s.slice(pct + 1) : ''
  if (pct >= 0 && (zone === '' || !s.slice(0, pct).includes(':'))) return undefined
  const addr = parseAddr(pct >= 0 ? s.slice(0, pct) : s)
  if (addr === undefined) return undefined
  return formatAddr(addr) + (zone === '' ? '' : `%${zone}`)
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

function contains (net: Prefix, a: Addr, bits: number): boolean {
  const width = net.addr.v === 4 ? 32 : 128
  let n = a.n
  if (a.v !== net.addr.v) {
    // Go compares 16-byte forms: an IPv4 address matches its IPv4-mapped IPv6 form.
    if (a.v === 4 && net.addr.v === 6) { n = 0xffff00000000n | a.n; bits += 96 } else if (a.v === 6 && net.addr.v === 4 && (a.n >> 32n) === 0xffffn) { n = a.n & 0xffffffffn; bits -= 96 } else return false
  }
  return bits >= net.bits && (n & mask(width, net.bits)) === net.addr.n
}

/** A CIDR, or a bare IP as its single-address prefix. */
function parseCidrOrIp (s: string): Prefix | undefined {
  if (s.includes('/')) return parseCIDR(s)
  const a = parseAddr(s)
  return a === undefined ? undefined : { addr: a, bits: a.v === 4 ? 32 : 128 }
}

// ---- net.cidr_merge ----

/**
 * net.cidr_merge as OPA v1.22.2 computes it (v1/topdown/cidr.go over internal/cidr/merge, from
 * Cilium), on Go's net.IP / net.IPMask byte slices rather than on numbers, because its answers
 * depend on them:
 * - a bare IPv4 address (or IPv4-mapped IPv6 address) is the network of its classful default mask
 *   (net.IP.DefaultMask: /8, /16 or /24) with the address left unmasked, so a lone "192.168.1.1"
 *   answers "192.168.1.1/24", while one merged with anything is masked ("192.168.1.0/24");
 * - a bare IPv6 address is an error ("needs prefix length");
 * - IPv4 and IPv6 ranges are ordered and merged in one 16-byte space (IPv4 at ::ffff:0:0/96).
 * Where Go indexes out of range (an IPv4-mapped IPv6 CIDR merged with another range, whose
 * address range becomes 28 bytes; an IPv6 range whose spanning network starts with a zero byte)
 * `opa eval` panics; Portcullis answers a builtin error instead of guessing.
 */

type Bytes = number[]

interface IPNet { ip: Bytes, mask: Bytes }
interface Range { first: Bytes, last: Bytes, network: IPNet | undefined }

/** What Go panics on: reported as a builtin error. */
class GoPanic extends Error {}

const V4_IN_V6_PREFIX: Bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

function toBytes (n: bigint, len: number): Bytes {
  const out: Bytes = new Array<number>(len)
  for (let i = len - 1; i >= 0; i--) { out[i] = Number(n & 0xffn); n >>= 8n }
  return out
}

function toBig (b: Bytes): bigint {
  let n = 0n
  for (const x of b) n = (n << 8n) | BigInt(x)
  return n
}

/** big.Int.Bytes(): big-endian, no leading zero bytes (empty for 0). */
function bigBytes (n: bigint): Bytes {
  const out: Bytes = []
  while (n > 0n) { out.unshift(Number(n & 0xffn)); n >>= 8n }
  return out
}

function compare (a: Bytes, b: Bytes): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}

const sameBytes = (a: Bytes, b: Bytes): boolean => a.length === b.length && a.every((x, i) => x === b[i])
const isV4InV6 = (ip: Bytes): boolean => ip.length === 16 && sameBytes(ip.slice(0, 12), V4_IN_V6_PREFIX)

/** net.IP.To4. */
function to4 (ip: Bytes): Bytes | undefined {
  if (ip.length === 4) return ip
  if (isV4InV6(ip)) return ip.slice(12)
  return undefined
}

/** net.IP.Equal. */
function ipEqual (ip: Bytes, x: Bytes): boolean {
  if (ip.length === x.length) return sameBytes(ip, x)
  if (ip.length === 4 && x.length === 16) return isV4InV6(x) && sameBytes(ip, x.slice(12))
  if (ip.length === 16 && x.length === 4) return isV4InV6(ip) && sameBytes(ip.slice(12), x)
  return false
}

/** net.IP.Mask: undefined where Go returns nil. */
function ipMask (ip: Bytes, mask: Bytes): Bytes | undefined {
  if (mask.length === 16 && ip.length === 4 && mask.slice(0, 12).every((x) => x === 0xff)) mask = mask.slice(12)
  if (mask.length === 4 && ip.length === 16 && sameBytes(ip.slice(0, 12), V4_IN_V6_PREFIX)) ip = ip.slice(12)
  if (ip.length !== mask.length) return undefined
  return ip.map((x, i) => x & (mask[i] as number))
}

/** net.CIDRMask. */
function cidrMask (ones: number, bits: number): Bytes {
  return toBytes(((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - ones)) - 1n), bits / 8)
}

/** net.IPMask.Size: the leading ones of a canonical mask, [0, 0] otherwise. */
function maskSize (mask: Bytes): number {
  let ones = 0
  let i = 0
  for (; i < mask.length && mask[i] === 0xff; i++) ones += 8
  if (i < mask.length) {
    let x = mask[i] as number
    while ((x & 0x80) !== 0) { ones++; x = (x << 1) & 0xff }
    if (x !== 0) return 0
    for (i++; i < mask.length; i++) if (mask[i] !== 0) return 0
  }
  return ones
}

/** net.IPNet.String (only canonical masks occur here). */
function ipNetString (n: IPNet): string {
  let ip = to4(n.ip)
  if (ip === undefined) {
    ip = n.ip
    if (ip.length !== 16) return '<nil>'
  }
  let m = n.mask
  if (m.length === 4) {
    if (ip.length !== 4) return '<nil>'
  } else if (m.length === 16) {
    if (ip.length === 4) m = m.slice(12)
  } else return '<nil>'
  const text = ip.length === 4 ? formatAddr({ v: 4, n: toBig(ip) }) : formatAddr({ v: 6, n: toBig(ip) })
  return `${text}/${maskSize(m)}`
}

/** merge.GetAddressRange. */
function addressRange (n: IPNet): [Bytes, Bytes] {
  let first = ipMask(n.ip, n.mask)
  if (first === undefined) throw new GoPanic('index out of range (nil IP)')
  let last = [...first]
  if (to4(first) !== undefined) {
    first = [...V4_IN_V6_PREFIX, ...first]
    last = [...V4_IN_V6_PREFIX, ...last]
  }
  for (let i = 0; i < n.mask.length; i++) {
    const at = 16 - i - 1
    if (at >= last.length) throw new GoPanic('index out of range')
    last[at] = (last[at] as number) | (~(n.mask[n.mask.length - i - 1] as number) & 0xff)
  }
  return [first, last]
}

const DEFAULT_V4 = [...V4_IN_V6_PREFIX, 0, 0, 0, 0]
const DEFAULT_V6 = new Array<number>(16).fill(0)
const UPPER_V4 = [...V4_IN_V6_PREFIX, 255, 255, 255, 255]
const UPPER_V6 = new Array<number>(16).fill(255)

/** merge.GetPreviousIP. */
function previousIP (ip: Bytes): Bytes {
  if (ipEqual(ip, DEFAULT_V4) || ipEqual(ip, DEFAULT_V6)) return ip
  const prev = [...ip]
  const lower = to4(ip) !== undefined ? 12 : 0
  let overflow = false
  for (let i = ip.length - 1; i >= lower; i--) {
    if (overflow || i === ip.length - 1) prev[i] = ((prev[i] as number) - 1) & 0xff
    overflow = ip[i] === 0 && prev[i] === 255
  }
  return prev
}

/** merge.getNextIP. */
function nextIP (ip: Bytes): Bytes {
  if (ipEqual(ip, UPPER_V4) || ipEqual(ip, UPPER_V6)) return ip
  if (ip.length === 4) return toBytes((toBig(ip) + 1n) & 0xffffffffn, 4)
  if (ip.length !== 16) return ip
  const hi = toBig(ip.slice(0, 8)); const lo = (toBig(ip.slice(8)) + 1n) & 0xffffffffffffffffn
  return [...toBytes(lo === 0n ? (hi + 1n) & 0xffffffffffffffffn : hi, 8), ...toBytes(lo, 8)]
}

/** merge.createSpanningCIDR. */
function spanningCIDR (first: Bytes, last: Bytes): IPNet {
  const isV4 = to4(first) !== undefined
  const bitLen = isV4 ? 32 : 128
  let size = bitLen
  const lowest = toBig(first)
  let highest = toBig(last)
  while (size > 0 && lowest < highest) {
    size--
    highest &= -(1n << BigInt(bitLen - size))
  }
  let ip = isV4 ? [...DEFAULT_V6.slice(0, 10), ...bigBytes(highest)] : bigBytes(highest)
  if (ip.length === 0) ip = new Array<number>(isV4 ? 4 : 16).fill(0)
  return { ip, mask: cidrMask(size, bitLen) }
}

/** Go's padding of a big.Int to an address: ten zero bytes before an IPv4 one (whose value holds ffff), 16 bytes for IPv6. */
function padded (n: bigint, isV4: boolean): Bytes {
  const b = bigBytes(n)
  if (isV4) return [...DEFAULT_V6.slice(0, 10), ...b]
  if (b.length > 16) throw new GoPanic('negative make length')
  return [...new Array<number>(16 - b.length).fill(0), ...b]
}

/** merge.partitionCIDR: the networks left and right of `exclude` within `target`. */
function partitionCIDR (target: IPNet, exclude: IPNet): [IPNet[], IPNet[]] {
  const isV4 = to4(target.ip) !== undefined
  const [targetFirst, targetLast] = addressRange(target)
  const [excludeFirst, excludeLast] = addressRange(exclude)
  const targetSize = maskSize(target.mask)
  const excludeSize = maskSize(exclude.mask)
  if (compare(excludeLast, targetFirst) < 0) return [[], [target]]
  if (compare(targetLast, excludeFirst) < 0) return [[target], []]
  if (targetSize >= excludeSize) return [[], []]
  const left: IPNet[] = []; const right: IPNet[] = []
  const bitLen = isV4 ? 32 : 128
  let prefixLen = targetSize + 1
  let lower = toBig(targetFirst)
  let upper = toBig(targetFirst) + (1n << BigInt(bitLen - prefixLen))
  let matched = 0n
  while (excludeSize >= prefixLen) {
    const upperBytes = padded(upper, isV4); const lowerBytes = padded(lower, isV4)
    if (compare(excludeFirst, upperBytes) >= 0) {
      left.push({ ip: lowerBytes, mask: cidrMask(prefixLen, bitLen) })
      matched = upper
    } else {
      right.push({ ip: upperBytes, mask: cidrMask(prefixLen, bitLen) })
      matched = lower
    }
    prefixLen++
    if (prefixLen > bitLen) break
    lower = matched
    upper = matched + (1n << BigInt(bitLen - prefixLen))
  }
  return [left, right]
}

/** merge.RangeToCIDRs. */
function rangeToCIDRs (first: Bytes, last: Bytes): IPNet[] {
  let spanning = spanningCIDR(first, last)
  const [spanFirst, spanLast] = addressRange(spanning)
  let out: IPNet[] = []
  if (compare(spanFirst, first) < 0) {
    const prev = previousIP(first)
    const bits = to4(prev) !== undefined ? 32 : 128
    const [, right] = partitionCIDR(spanning, { ip: prev, mask: cidrMask(bits, bits) })
    if (right.length === 0) throw new GoPanic('index out of range [0] with length 0')
    out.push(...right)
    spanning = right[0] as IPNet
    out = out.slice(1)
  }
  if (compare(spanLast, last) > 0) {
    const next = nextIP(last)
    const bits = to4(next) !== undefined ? 32 : 128
    const [left] = partitionCIDR(spanning, { ip: next, mask: cidrMask(bits, bits) })
    out.push(...left)
  } else {
    out.push(spanning)
  }
  return out
}

/** OPA's generateIPNet: an address first (net.ParseIP), else a CIDR (net.ParseCIDR). */
function ipNetOf (b: string, s: string): IPNet {
  const a = s.includes('/') ? undefined : parseAddr(s)
  if (a !== undefined) {
    const ip16 = toBytes(a.v === 4 ? 0xffff00000000n | a.n : a.n, 16)
    const v4 = to4(ip16)
    if (v4 === undefined) throw new BuiltinError(b, 'IPv6 invalid: needs prefix length')
    // net.IP.DefaultMask: class A, B or C by the first octet; the address itself stays unmasked.
    const first = v4[0] as number
    return { ip: ip16, mask: cidrMask(first < 0x80 ? 8 : first < 0xc0 ? 16 : 24, 32) }
  }
  const p = parseCIDR(s)
  if (p === undefined) throw new BuiltinError(b, `invalid CIDR address: ${s}`)
  // net.ParseCIDR: a 4-byte network for IPv4 text, 16 bytes for IPv6 text (IPv4-mapped included).
  return p.addr.v === 4
    ? { ip: toBytes(p.addr.n, 4), mask: cidrMask(p.bits, 32) }
    : { ip: toBytes(p.addr.n, 16), mask: cidrMask(p.bits, 128) }
}

/** The merged networks of `elements` (strings, in the order OPA iterates them), as OPA renders them. */
export function cidrMerge (b: string, elements: string[]): string[] {
  const nets = elements.map((e) => ipNetOf(b, e))
  try {
    const ranges: Range[] = nets.map((n) => {
      const [first, last] = addressRange(n)
      return { first, last, network: n }
    })
    // sort.Sort by last address, then first; ranges equal in both always merge below, so the
    // order among them (sort.Sort is not stable) does not change the answer.
    ranges.sort((x, y) => compare(x.last, y.last) || compare(x.first, y.first))
    for (let i = ranges.length - 1; i > 0; i--) {
      const cur = ranges[i] as Range; const prev = ranges[i - 1] as Range
      if (compare(previousIP(cur.first), prev.last) <= 0) {
        const first = compare(prev.first, cur.first) < 0 ? prev.first : cur.first
        ranges[i - 1] = { first: [...first], last: [...cur.last], network: undefined }
        ranges.splice(i, 1)
      }
    }
    const out: string[] = []
    for (const r of ranges) {
      if (r.network !== undefined) out.push(ipNetString(r.network))
      else for (const n of rangeToCIDRs(r.first, r.last)) out.push(ipNetString(n))
    }
    return out
  } catch (err) {
    if (err instanceof GoPanic) throw new BuiltinError(b, `OPA's merge fails on this input (Go runtime error: ${err.message})`)
    throw err
  }
}

const MAX_EXPAND = 1n << 20n

/** Collection elements with their keys (array index, object key, or the string itself). */
function entries (b: string, x: unknown, pos: number): Array<[unknown, unknown]> {
  if (typeof x === 'string') return [[x, x]]
  // OPA keys a set's matches by the element itself, an array's by its index
  if (x instanceof RegoSet) return x.map((v) => [v, v])
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
      const elements = x.map((e) => {
        if (typeof e !== 'string') throw new BuiltinError(b, 'element must be string')
        return e
      })
      return setOf(cidrMerge(b, elements))
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
      // Go's net.Resolver answers an IP literal itself (netip.ParseAddr, zone kept), without DNS.
      const literal = ipLiteral(name)
      if (literal !== undefined) return setOf([literal])
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
