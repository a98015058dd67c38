/** rand.intn (OPA v1/topdown/numbers.go): random, so behind a switch and cached per query like OPA. */
import { randomBytes, randomInt } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { RawJson } from './types.js'
import { int, int64, str } from './args.js'

/** node:crypto's randomInt takes ranges below 2^48 only. */
const RANDOM_INT_LIMIT = 2n ** 48n

/** A uniform integer in [0, bound) for any int64 bound (Go's rand.Intn range), by rejection sampling. */
function uniformBelow (bound: bigint): bigint {
  if (bound <= RANDOM_INT_LIMIT) return BigInt(randomInt(0, Number(bound)))
  const bits = bound.toString(2).length
  const mask = (1n << BigInt(bits)) - 1n
  for (;;) {
    const v = BigInt('0x' + randomBytes(8).toString('hex')) & mask
    if (v < bound) return v
  }
}

export const randBuiltins: BuiltinSpec[] = [
  {
    name: 'rand.intn',
    nondeterministic: true,
    requiresSwitch: 'rand_intn',
    impl: (ctx, [k, n]) => {
      const b = 'rand.intn'
      const key = str(b, k, 1)
      const max = int64(b, int(b, n, 2))
      if (max === 0n) return 0
      const bound = max < 0n ? -max : max
      // OPA caches the answer per query under "<key>-<|n|>": the same call gives the same number
      // throughout one decision, however many times the policy makes it.
      const cacheKey = `rand.intn:${key}-${bound}`
      const hit = ctx.ndCache?.get(cacheKey)
      if (hit !== undefined) return hit
      const v = uniformBelow(bound)
      const out = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : new RawJson(v.toString())
      ctx.ndCache?.set(cacheKey, out)
      return out
    },
  },
]
