/**
 * Go time layouts: the reference-layout tokenizer (Go's nextStdChunk) shared by format and parse,
 * and the named layouts (RFC3339, ANSIC, ...).
 */

export type Std =
  | 'LongMonth' | 'Month' | 'NumMonth' | 'ZeroMonth' | 'LongWeekDay' | 'WeekDay' | 'Day' | 'UnderDay' | 'ZeroDay'
  | 'UnderYearDay' | 'ZeroYearDay' | 'Hour' | 'Hour12' | 'ZeroHour12' | 'Minute' | 'ZeroMinute' | 'Second' | 'ZeroSecond'
  | 'LongYear' | 'Year' | 'PM' | 'pm' | 'TZ'
  | 'ISO8601TZ' | 'ISO8601SecondsTZ' | 'ISO8601ShortTZ' | 'ISO8601ColonTZ' | 'ISO8601ColonSecondsTZ'
  | 'NumTZ' | 'NumSecondsTz' | 'NumShortTZ' | 'NumColonTZ' | 'NumColonSecondsTZ'
  | 'FracSecond0' | 'FracSecond9'

export interface Chunk { prefix: string, std?: Std, digits?: number, sep?: string, suffix: string }

const startsWithLower = (s: string): boolean => s.length > 0 && s[0] as string >= 'a' && s[0] as string <= 'z'
export const isDigitAt = (s: string, i: number): boolean => i < s.length && s[i] as string >= '0' && s[i] as string <= '9'

/** Go's nextStdChunk. */
export function nextStdChunk (layout: string): Chunk {
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
