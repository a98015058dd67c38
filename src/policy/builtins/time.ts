import type { BuiltinSpec } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { ExactNumber } from './exact-json.js'
import { int, int64, isNum, str } from './args.js'
import {
  civil, daysFromCivil, format, goDate, GoTimeError, inNsRange, loadZone, NAMED_LAYOUTS, parse, parseDuration,
  type Zone,
} from './gotime.js'

/**
 * time.* builtins (OPA v1/topdown/time.go). OPA reads the clock once per query, so every call
 * to time.now_ns() in one decision returns the same value; the EvalContext memoizes it.
 */

const ns = (v: bigint): RawJson => new RawJson(v.toString())

function wrap<T> (b: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof GoTimeError) throw new BuiltinError(b, err.message)
    throw err
  }
}

/** OPA's tzTime: a number of ns, or [ns, tz] / [ns, tz, layout]. */
function tzTime (b: string, a: unknown): { t: bigint, zone: Zone, zoneKey: string, layout: string } {
  let nVal: unknown
  let zoneKey = 'UTC'
  let layout = ''
  if (Array.isArray(a)) {
    if (a.length === 0) throw new BuiltinError(b, 'operand 1 must be one of {number, array} but got array')
    nVal = a[0]
    if (!isNum(nVal)) throw new BuiltinError(b, 'operand 1 must be number')
    if (a.length > 1) {
      if (typeof a[1] !== 'string') throw new BuiltinError(b, 'operand 1 must be string')
      zoneKey = a[1] === '' ? 'UTC' : a[1]
    }
    if (a.length > 2) {
      if (typeof a[2] !== 'string') throw new BuiltinError(b, 'operand 1 must be string')
      layout = a[2]
    }
  } else if (isNum(a)) {
    nVal = a
  } else {
    throw new BuiltinError(b, 'operand 1 must be either number (ns) or [number (ns), string (tz)]')
  }
  // NumberToFloat(value).Int64() must be exact: integers only, within int64.
  const v = nVal as number | ExactNumber
  let t: bigint
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v >= 2 ** 63 || v < -(2 ** 63)) throw new BuiltinError(b, 'timestamp too big')
    t = BigInt(v)
  } else {
    t = exactTimestamp(b, v)
  }
  const zone = wrap(b, () => loadZone(zoneKey))
  return { t, zone, zoneKey, layout }
}

/** big.Float (precision 53... OPA parses with default precision) to int64, exact only. */
function exactTimestamp (b: string, v: ExactNumber): bigint {
  const x = Number(v.text)
  // OPA converts through a big.Float with the number's decimal value; a fractional or
  // out-of-range value is "timestamp too big". Integers beyond 2^53 keep their digits.
  const m = /^(-?)(\d+)$/.exec(v.text)
  if (m !== null) {
    const i = BigInt(v.text)
    if (i > 9223372036854775807n || i < -9223372036854775808n) throw new BuiltinError(b, 'timestamp too big')
    return i
  }
  if (!Number.isFinite(x) || !Number.isInteger(x) || x >= 2 ** 63 || x < -(2 ** 63)) throw new BuiltinError(b, 'timestamp too big')
  return BigInt(x)
}

function checkRange (b: string, t: bigint): RawJson {
  if (!inNsRange(t)) throw new BuiltinError(b, 'time outside of valid range')
  return ns(t)
}

export const timeBuiltins: BuiltinSpec[] = [
  {
    name: 'time.now_ns',
    nondeterministic: true,
    impl: (ctx) => ns(ctx.nowNs()),
  },
  {
    name: 'time.parse_ns',
    impl: (_ctx, [layout, value]) => {
      const b = 'time.parse_ns'
      let l = str(b, layout, 1)
      const v = str(b, value, 2)
      l = NAMED_LAYOUTS[l] ?? l
      return checkRange(b, wrap(b, () => parse(l, v)))
    },
  },
  {
    name: 'time.parse_rfc3339_ns',
    impl: (_ctx, [value]) => {
      const b = 'time.parse_rfc3339_ns'
      const v = str(b, value, 1)
      return checkRange(b, wrap(b, () => parse(NAMED_LAYOUTS.RFC3339 as string, v)))
    },
  },
  {
    name: 'time.parse_duration_ns',
    impl: (_ctx, [value]) => {
      const b = 'time.parse_duration_ns'
      return ns(wrap(b, () => parseDuration(str(b, value, 1))))
    },
  },
  {
    name: 'time.format',
    impl: (_ctx, [x]) => {
      const b = 'time.format'
      const { t, zone, layout } = tzTime(b, x)
      const l = layout === '' ? NAMED_LAYOUTS.RFC3339Nano as string : NAMED_LAYOUTS[layout] ?? layout
      return format(t, zone, l)
    },
  },
  {
    name: 'time.date',
    impl: (_ctx, [x]) => {
      const { t, zone } = tzTime('time.date', x)
      const c = civil(t, zone)
      return [c.year, c.month, c.day]
    },
  },
  {
    name: 'time.clock',
    impl: (_ctx, [x]) => {
      const { t, zone } = tzTime('time.clock', x)
      const c = civil(t, zone)
      return [c.hour, c.minute, c.second]
    },
  },
  {
    name: 'time.weekday',
    impl: (_ctx, [x]) => {
      const { t, zone } = tzTime('time.weekday', x)
      return ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][civil(t, zone).weekday]
    },
  },
  {
    name: 'time.add_date',
    impl: (_ctx, [x, years, months, days]) => {
      const b = 'time.add_date'
      const { t, zone } = tzTime(b, x)
      const y = int64(b, int(b, years, 2)); const m = int64(b, int(b, months, 3)); const d = int64(b, int(b, days, 4))
      const c = civil(t, zone)
      const yy = c.year + Number(y); const mm = c.month + Number(m); const dd = BigInt.asIntN(64, BigInt(c.day) + d)
      if (!Number.isSafeInteger(yy) || !Number.isSafeInteger(mm) || Math.abs(yy) > 1e8 || Math.abs(mm) > 1e9) {
        throw new BuiltinError(b, 'time outside of valid range')
      }
      return checkRange(b, goDate(yy, mm, dd, c.hour, c.minute, c.second, BigInt(c.nsec), zone))
    },
  },
  {
    name: 'time.diff',
    impl: (_ctx, [x1, x2]) => {
      const b = 'time.diff'
      let a = tzTime(b, x1)
      let c = tzTime(b, x2)
      // Go: t2 is moved into t1's location when they differ.
      if (a.zoneKey !== c.zoneKey) c = { ...c, zone: a.zone, zoneKey: a.zoneKey }
      if (a.t > c.t) { const tmp = a; a = { ...c, zone: a.zone }; c = { ...tmp, zone: a.zone } }
      const t1 = civil(a.t, a.zone)
      const t2 = civil(c.t, a.zone)
      let year = t2.year - t1.year
      let month = t2.month - t1.month
      let day = t2.day - t1.day
      let hour = t2.hour - t1.hour
      let min = t2.minute - t1.minute
      let sec = t2.second - t1.second
      if (sec < 0) { sec += 60; min-- }
      if (min < 0) { min += 60; hour-- }
      if (hour < 0) { hour += 24; day-- }
      if (day < 0) {
        // Days in t1's month: time.Date(y1, M1, 32) normalizes into the next month.
        const next = daysFromCivil(t1.year, t1.month, 1) + 31
        const dayOfNext = next - daysFromCivil(t1.month === 12 ? t1.year + 1 : t1.year, t1.month === 12 ? 1 : t1.month + 1, 1) + 1
        day += 32 - dayOfNext
        month--
      }
      if (month < 0) { month += 12; year-- }
      return [year, month, day, hour, min, sec]
    },
  },
]
