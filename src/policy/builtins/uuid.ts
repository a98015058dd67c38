/** uuid.rfc4122 and uuid.parse (OPA v1/topdown/uuid.go, internal/uuid over google/uuid). */
import { randomBytes } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { RawJson } from './types.js'
import { str } from './args.js'
import { stringifyExact } from './exact-json.js'

function hexPairs (s: string, positions: number[]): Buffer | undefined {
  const out = Buffer.alloc(16)
  for (let i = 0; i < 16; i++) {
    const p = positions[i] as number
    const pair = s.slice(p, p + 2)
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) return undefined
    out[i] = parseInt(pair, 16)
  }
  return out
}

/** google/uuid.Parse: 36 chars, "urn:uuid:" + 36, "{" + 36 + "}" (braces unchecked), or 32 hex digits. */
export function parseUuid (input: string): Buffer | undefined {
  let s = Buffer.from(input, 'utf8').toString('latin1')
  switch (s.length) {
    case 36: break
    case 45:
      if (s.slice(0, 9).toLowerCase() !== 'urn:uuid:') return undefined
      s = s.slice(9)
      break
    case 38: s = s.slice(1); break
    case 32: return hexPairs(s, Array.from({ length: 16 }, (_, i) => i * 2))
    default: return undefined
  }
  if (s[8] !== '-' || s[13] !== '-' || s[18] !== '-' || s[23] !== '-') return undefined
  return hexPairs(s, [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34])
}

function variant (b: number): string {
  if ((b & 0xc0) === 0x80) return 'RFC4122'
  if ((b & 0xe0) === 0xc0) return 'Microsoft'
  if ((b & 0xe0) === 0xe0) return 'Future'
  return 'Reserved'
}

function macVars (b: number): string {
  if ((b & 3) === 3) return 'local:multicast'
  if ((b & 1) === 1) return 'global:multicast'
  if ((b & 2) === 2) return 'local:unicast'
  return 'global:unicast'
}

const G1582NS100 = 122192928000000000n

export const uuidBuiltins: BuiltinSpec[] = [
  {
    name: 'uuid.rfc4122',
    nondeterministic: true,
    impl: (ctx, [k]) => {
      // OPA caches the UUID per key for the rest of the query.
      const key = 'uuid.rfc4122:' + stringifyExact(str('uuid.rfc4122', k, 1))
      const hit = ctx.ndCache?.get(key)
      if (hit !== undefined) return hit
      const bs = randomBytes(16)
      bs[8] = ((bs[8] as number) & ~0xc0) | 0x80
      bs[6] = ((bs[6] as number) & ~0xf0) | 0x40
      const h = bs.toString('hex')
      const u = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
      ctx.ndCache?.set(key, u)
      return u
    },
  },
  {
    name: 'uuid.parse',
    impl: (_ctx, [x]) => {
      const u = parseUuid(str('uuid.parse', x, 1))
      if (u === undefined) return undefined
      const version = (u[6] as number) >> 4
      const out: Record<string, unknown> = { version, variant: variant(u[8] as number) }
      if (version === 1 || version === 2) {
        const t = BigInt(u.readUInt32BE(0)) | (BigInt(u.readUInt16BE(4)) << 32n) | (BigInt(u.readUInt16BE(6) & 0xfff) << 48n)
        const d = t - G1582NS100
        const sec = d / 10000000n // truncation, as Go's integer division
        const nsec = (d % 10000000n) * 100n
        out.time = BigInt.asIntN(64, sec * 1000000000n + nsec)
        out.nodeid = [...u.subarray(10, 16)].map((x) => x.toString(16).padStart(2, '0')).join('-')
        out.macvariables = macVars(u[10] as number)
        out.clocksequence = u.readUInt16BE(8) & 0x3fff
        if (version === 2) {
          out.id = u.readUInt32BE(0)
          const dom = u[9] as number
          out.domain = dom === 0 ? 'Person' : dom === 1 ? 'Group' : dom === 2 ? 'Org' : `Domain${dom}`
        }
      }
      return new RawJson(stringifyExact(out))
    },
  },
]
