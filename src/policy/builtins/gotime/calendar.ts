/**
 * Go time core: Unix-nanosecond constants, month/day names, GoTimeError, the proleptic Gregorian
 * civil calendar, the Zone type (UTC, fixed zones) and instants read in a zone (civil, goDate).
 * Split out of ../gotime.ts, which re-exports the public names.
 */

export const NS_PER_S = 1_000_000_000n
export const MIN_NS = -9223372036854775808n
export const MAX_NS = 9223372036854775807n

export const LONG_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']
export const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
export const SHORT_MONTHS = LONG_MONTHS.map((m) => m.slice(0, 3))
export const SHORT_DAYS = LONG_DAYS.map((d) => d.slice(0, 3))

export class GoTimeError extends Error {}

// ---- civil calendar (proleptic Gregorian), days since 1970-01-01 ----

export function daysFromCivil (y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

export function civilFromDays (z: number): [number, number, number] {
  z += 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const y = yoe + era * 400
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp + (mp < 10 ? 3 : -9)
  return [y + (m <= 2 ? 1 : 0), m, d]
}

export function isLeap (y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
}

export function daysIn (m: number, y: number): number {
  if (m === 2) return isLeap(y) ? 29 : 28
  return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] as number
}

export function floorDiv (a: bigint, b: bigint): bigint {
  const q = a / b
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q
}

// ---- zones ----

/** A location: UTC, a named IANA zone, or a fixed offset (from parsing). */
export interface Zone {
  name: string
  /** Offset east of UTC in seconds at the given Unix second. */
  offsetAt: (unixSec: number) => number
  /** Abbreviation at the given Unix second (Go: "EST", "CEST", "+03"). */
  abbrevAt: (unixSec: number) => string
}

export const UTC: Zone = { name: 'UTC', offsetAt: () => 0, abbrevAt: () => 'UTC' }

export function fixedZone (name: string, offset: number): Zone {
  return { name, offsetAt: () => offset, abbrevAt: () => name }
}

// ---- instants in a zone ----

export interface Civil {
  year: number, month: number, day: number, hour: number, minute: number, second: number, nsec: number
  weekday: number, yday: number, offset: number, abbrev: string
}

/** Go's t.In(zone) fields for Unix nanoseconds `ns`. */
export function civil (ns: bigint, zone: Zone): Civil {
  const sec = floorDiv(ns, NS_PER_S)
  const nsec = Number(ns - sec * NS_PER_S)
  const offset = zone.offsetAt(Number(sec))
  const wall = sec + BigInt(offset)
  const days = Number(floorDiv(wall, 86400n))
  const sod = Number(wall - BigInt(days) * 86400n)
  const [year, month, day] = civilFromDays(days)
  return {
    year, month, day,
    hour: Math.floor(sod / 3600), minute: Math.floor((sod % 3600) / 60), second: sod % 60, nsec,
    weekday: ((days % 7) + 11) % 7, // 1970-01-01 was a Thursday
    yday: days - daysFromCivil(year, 1, 1) + 1,
    offset, abbrev: zone.abbrevAt(Number(sec)),
  }
}

/** Go's time.Date(year, month, day, hour, min, sec, nsec, loc) in Unix nanoseconds (fields normalized). */
export function goDate (year: number, month: number, day: number | bigint, hour: number, min: number, sec: number, nsec: bigint, zone: Zone): bigint {
  // Normalize month into year, then let day arithmetic carry the rest.
  const m0 = month - 1
  year += Math.floor(m0 / 12)
  month = ((m0 % 12) + 12) % 12 + 1
  // Go's int arithmetic wraps at 64 bits.
  let wall = BigInt.asIntN(64, (BigInt(daysFromCivil(year, month, 1)) + BigInt(day) - 1n) * 86400n + BigInt(hour) * 3600n + BigInt(min) * 60n + BigInt(sec))
  wall += floorDiv(nsec, NS_PER_S)
  const ns = ((nsec % NS_PER_S) + NS_PER_S) % NS_PER_S
  // Go: look up the offset at the wall time read as UTC, then re-check at the resulting instant.
  const o1 = zone.offsetAt(Number(wall))
  const o2 = zone.offsetAt(Number(wall - BigInt(o1)))
  const unix = wall - BigInt(o2)
  return unix * NS_PER_S + ns
}

export function inNsRange (ns: bigint): boolean {
  return ns >= MIN_NS && ns <= MAX_NS
}
