/** numbers.range_step (OPA v1/topdown/numbers.go); numbers.range is native wasm. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RawJson } from './types.js'
import { int } from './args.js'

const MAX_RANGE = 10_000_000n

export const numbersBuiltins: BuiltinSpec[] = [
  {
    name: 'numbers.range_step',
    impl: (_ctx, [a, c, s]) => {
      const b = 'numbers.range_step'
      const x = int(b, a, 1); const y = int(b, c, 2); const step = int(b, s, 3)
      if (step <= 0n) throw new BuiltinError(b, 'step must be a positive integer')
      const n = (x > y ? x - y : y - x) / step
      if (n > MAX_RANGE) throw new BuiltinError(b, 'range too large')
      const out: string[] = []
      if (x <= y) for (let v = x; v <= y; v += step) out.push(v.toString())
      else for (let v = x; v >= y; v -= step) out.push(v.toString())
      return new RawJson('[' + out.join(',') + ']')
    },
  },
]
