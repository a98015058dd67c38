/** semver.is_valid and semver.compare (OPA internal/semver). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { str } from './args.js'

interface Version { major: bigint, minor: bigint, patch: bigint, pre: string, meta: string }

const META = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/

function cut (s: string, sep: string): [string, string] {
  const i = s.indexOf(sep)
  return i >= 0 ? [s.slice(0, i), s.slice(i + 1)] : [s, '']
}

/** Go strconv.ParseInt(s, 10, 64). */
function parseInt64 (s: string): bigint | undefined {
  if (!/^[+-]?\d+$/.test(s)) return undefined
  const v = BigInt(s)
  if (v > 9223372036854775807n || v < -9223372036854775808n) return undefined
  return v
}

export function parseSemver (version: string): Version | undefined {
  if (version.startsWith('v')) version = version.slice(1)
  let meta: string; let pre: string
  // SemVer 2.0.0: a '-' or '+' must be followed by identifiers; numeric identifiers have no leading zeros.
  if (version.includes('+') && version.slice(version.indexOf('+') + 1) === '') return undefined
  ;[version, meta] = cut(version, '+')
  if (meta !== '' && !META.test(meta)) return undefined
  if (version.includes('-') && version.slice(version.indexOf('-') + 1) === '') return undefined
  ;[version, pre] = cut(version, '-')
  if (pre !== '' && !META.test(pre)) return undefined
  if (pre !== '' && pre.split('.').some((id) => /^0\d+$/.test(id))) return undefined
  if (version.split('.').length !== 3) return undefined
  const [a, b, c] = version.split('.') as [string, string, string]
  if ([a, b, c].some((x) => /^[+-]?0\d/.test(x))) return undefined
  const major = parseInt64(a); const minor = parseInt64(b); const patch = parseInt64(c)
  if (major === undefined || minor === undefined || patch === undefined) return undefined
  return { major, minor, patch, pre, meta }
}

const isAllDecimals = (s: string): boolean => /^[0-9]+$/.test(s)

/** Go strconv.Atoi clamps out-of-range values. */
function atoi (s: string): bigint {
  const v = BigInt(s)
  return v > 9223372036854775807n ? 9223372036854775807n : v
}

function cmpBig (a: bigint, b: bigint): number { return a > b ? 1 : a < b ? -1 : 0 }

export function compareSemver (v: Version, o: Version): number {
  const c = cmpBig(v.major, o.major) || cmpBig(v.minor, o.minor) || cmpBig(v.patch, o.patch)
  if (c !== 0) return c
  if (v.pre === o.pre) return 0
  if (v.pre === '' && o.pre !== '') return 1
  if (o.pre === '' && v.pre !== '') return -1
  let [a, afterA] = cut(v.pre, '.')
  let [b, afterB] = cut(o.pre, '.')
  for (;;) {
    // OPA loops forever here when identifiers differ only beyond int64 (Atoi clamps both); stop instead.
    if (a === '' && b === '') return 0
    if (a === '' && b !== '') return -1
    if (a !== '' && b === '') return 1
    const ai = isAllDecimals(a); const bi = isAllDecimals(b)
    if (ai && !bi) return -1
    if (!ai && bi) return 1
    if (ai && bi) {
      const r = cmpBig(atoi(a), atoi(b))
      if (r !== 0) return r
    } else if (a !== b) {
      return Buffer.compare(Buffer.from(a), Buffer.from(b))
    }
    if (afterA !== '' && afterB === '') return 1
    if (afterA === '' && afterB !== '') return -1
    ;[a, afterA] = cut(afterA, '.')
    ;[b, afterB] = cut(afterB, '.')
  }
}

export const semverBuiltins: BuiltinSpec[] = [
  {
    name: 'semver.is_valid',
    impl: (_ctx, [x]) => typeof x === 'string' && parseSemver(x) !== undefined,
  },
  {
    name: 'semver.compare',
    impl: (_ctx, [x, y]) => {
      const b = 'semver.compare'
      const a = parseSemver(str(b, x, 1))
      if (a === undefined) throw new BuiltinError(b, `operand 1: string ${String(x)} is not a valid SemVer`)
      const c = parseSemver(str(b, y, 2))
      if (c === undefined) throw new BuiltinError(b, `operand 2: string ${String(y)} is not a valid SemVer`)
      return compareSemver(a, c)
    },
  },
]
