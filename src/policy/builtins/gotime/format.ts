/**
 * Go time layout formatting: t.Format(layout) for an instant in a zone.
 */

import { civil, LONG_DAYS, LONG_MONTHS, SHORT_DAYS, SHORT_MONTHS, type Zone } from './calendar.js'
import { nextStdChunk } from './layout.js'

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
