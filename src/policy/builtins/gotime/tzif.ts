/**
 * Go time zones: zone abbreviations read from the system's TZif files (where Go's LoadLocation
 * reads them), with the POSIX TZ footer for instants past the last transition.
 */

import { readFileSync } from 'node:fs'

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
export function tzifAbbrev (tz: string, t: number, off: number): string | undefined {
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
