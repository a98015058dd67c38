/**
 * Go's time package semantics, as OPA's time.* builtins expose them: instants are int64 Unix
 * nanoseconds (bigint here), wall clocks come from IANA zones (through Intl, the same tz
 * database Go embeds), and layouts are Go reference layouts ("2006-01-02T15:04:05Z07:00").
 *
 * The entry module: the implementation lives in ./gotime/ (calendar and instants, zones and
 * TZif abbreviations, layout tokenizing, formatting, parsing, durations).
 */

export { civil, civilFromDays, daysFromCivil, daysIn, fixedZone, GoTimeError, goDate, inNsRange, isLeap, MAX_NS, MIN_NS, NS_PER_S, UTC } from './gotime/calendar.js'
export type { Civil, Zone } from './gotime/calendar.js'
export { loadZone } from './gotime/zones.js'
export { NAMED_LAYOUTS } from './gotime/layout.js'
export { format } from './gotime/format.js'
export { parse } from './gotime/parse.js'
export { parseDuration } from './gotime/duration.js'
