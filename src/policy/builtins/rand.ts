/** rand.intn (OPA v1/topdown/numbers.go): random, so behind a switch and cached per query like OPA. */
import { randomInt } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { int, str } from './args.js'

export const randBuiltins: BuiltinSpec[] = [
  {
    name: 'rand.intn',
    nondeterministic: true,
    requiresSwitch: 'rand_intn',
    impl: (ctx, [k, n]) => {
      const b = 'rand.intn'
      const key = str(b, k, 1)
      const max = int(b, n, 2)
      if (max === 0n) return 0
      const bound = max < 0n ? -max : max
      if (bound > BigInt(Number.MAX_SAFE_INTEGER)) throw new BuiltinError(b, 'operand 2 too large')
      const cacheKey = `rand.intn:${JSON.stringify(key)}:${bound}`
      const hit = ctx.ndCache?.get(cacheKey)
      if (hit !== undefined) return hit
      const v = randomInt(0, Number(bound))
      ctx.ndCache?.set(cacheKey, v)
      return v
    },
  },
]
