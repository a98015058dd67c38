import { table, type Group } from './types.js'

const inputs = ['', '0', '1', '1.5', '.5', '5.', '10K', '10k', '10Ki', '10ki', '10KiB', '10kb', '10KB', '1M', '1m', '1Mi', '1mi', '1MiB',
  '1G', '1gi', '1T', '1ti', '1P', '1pi', '1E', '1Ei', '1.1kb', '0.1m', '0.3m', '1e3', '1E3k', '1e-3', '1e+3M', '1e1234567', '1e123456',
  '-1', '-1.5Ki', '+2k', '1-2', '"10"', '10 K', 'K', 'x10', '10x', '10mb', '10Mb', '10MB', '1.0000000001', '123456789012345678901234567890',
  '3.14159265358979323846264338327950288', '0.00000000001m', '1/2', '1..2', '١٢', '0x10', 'ki']

export const unitsGroup = (): Group => ({
  name: 'units',
  tables: [
    table('units.parse', [...inputs.map((s) => [s]), [5]]),
    table('units.parse_bytes', [...inputs.map((s) => [s]), [5]]),
  ],
})
