/**
 * Go time zones: time.LoadLocation over IANA names through Intl (offsets), with abbreviations
 * from TZif files (./tzif.ts), a table of well-known ones, or tzdata's numeric form.
 */

import { daysFromCivil, GoTimeError, UTC, type Zone } from './calendar.js'
import { tzifAbbrev } from './tzif.js'

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
