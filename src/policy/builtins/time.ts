import type { BuiltinSpec } from './types.js'
import { RawJson } from './types.js'

/**
 * time.* builtins. OPA reads the clock once per query, so every call to time.now_ns() in one
 * decision returns the same value; the EvalContext memoizes it.
 */
export const timeBuiltins: BuiltinSpec[] = [
  {
    name: 'time.now_ns',
    nondeterministic: true,
    impl: (ctx) => new RawJson(ctx.nowNs().toString()),
  },
]
