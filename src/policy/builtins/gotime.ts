/**
 * Go's time package semantics, as OPA's time.* builtins expose them: instants are int64 Unix
 * nanoseconds (bigint here), wall clocks come from IANA zones (through Intl, the same tz
 * database Go embeds), and layouts are Go reference layouts ("2006-01-02T15:04:05Z07:00").
 */

import { readFileSync } from 'node:fs'

export const NS_PER_S = 1_000_000_000n
export const MIN_NS = -9223372036854775808n
export const MAX_NS = 9223372036854775807n

const LONG_MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December']
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday']
const SHORT_MONTHS = LONG_MONTHS.map((m) => m.slice(0, 3))
const SHORT_DAYS = LONG_DAYS.map((d) => d.slice(0, 3))

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

function floorDiv (a: bigint, b: bigint): bigint {
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

const zoneCache = new Map<string, Zone>()
let supported: Set<string> | undefined

/** Go's time.LoadLocation for "", "UTC", "Local" and IANA names (case-sensitive, like Go's tzdata lookup). */
export function loadZone (name: string): Zone {
  if (name === '' || name === 'UTC') return UTC
  const cached = zoneCache.get(name)
  if (cached !== undefined) return cached
  let tz = name
  if (name === 'Local') tz = process.env.TZ !== undefined && process.env.TZ !== '' ? process.env.TZ.replace(/^:/, '') : Intl.DateTimeFormat().resolvedOptions().timeZone
  if (name !== 'Local') {
    if (name.includes('..') || name.startsWith('/') || name.includes('\\')) throw new GoTimeError(`unknown time zone ${name}`)
    supported ??= new Set(Intl.supportedValuesOf('timeZone'))
    let dtf: Intl.DateTimeFormat
    try {
      dtf = new Intl.DateTimeFormat('en-US', { timeZone: name })
    } catch {
      throw new GoTimeError(`unknown time zone ${name}`)
    }
    const resolved = dtf.resolvedOptions().timeZone
    // Intl matches zone names case-insensitively; Go's tzdata lookup does not.
    if (!supported.has(name) && resolved !== name && resolved.toLowerCase() === name.toLowerCase()) throw new GoTimeError(`unknown time zone ${name}`)
  }
  const zone = intlZone(name, tz)
  zoneCache.set(name, zone)
  return zone
}

const ABBREVIATIONS: Record<string, [string, string]> = {}
for (const z of ['Europe/Berlin', 'Europe/Paris', 'Europe/Amsterdam', 'Europe/Madrid', 'Europe/Rome', 'Europe/Vienna', 'Europe/Zurich', 'Europe/Stockholm', 'Europe/Oslo', 'Europe/Copenhagen', 'Europe/Brussels', 'Europe/Prague', 'Europe/Warsaw', 'Europe/Budapest', 'Europe/Belgrade', 'Europe/Luxembourg', 'Europe/Monaco', 'Europe/Malta', 'Africa/Algiers', 'Africa/Tunis', 'CET']) ABBREVIATIONS[z] = ['CET', 'CEST']
for (const z of ['Europe/Athens', 'Europe/Helsinki', 'Europe/Kiev', 'Europe/Kyiv', 'Europe/Bucharest', 'Europe/Sofia', 'Europe/Riga', 'Europe/Tallinn', 'Europe/Vilnius', 'Africa/Cairo', 'EET']) ABBREVIATIONS[z] = ['EET', 'EEST']
for (const z of ['Europe/Lisbon', 'Atlantic/Canary', 'WET']) ABBREVIATIONS[z] = ['WET', 'WEST']
ABBREVIATIONS['Europe/London'] = ['GMT', 'BST']
ABBREVIATIONS['Europe/Dublin'] = ['GMT', 'IST']
ABBREVIATIONS['Europe/Moscow'] = ['MSK', 'MSK']
ABBREVIATIONS['Asia/Tokyo'] = ['JST', 'JDT']
ABBREVIATIONS['Asia/Seoul'] = ['KST', 'KDT']
ABBREVIATIONS['Asia/Kolkata'] = ['IST', 'IST']
ABBREVIATIONS['Asia/Calcutta'] = ['IST', 'IST']
ABBREVIATIONS['Asia/Shanghai'] = ['CST', 'CDT']
ABBREVIATIONS['Asia/Hong_Kong'] = ['HKT', 'HKST']
ABBREVIATIONS['Asia/Jerusalem'] = ['IST', 'IDT']
ABBREVIATIONS['Africa/Johannesburg'] = ['SAST', 'SAST']
ABBREVIATIONS['Australia/Sydney'] = ['AEST', 'AEDT']
ABBREVIATIONS['Australia/Melbourne'] = ['AEST', 'AEDT']
ABBREVIATIONS['Australia/Brisbane'] = ['AEST', 'AEDT']
ABBREVIATIONS['Australia/Adelaide'] = ['ACST', 'ACDT']
ABBREVIATIONS['Australia/Perth'] = ['AWST', 'AWDT']
ABBREVIATIONS['Pacific/Auckland'] = ['NZST', 'NZDT']

// ---- zone abbreviations from the system's TZif files (where Go's LoadLocation reads them) ----

interface TzType { off: number, dst: boolean, abbr: string }
interface TzFile { trans: number[], idx: number[], types: TzType[], footer: Array<{ name: string, off: number }> }

const TZ_DIRS = [process.env.ZONEINFO, '/usr/share/zoneinfo', '/usr/share/lib/zoneinfo', '/usr/lib/locale/TZ', '/etc/zoneinfo']
const tzFiles = new Map<string, TzFile | undefined>()

function parseTzif (buf: Buffer): TzFile | undefined {
  if (buf.length < 44 || buf.toString('latin1', 0, 4) !== 'TZif') return undefined
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((i) => buf.readUInt32BE(at + 20 + i * 4))
  let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0) as [number, number, number, number, number, number]
  let pos = 44
  let timeSize = 4
  if (buf[4] !== 0) {
    pos += timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isut
    ;[isut, isstd, leap, timecnt, typecnt, charcnt] = counts(pos) as [number, number, number, number, number, number]
    pos += 44
    timeSize = 8
  }
  const trans: number[] = []
  for (let i = 0; i < timecnt; i++) trans.push(timeSize === 8 ? Number(buf.readBigInt64BE(pos + i * 8)) : buf.readInt32BE(pos + i * 4))
  pos += timecnt * timeSize
  const idx = [...buf.subarray(pos, pos + timecnt)]
  pos += timecnt
  const raw: Array<[number, boolean, number]> = []
  for (let i = 0; i < typecnt; i++) raw.push([buf.readInt32BE(pos + i * 6), buf[pos + i * 6 + 4] === 1, buf[pos + i * 6 + 5] as number])
  pos += typecnt * 6
  const chars = buf.subarray(pos, pos + charcnt)
  const types = raw.map(([off, dst, ai]) => ({ off, dst, abbr: chars.toString('latin1', ai, chars.indexOf(0, ai) < 0 ? charcnt : chars.indexOf(0, ai)) }))
  pos += charcnt + leap * (timeSize + 4) + isstd + isut
  const footer: Array<{ name: string, off: number }> = []
  if (timeSize === 8) {
    const text = buf.toString('latin1', pos).trim()
    // POSIX TZ: std offset [dst [offset]] [,rules]; offsets count west of UTC.
    const m = /^(<[^>]+>|[A-Za-z]+)([+-]?\d+(?::\d+){0,2})(?:(<[^>]+>|[A-Za-z]+)([+-]?\d+(?::\d+){0,2})?)?/.exec(text)
    if (m !== null) {
      const secs = (x: string): number => { const sign = x.startsWith('-') ? -1 : 1; const [h, mi, se] = x.replace(/^[+-]/, '').split(':').map(Number); return sign * ((h ?? 0) * 3600 + (mi ?? 0) * 60 + (se ?? 0)) }
      const unq = (x: string): string => x.replace(/^<|>$/g, '')
      const stdOff = -secs(m[2] as string)
      footer.push({ name: unq(m[1] as string), off: stdOff })
      if (m[3] !== undefined) footer.push({ name: unq(m[3]), off: m[4] !== undefined ? -secs(m[4]) : stdOff + 3600 })
    }
  }
  return { trans, idx, types, footer }
}

function tzFile (tz: string): TzFile | undefined {
  if (tzFiles.has(tz)) return tzFiles.get(tz)
  let f: TzFile | undefined
  for (const dir of TZ_DIRS) {
    if (dir === undefined || dir === '') continue
    try {
      f = parseTzif(readFileSync(`${dir}/${tz}`))
      if (f !== undefined) break
    } catch {}
  }
  tzFiles.set(tz, f)
  return f
}

/** The abbreviation Go prints for `tz` at unix second t, given the offset in effect there. */
function tzifAbbrev (tz: string, t: number, off: number): string | undefined {
  const f = tzFile(tz)
  if (f === undefined || f.types.length === 0) return undefined
  const { trans, idx, types } = f
  if (trans.length === 0 || t < (trans[0] as number)) {
    // Go's lookupFirstZone: the first standard-time type.
    const first = types.find((x) => !x.dst) ?? types[0]
    if (first !== undefined && first.off === off) return first.abbr
  } else {
    let lo = 0; let hi = trans.length - 1
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if ((trans[mid] as number) <= t) lo = mid; else hi = mid - 1 }
    const last = t >= (trans[trans.length - 1] as number)
    const ty = types[idx[lo] as number]
    if (!last && ty !== undefined && ty.off === off) return ty.abbr
    if (last) {
      const rule = f.footer.find((x) => x.off === off)
      if (rule !== undefined) return rule.name
      if (ty !== undefined && ty.off === off) return ty.abbr
    }
  }
  for (let i = types.length - 1; i >= 0; i--) if ((types[i] as TzType).off === off) return (types[i] as TzType).abbr
  return undefined
}

function intlZone (name: string, tz: string): Zone {
  const dtf = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' })
  const abbr = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'short' })
  const offsets = new Map<number, number>()
  const offsetAt = (unixSec: number): number => {
    const hit = offsets.get(unixSec)
    if (hit !== undefined) return hit
    const parts = dtf.formatToParts(new Date(unixSec * 1000))
    const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value)
    let year = get('year')
    if (parts.find((p) => p.type === 'era')?.value === 'BC') year = 1 - year
    const wall = daysFromCivil(year, get('month'), get('day')) * 86400 + get('hour') * 3600 + get('minute') * 60 + get('second')
    const off = wall - unixSec
    if (offsets.size > 4096) offsets.clear()
    offsets.set(unixSec, off)
    return off
  }
  const abbrevAt = (unixSec: number): string => {
    const off = offsetAt(unixSec)
    const fromFile = tzifAbbrev(tz, unixSec, off)
    if (fromFile !== undefined) return fromFile
    const known = ABBREVIATIONS[tz]
    if (known !== undefined) {
      // Standard time is the smaller of the year's offsets.
      const jan = offsetAt(unixSec - ((unixSec % 31536000) + 31536000) % 31536000)
      const jul = offsetAt(unixSec - ((unixSec % 31536000) + 31536000) % 31536000 + 15552000)
      return off > Math.min(jan, jul) ? known[1] : known[0]
    }
    const s = abbr.formatToParts(new Date(unixSec * 1000)).find((p) => p.type === 'timeZoneName')?.value ?? ''
    if (/^[A-Z]{3,5}$/.test(s) && s !== 'GMT') return s
    if (off === 0 && /^(Etc\/)?(GMT|UTC|UCT|Universal|Zulu|Greenwich)/.test(tz)) return tz.includes('UTC') || tz.includes('UCT') || tz.includes('Universal') || tz.includes('Zulu') ? 'UTC' : 'GMT'
    // tzdata's numeric abbreviations: "+03", "-0330".
    const sign = off < 0 ? '-' : '+'
    const a = Math.abs(off)
    const hh = String(Math.floor(a / 3600)).padStart(2, '0')
    const mm = Math.floor((a % 3600) / 60)
    return sign + hh + (mm !== 0 ? String(mm).padStart(2, '0') : '')
  }
  return { name, offsetAt, abbrevAt }
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

// ---- layouts ----

type Std =
  | 'LongMonth' | 'Month' | 'NumMonth' | 'ZeroMonth' | 'LongWeekDay' | 'WeekDay' | 'Day' | 'UnderDay' | 'ZeroDay'
  | 'UnderYearDay' | 'ZeroYearDay' | 'Hour' | 'Hour12' | 'ZeroHour12' | 'Minute' | 'ZeroMinute' | 'Second' | 'ZeroSecond'
  | 'LongYear' | 'Year' | 'PM' | 'pm' | 'TZ'
  | 'ISO8601TZ' | 'ISO8601SecondsTZ' | 'ISO8601ShortTZ' | 'ISO8601ColonTZ' | 'ISO8601ColonSecondsTZ'
  | 'NumTZ' | 'NumSecondsTz' | 'NumShortTZ' | 'NumColonTZ' | 'NumColonSecondsTZ'
  | 'FracSecond0' | 'FracSecond9'

interface Chunk { prefix: string, std?: Std, digits?: number, sep?: string, suffix: string }

const startsWithLower = (s: string): boolean => s.length > 0 && s[0] as string >= 'a' && s[0] as string <= 'z'
const isDigitAt = (s: string, i: number): boolean => i < s.length && s[i] as string >= '0' && s[i] as string <= '9'

/** Go's nextStdChunk. */
function nextStdChunk (layout: string): Chunk {
  for (let i = 0; i < layout.length; i++) {
    const c = layout[i] as string
    const rest = layout.slice(i)
    const out = (std: Std, len: number, extra: Partial<Chunk> = {}): Chunk => ({ prefix: layout.slice(0, i), std, suffix: layout.slice(i + len), ...extra })
    switch (c) {
      case 'J':
        if (rest.startsWith('Jan')) {
          if (rest.startsWith('January')) return out('LongMonth', 7)
          if (!startsWithLower(rest.slice(3))) return out('Month', 3)
        }
        break
      case 'M':
        if (rest.startsWith('Mon')) {
          if (rest.startsWith('Monday')) return out('LongWeekDay', 6)
          if (!startsWithLower(rest.slice(3))) return out('WeekDay', 3)
        }
        if (rest.startsWith('MST')) return out('TZ', 3)
        break
      case '0':
        if (rest.length >= 2 && rest[1] as string >= '1' && rest[1] as string <= '6') {
          return out((['ZeroMonth', 'ZeroDay', 'ZeroHour12', 'ZeroMinute', 'ZeroSecond', 'Year'] as Std[])[Number(rest[1]) - 1] as Std, 2)
        }
        if (rest.length >= 3 && rest[1] === '0' && rest[2] === '2') return out('ZeroYearDay', 3)
        break
      case '1':
        if (rest.startsWith('15')) return out('Hour', 2)
        return out('NumMonth', 1)
      case '2':
        if (rest.startsWith('2006')) return out('LongYear', 4)
        return out('Day', 1)
      case '_':
        if (rest.startsWith('_2')) {
          if (rest.startsWith('_2006')) return { prefix: layout.slice(0, i + 1), std: 'LongYear', suffix: layout.slice(i + 5) }
          return out('UnderDay', 2)
        }
        if (rest.startsWith('__2')) return out('UnderYearDay', 3)
        break
      case '3': return out('Hour12', 1)
      case '4': return out('Minute', 1)
      case '5': return out('Second', 1)
      case 'P':
        if (rest.startsWith('PM')) return out('PM', 2)
        break
      case 'p':
        if (rest.startsWith('pm')) return out('pm', 2)
        break
      case '-':
        if (rest.startsWith('-070000')) return out('NumSecondsTz', 7)
        if (rest.startsWith('-07:00:00')) return out('NumColonSecondsTZ', 9)
        if (rest.startsWith('-0700')) return out('NumTZ', 5)
        if (rest.startsWith('-07:00')) return out('NumColonTZ', 6)
        if (rest.startsWith('-07')) return out('NumShortTZ', 3)
        break
      case 'Z':
        if (rest.startsWith('Z070000')) return out('ISO8601SecondsTZ', 7)
        if (rest.startsWith('Z07:00:00')) return out('ISO8601ColonSecondsTZ', 9)
        if (rest.startsWith('Z0700')) return out('ISO8601TZ', 5)
        if (rest.startsWith('Z07:00')) return out('ISO8601ColonTZ', 6)
        if (rest.startsWith('Z07')) return out('ISO8601ShortTZ', 3)
        break
      case '.': case ',':
        if (i + 1 < layout.length && (layout[i + 1] === '0' || layout[i + 1] === '9')) {
          const ch = layout[i + 1]
          let j = i + 1
          while (j < layout.length && layout[j] === ch) j++
          if (!isDigitAt(layout, j)) {
            return { prefix: layout.slice(0, i), std: ch === '0' ? 'FracSecond0' : 'FracSecond9', digits: j - (i + 1), sep: c, suffix: layout.slice(j) }
          }
        }
        break
    }
  }
  return { prefix: layout, suffix: '' }
}

export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
}

const pad = (n: number, w: number): string => {
  const s = String(Math.abs(n)).padStart(w, '0')
  return n < 0 ? '-' + s : s
}

/** Go's t.Format(layout). */
export function format (ns: bigint, zone: Zone, layout: string): string {
  const t = civil(ns, zone)
  let out = ''
  while (layout !== '') {
    const ch = nextStdChunk(layout)
    out += ch.prefix
    if (ch.std === undefined) break
    layout = ch.suffix
    switch (ch.std) {
      case 'Year': out += pad(((t.year % 100) + 100) % 100, 2); break
      case 'LongYear': out += pad(t.year, 4); break
      case 'Month': out += SHORT_MONTHS[t.month - 1]; break
      case 'LongMonth': out += LONG_MONTHS[t.month - 1]; break
      case 'NumMonth': out += String(t.month); break
      case 'ZeroMonth': out += pad(t.month, 2); break
      case 'WeekDay': out += SHORT_DAYS[t.weekday]; break
      case 'LongWeekDay': out += LONG_DAYS[t.weekday]; break
      case 'Day': out += String(t.day); break
      case 'UnderDay': out += (t.day < 10 ? ' ' : '') + String(t.day); break
      case 'ZeroDay': out += pad(t.day, 2); break
      case 'UnderYearDay': out += String(t.yday).padStart(3, ' '); break
      case 'ZeroYearDay': out += pad(t.yday, 3); break
      case 'Hour': out += pad(t.hour, 2); break
      case 'Hour12': out += String(t.hour % 12 === 0 ? 12 : t.hour % 12); break
      case 'ZeroHour12': out += pad(t.hour % 12 === 0 ? 12 : t.hour % 12, 2); break
      case 'Minute': out += String(t.minute); break
      case 'ZeroMinute': out += pad(t.minute, 2); break
      case 'Second': out += String(t.second); break
      case 'ZeroSecond': out += pad(t.second, 2); break
      case 'PM': out += t.hour >= 12 ? 'PM' : 'AM'; break
      case 'pm': out += t.hour >= 12 ? 'pm' : 'am'; break
      case 'TZ': {
        if (t.abbrev !== '') { out += t.abbrev; break }
        let zone = Math.trunc(t.offset / 60)
        out += zone < 0 ? '-' : '+'
        zone = Math.abs(zone)
        out += pad(Math.floor(zone / 60), 2) + pad(zone % 60, 2)
        break
      }
      case 'FracSecond0': case 'FracSecond9': {
        const digits = String(t.nsec).padStart(9, '0').slice(0, ch.digits)
        if (ch.std === 'FracSecond0') out += (ch.sep as string) + digits
        else {
          const trimmed = String(t.nsec).padStart(9, '0').slice(0, ch.digits).replace(/0+$/, '')
          if (trimmed !== '') out += (ch.sep as string) + trimmed
        }
        break
      }
      default: {
        // Numeric and ISO 8601 zones.
        const iso = ch.std.startsWith('ISO')
        if (iso && t.offset === 0) { out += 'Z'; break }
        let zone = Math.trunc(t.offset / 60)
        let absoffset = Math.abs(t.offset)
        out += zone < 0 ? '-' : '+'
        zone = Math.abs(zone)
        absoffset = absoffset % 60
        out += pad(Math.floor(zone / 60), 2)
        if (ch.std === 'ISO8601ColonTZ' || ch.std === 'NumColonTZ' || ch.std === 'ISO8601ColonSecondsTZ' || ch.std === 'NumColonSecondsTZ') out += ':'
        if (ch.std !== 'NumShortTZ' && ch.std !== 'ISO8601ShortTZ') out += pad(zone % 60, 2)
        if (ch.std === 'ISO8601SecondsTZ' || ch.std === 'NumSecondsTz' || ch.std === 'NumColonSecondsTZ' || ch.std === 'ISO8601ColonSecondsTZ') {
          if (ch.std === 'NumColonSecondsTZ' || ch.std === 'ISO8601ColonSecondsTZ') out += ':'
          out += pad(absoffset, 2)
        }
      }
    }
  }
  return out
}

const bad = (): never => { throw new GoTimeError('cannot parse') }

function getnum (s: string, fixed: boolean): [number, string] {
  if (!isDigitAt(s, 0)) bad()
  if (!isDigitAt(s, 1)) {
    if (fixed) bad()
    return [Number(s[0]), s.slice(1)]
  }
  return [Number(s.slice(0, 2)), s.slice(2)]
}

function getnum3 (s: string, fixed: boolean): [number, string] {
  let n = 0
  let i = 0
  for (; i < 3 && isDigitAt(s, i); i++) n = n * 10 + Number(s[i])
  if (i === 0 || (fixed && i !== 3)) bad()
  return [n, s.slice(i)]
}

function skip (value: string, prefix: string): string {
  while (prefix.length > 0) {
    if (prefix[0] === ' ') {
      if (value.length > 0 && value[0] !== ' ') bad()
      prefix = prefix.replace(/^ +/, '')
      value = value.replace(/^ +/, '')
      continue
    }
    if (value.length === 0 || value[0] !== prefix[0]) bad()
    prefix = prefix.slice(1)
    value = value.slice(1)
  }
  return value
}

function lookup (tab: string[], val: string): [number, string] {
  for (let i = 0; i < tab.length; i++) {
    const v = tab[i] as string
    if (val.length >= v.length && val.slice(0, v.length).toLowerCase() === v.toLowerCase()) return [i, val.slice(v.length)]
  }
  return bad()
}

function parseNanoseconds (value: string, nbytes: number): number {
  if (value[0] !== '.' && value[0] !== ',') bad()
  if (nbytes > 10) { value = value.slice(0, 10); nbytes = 10 }
  const digits = value.slice(1, nbytes)
  if (!/^\d+$/.test(digits)) bad()
  return Number(digits) * 10 ** (10 - nbytes)
}

function parseTimeZone (value: string): number {
  if (value.length < 3) return 0
  if (value.startsWith('ChST') || value.startsWith('MeST')) return 4
  if (value.startsWith('GMT')) {
    // parseGMT: GMT followed by an optional signed hour offset.
    const v = value.slice(3)
    if (v.length === 0 || (v[0] !== '-' && v[0] !== '+')) return 3
    const m = /^[+-](\d+)/.exec(v)
    if (m === null) return 3
    const n = Number(m[1])
    if (n === 0 || n > 24 || m[1] !== String(n)) return 3
    return 3 + 1 + (m[1] as string).length
  }
  if (value[0] === '+' || value[0] === '-') {
    const m = /^[+-](\d+)/.exec(value)
    if (m === null) return 0
    const n = Number(m[1])
    if (n > 24 || m[1] !== String(n)) return 0
    return 1 + (m[1] as string).length
  }
  let nUpper = 0
  while (nUpper < 6 && nUpper < value.length && /[A-Z]/.test(value[nUpper] as string)) nUpper++
  switch (nUpper) {
    case 0: case 1: case 2: case 6: return 0
    case 5: return value[4] === 'T' ? 5 : 0
    case 4: return value[3] === 'T' || value.startsWith('WITA') ? 4 : 0
    case 3: return 3
  }
  return 0
}

/** Go's time.Parse(layout, value) with UTC as the default and local zone. */
export function parse (layout: string, value: string): bigint {
  let year = 0; let month = -1; let day = -1; let yday = -1; let hour = 0; let min = 0; let sec = 0; let nsec = 0
  let pmSet = false; let amSet = false
  let utc = false; let zoneOffset: number | undefined; let zoneName = ''
  for (;;) {
    const ch = nextStdChunk(layout)
    value = skip(value, ch.prefix)
    if (ch.std === undefined) {
      if (value.length !== 0) throw new GoTimeError('extra text')
      break
    }
    layout = ch.suffix
    const std = ch.std
    switch (std) {
      case 'Year': {
        if (value.length < 2) bad()
        const p = value.slice(0, 2)
        if (!/^\d\d$/.test(p)) bad()
        value = value.slice(2)
        year = Number(p)
        year += year >= 69 ? 1900 : 2000
        break
      }
      case 'LongYear': {
        if (value.length < 4 || !isDigitAt(value, 0)) bad()
        const p = value.slice(0, 4)
        if (!/^\d{4}$/.test(p)) bad()
        value = value.slice(4)
        year = Number(p)
        break
      }
      case 'Month': [month, value] = lookup(SHORT_MONTHS, value); month++; break
      case 'LongMonth': [month, value] = lookup(LONG_MONTHS, value); month++; break
      case 'NumMonth': case 'ZeroMonth':
        [month, value] = getnum(value, std === 'ZeroMonth')
        if (month <= 0 || month > 12) throw new GoTimeError('month out of range')
        break
      case 'WeekDay': value = lookup(SHORT_DAYS, value)[1]; break
      case 'LongWeekDay': value = lookup(LONG_DAYS, value)[1]; break
      case 'Day': case 'UnderDay': case 'ZeroDay':
        if (std === 'UnderDay' && value.length > 0 && value[0] === ' ') value = value.slice(1)
        ;[day, value] = getnum(value, std === 'ZeroDay')
        break
      case 'UnderYearDay': case 'ZeroYearDay':
        for (let i = 0; i < 2; i++) if (std === 'UnderYearDay' && value.length > 0 && value[0] === ' ') value = value.slice(1)
        ;[yday, value] = getnum3(value, std === 'ZeroYearDay')
        if (yday < 1 || yday > 366) throw new GoTimeError('day-of-year out of range')
        break
      case 'Hour':
        [hour, value] = getnum(value, false)
        if (hour < 0 || hour >= 24) throw new GoTimeError('hour out of range')
        break
      case 'Hour12': case 'ZeroHour12':
        [hour, value] = getnum(value, std === 'ZeroHour12')
        if (hour < 0 || hour > 12) throw new GoTimeError('hour out of range')
        break
      case 'Minute': case 'ZeroMinute':
        [min, value] = getnum(value, std === 'ZeroMinute')
        if (min < 0 || min >= 60) throw new GoTimeError('minute out of range')
        break
      case 'Second': case 'ZeroSecond': {
        [sec, value] = getnum(value, std === 'ZeroSecond')
        if (sec < 0 || sec >= 60) throw new GoTimeError('second out of range')
        if (value.length >= 2 && (value[0] === '.' || value[0] === ',') && isDigitAt(value, 1)) {
          const next = nextStdChunk(layout)
          if (next.std === 'FracSecond0' || next.std === 'FracSecond9') break
          let n = 2
          while (n < value.length && isDigitAt(value, n)) n++
          nsec = parseNanoseconds(value, n)
          value = value.slice(n)
        }
        break
      }
      case 'PM': case 'pm': {
        if (value.length < 2) bad()
        const p = value.slice(0, 2)
        value = value.slice(2)
        if (p === (std === 'PM' ? 'PM' : 'pm')) pmSet = true
        else if (p === (std === 'PM' ? 'AM' : 'am')) amSet = true
        else bad()
        break
      }
      case 'TZ': {
        if (value.length >= 3 && value.startsWith('UTC')) { utc = true; value = value.slice(3); break }
        const n = parseTimeZone(value)
        if (n === 0) bad()
        zoneName = value.slice(0, n)
        value = value.slice(n)
        break
      }
      case 'FracSecond0': {
        const ndigit = 1 + (ch.digits as number)
        if (value.length < ndigit) bad()
        nsec = parseNanoseconds(value, ndigit)
        value = value.slice(ndigit)
        break
      }
      case 'FracSecond9': {
        if (value.length < 2 || (value[0] !== '.' && value[0] !== ',') || !isDigitAt(value, 1)) break
        let i = 0
        while (i + 1 < value.length && isDigitAt(value, i + 1)) i++
        nsec = parseNanoseconds(value, 1 + i)
        value = value.slice(1 + i)
        break
      }
      default: {
        if (std.startsWith('ISO') && value.length >= 1 && value[0] === 'Z') { value = value.slice(1); utc = true; break }
        let sign: string; let hh: string; let mm: string; let ss: string
        if (std === 'ISO8601ColonTZ' || std === 'NumColonTZ') {
          if (value.length < 6 || value[3] !== ':') bad()
          ;[sign, hh, mm, ss, value] = [value.slice(0, 1), value.slice(1, 3), value.slice(4, 6), '00', value.slice(6)]
        } else if (std === 'NumShortTZ' || std === 'ISO8601ShortTZ') {
          if (value.length < 3) bad()
          ;[sign, hh, mm, ss, value] = [value.slice(0, 1), value.slice(1, 3), '00', '00', value.slice(3)]
        } else if (std === 'ISO8601ColonSecondsTZ' || std === 'NumColonSecondsTZ') {
          if (value.length < 9 || value[3] !== ':' || value[6] !== ':') bad()
          ;[sign, hh, mm, ss, value] = [value.slice(0, 1), value.slice(1, 3), value.slice(4, 6), value.slice(7, 9), value.slice(9)]
        } else if (std === 'ISO8601SecondsTZ' || std === 'NumSecondsTz') {
          if (value.length < 7) bad()
          ;[sign, hh, mm, ss, value] = [value.slice(0, 1), value.slice(1, 3), value.slice(3, 5), value.slice(5, 7), value.slice(7)]
        } else {
          if (value.length < 5) bad()
          ;[sign, hh, mm, ss, value] = [value.slice(0, 1), value.slice(1, 3), value.slice(3, 5), '00', value.slice(5)]
        }
        const hr = getnum(hh, true)[0]; const m = getnum(mm, true)[0]; const s = getnum(ss, true)[0]
        if (hr > 24 || m > 60 || s > 60) throw new GoTimeError('time zone offset out of range')
        zoneOffset = (hr * 60 + m) * 60 + s
        if (sign === '-') zoneOffset = -zoneOffset
        else if (sign !== '+') bad()
      }
    }
  }
  if (pmSet && hour < 12) hour += 12
  else if (amSet && hour === 12) hour = 0
  if (yday >= 0) {
    if (yday > 365 && !isLeap(year)) throw new GoTimeError('day-of-year out of range')
    let d = 0; let m = 0
    let yd = yday
    if (isLeap(year)) {
      if (yd === 31 + 29) { m = 2; d = 29 } else if (yd > 31 + 29) yd--
    }
    if (m === 0) {
      const before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365]
      m = Math.floor((yd - 1) / 31) + 1
      if ((before[m] as number) < yd) m++
      d = yd - (before[m - 1] as number)
    }
    if (month >= 0 && month !== m) throw new GoTimeError('day-of-year does not match month')
    month = m
    if (day >= 0 && day !== d) throw new GoTimeError('day-of-year does not match day')
    day = d
  } else {
    if (month < 0) month = 1
    if (day < 0) day = 1
  }
  if (day < 1 || day > daysIn(month, year)) throw new GoTimeError('day out of range')
  const base = goDate(year, month, day, hour, min, sec, BigInt(nsec), UTC)
  if (utc) return base
  if (zoneOffset !== undefined) return base - BigInt(zoneOffset) * NS_PER_S
  // A zone abbreviation only labels the wall time (Go: FixedZone(name, offset) via setLoc keeps the instant).
  return base
}

// ---- durations ----

const UNITS: Record<string, bigint> = {
  ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: NS_PER_S, m: 60n * NS_PER_S, h: 3600n * NS_PER_S,
  // OPA extends Go's units with days, weeks and (365-day) years.
  d: 86400n * NS_PER_S, w: 7n * 86400n * NS_PER_S, y: 365n * 86400n * NS_PER_S,
}
const TWO63 = 1n << 63n

/** Go's time.ParseDuration. */
export function parseDuration (orig: string): bigint {
  const invalid = (): never => { throw new GoTimeError(`time: invalid duration "${orig}"`) }
  let s = orig
  let d = 0n
  let neg = false
  if (s !== '' && (s[0] === '-' || s[0] === '+')) { neg = s[0] === '-'; s = s.slice(1) }
  if (s === '0') return 0n
  if (s === '') invalid()
  while (s !== '') {
    let v = 0n; let f = 0n; let scale = 1
    if (!(s[0] === '.' || isDigitAt(s, 0))) invalid()
    let i = 0
    for (; i < s.length && isDigitAt(s, i); i++) {
      if (v > TWO63 / 10n) invalid()
      v = v * 10n + BigInt(s[i] as string)
      if (v > TWO63) invalid()
    }
    const pre = i > 0
    s = s.slice(i)
    let post = false
    if (s !== '' && s[0] === '.') {
      s = s.slice(1)
      let j = 0; let overflow = false
      for (; j < s.length && isDigitAt(s, j); j++) {
        if (overflow) continue
        if (f > (TWO63 - 1n) / 10n) { overflow = true; continue }
        const y = f * 10n + BigInt(s[j] as string)
        if (y > TWO63) { overflow = true; continue }
        f = y
        scale *= 10
      }
      post = j > 0
      s = s.slice(j)
    }
    if (!pre && !post) invalid()
    let k = 0
    for (; k < s.length; k++) if (s[k] === '.' || isDigitAt(s, k)) break
    if (k === 0) throw new GoTimeError(`time: missing unit in duration "${orig}"`)
    const u = s.slice(0, k)
    s = s.slice(k)
    const unit = UNITS[u]
    if (unit === undefined) throw new GoTimeError(`time: unknown unit "${u}" in duration "${orig}"`)
    if (v > TWO63 / unit) invalid()
    v *= unit
    if (f > 0n) {
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)))
      if (v > TWO63) invalid()
    }
    d += v
    if (d > TWO63) invalid()
  }
  if (neg) return -d
  if (d > TWO63 - 1n) invalid()
  return d
}
