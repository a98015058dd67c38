import { table, type Group } from './types.js'

// 2024-02-29T12:34:56.123456789Z, a leap day.
const LEAP = 1709210096123456789n
// 2024-03-10T06:59:59Z / 07:00:00Z: US Eastern springs forward (02:00 EST -> 03:00 EDT).
const SPRING = 1710053999000000000n
// 2024-11-03T05:30:00Z: inside the repeated 01:00-02:00 hour in US Eastern.
const FALL = 1730611800000000000n
// 2024-10-27T00:59:59.999999999Z: last instant of CEST in Europe/Berlin.
const BERLIN = 1729990799999999999n
const MAXI = 9223372036854775807n
const MINI = -9223372036854775808n

const tz = ['UTC', '', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham', 'America/St_Johns', 'Local']
const instants: unknown[] = [0, -1, 1, LEAP, SPRING, SPRING + 1_000_000_000n, FALL, BERLIN, BERLIN + 1n, MAXI, MINI, 951782400000000000n, -2208988800000000000n, 4102444800000000000n]

const tzCases: unknown[][] = []
for (const t of instants) tzCases.push([t])
for (const z of tz) for (const t of [LEAP, SPRING, FALL, BERLIN, 0, MAXI, MINI]) tzCases.push([[t, z]])
tzCases.push([1.5], [[]], [['x']], [[0, 1]], ['0'], [[0, 'Mars/Olympus']], [[0, 'america/new_york']], [[0, 'EST5EDT']], [[0, 'Etc/GMT+5']], [1e300], [9223372036854775808n], [1e18], [[1e18, 'US/Pacific']])

const layouts = ['RFC3339', 'RFC3339Nano', 'ANSIC', 'UnixDate', 'RubyDate', 'RFC822', 'RFC822Z', 'RFC850', 'RFC1123', 'RFC1123Z',
  '2006-01-02', '15:04:05.000', '3:04PM', '03:04:05.999 pm', 'Mon Jan _2 2006 002 __2', 'Z07', '-07:00:00', 'Z070000', '.00,000 .9', 'January Monday MST', '']

export const timeGroup = (): Group => ({
  name: 'time',
  tables: [
    { builtin: 'time.now_ns', call: 'time.now_ns() == time.now_ns()', cases: [{ args: [] }] },
    { builtin: 'time.now_ns', call: 'time.now_ns() > 1700000000000000000', cases: [{ args: [] }] },
    table('time.parse_rfc3339_ns', [
      ['2024-02-29T12:34:56.123456789Z'], ['2024-02-29T12:34:56Z'], ['2023-02-29T00:00:00Z'], ['2024-03-10T02:30:00-05:00'],
      ['1970-01-01T00:00:00+00:00'], ['1677-09-21T00:12:43.145224192Z'], ['1677-09-21T00:12:43.145224191Z'], ['2262-04-11T23:47:16.854775807Z'],
      ['2262-04-11T23:47:16.854775808Z'], ['2024-01-01T24:00:00Z'], ['2024-01-01t00:00:00z'], ['2024-01-01T00:00:00'], ['2024-01-01 00:00:00Z'],
      ['2024-01-01T00:00:00.1234567891234Z'], ['2024-01-01T00:00:00+14:30'], ['2024-01-01T00:00:00+24:00'], ['2024-01-01T00:00:60Z'],
      ['0001-01-01T00:00:00Z'], [''], [42], ['2024-1-01T00:00:00Z'], ['2024-12-31T23:59:59,5Z'], ['2024-06-30T12:00:00-00:30'],
    ]),
    table('time.parse_ns', [
      ['2006-01-02', '2024-02-29'], ['2006-01-02', '2023-02-29'], ['RFC822', '02 Jan 24 15:04 MST'], ['RFC822Z', '02 Jan 69 15:04 -0700'],
      ['RFC1123', 'Thu, 29 Feb 2024 12:00:00 GMT'], ['RFC1123', 'Thu, 29 Feb 2024 12:00:00 GMT+3'], ['RFC1123Z', 'Thu, 29 Feb 2024 12:00:00 +0530'],
      ['ANSIC', 'Thu Feb  1 12:00:00 2024'], ['ANSIC', 'Thu Feb 1 12:00:00 2024'], ['UnixDate', 'Thu Feb 29 12:00:00 UTC 2024'],
      ['RubyDate', 'Thu Feb 29 12:00:00 -0800 2024'], ['RFC850', 'Thursday, 29-Feb-24 12:00:00 CET'], ['RFC3339Nano', '2024-02-29T12:34:56.1Z'],
      ['15:04', '23:59'], ['3:04PM', '12:30AM'], ['3:04pm', '1:00pm'], ['Jan 2, 2006', 'feb 29, 2024'], ['January 2006', 'March 2024'],
      ['2006-002', '2024-060'], ['2006-002', '2023-366'], ['2006 __2', '2024 366'], ['2006-01-02T15:04:05.000Z07:00', '2024-01-01T00:00:00.12Z'],
      ['2006-01-02T15:04:05.000Z07:00', '2024-01-01T00:00:00.123+01:00'], ['2006-01-02 15:04:05 -07:00:00', '2024-01-01 00:00:00 +01:02:03'],
      ['2006-01-02', '2024-02-29 extra'], ['2006-01-02', ''], ['', ''], ['x', 'x'], ['2006', '1600'], ['2006', '2263'], ['06', '68'],
      ['Mon 2006-01-02', 'Fri 2024-02-29'], ['2006-01-02 MST', '2024-02-29 PDT'], ['2006-01-02 MST', '2024-02-29 pst'], [1, 'x'],
    ]),
    table('time.parse_duration_ns', [
      ['1h'], ['-1.5h'], ['+3m20s'], ['1h2m3s4ms5us6ns'], ['1µs'], ['1μs'], ['0'], ['-0'], ['0s'], [''], ['1'], ['1d'], ['.5s'], ['5.s'], ['.s'],
      ['2562047h47m16.854775807s'], ['2562047h47m16.854775808s'], ['-2562047h47m16.854775808s'], ['9223372036854775807ns'], ['9223372036854775808ns'],
      ['1.0000000000000000000001s'], ['0.333333333333h'], ['1h-1m'], ['1 h'], ['1H'], [3], ['1.5w'], ['1y'], ['106751d'], ['106752d'], ['1dh'], ['1.2.3s'], ['-1d12h'],
    ]),
    table('time.date', tzCases),
    table('time.clock', tzCases),
    table('time.weekday', tzCases),
    table('time.format', [
      ...tzCases,
      ...layouts.flatMap((l) => [[[LEAP, 'UTC', l]], [[FALL, 'America/New_York', l]], [[BERLIN, 'Europe/Berlin', l]], [[-1, 'Asia/Kolkata', l]]]),
      [[0, 'UTC', 5]],
    ]),
    table('time.format', [...tz, 'Europe/London', 'Europe/Dublin', 'Europe/Moscow', 'Asia/Tokyo', 'Asia/Shanghai', 'Asia/Singapore', 'Asia/Dubai', 'America/Los_Angeles',
      'America/Sao_Paulo', 'America/Phoenix', 'Pacific/Honolulu', 'Africa/Casablanca', 'Asia/Tehran', 'Australia/Adelaide', 'Etc/GMT-14', 'Europe/Lisbon', 'Asia/Jerusalem', 'America/Halifax']
      .flatMap((z) => [LEAP, FALL, 0n, -2208988800000000000n].map((t) => [[t, z, 'MST -07:00:00 Z07']]))),
    table('time.add_date', [
      [LEAP, 1, 0, 0], [LEAP, -4, 0, 0], [LEAP, 0, 1, 0], [LEAP, 0, 0, 366], [LEAP, 0, -14, -30], [[LEAP, 'America/New_York'], 0, 0, 10],
      [[SPRING - 3600_000_000_000n, 'America/New_York'], 0, 0, 1], [[FALL, 'America/New_York'], 0, 0, 1], [[FALL, 'America/New_York'], 0, 0, -1],
      [1e9, 0, 13, 0], [0, 300, 0, 0], [0, -300, 0, 0], [MAXI, 0, 0, 1], [0, 1.5, 0, 0], [0, '1', 0, 0], [0, 0, 0, 9223372036854775807n],
      [[BERLIN, 'Europe/Berlin'], 0, 0, 1], [[1711846800000000000n, 'Europe/Berlin'], 0, 0, -1], [0, 0, 0, 0],
    ]),
    table('time.diff', [
      [0, LEAP], [LEAP, 0], [LEAP, LEAP], [[LEAP, 'America/New_York'], [0, 'UTC']], [[0, 'Asia/Kolkata'], LEAP], [SPRING, FALL], [[SPRING, 'America/New_York'], [FALL, 'America/New_York']],
      [MINI, MAXI], [1706659200000000000n, 1709251200000000000n], [1709164800000000000n, 1711843200000000000n], [[0, 'x/y'], 0], [-1, 1], ['0', 0],
    ]),
  ],
})
