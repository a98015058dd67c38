/**
 * Go time layout parsing: time.Parse(layout, value), with its value scanners (numbers, names,
 * fractional seconds, zone abbreviations and numeric offsets).
 */

import { daysIn, GoTimeError, goDate, isLeap, LONG_DAYS, LONG_MONTHS, NS_PER_S, SHORT_DAYS, SHORT_MONTHS, UTC } from './calendar.js'
import { isDigitAt, nextStdChunk } from './layout.js'

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
  let utc = false; let zoneOffset: number | undefined
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
        // A zone name (other than UTC, above) does not move the instant: Go looks it up in the
        // local zone (UTC for OPA) and otherwise attaches a fake zone without shifting the time
        // (`opa eval` gives the same nanoseconds for "PST" and "GMT+3" as for no zone).
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
