/** trace (OPA: a note in the evaluation's trace) writes to the decision's debug output. */
import type { BuiltinSpec } from './types.js'
import { str } from './args.js'

export const traceBuiltins: BuiltinSpec[] = [
  {
    name: 'trace',
    impl: (ctx, [x]) => {
      ctx.trace.push(str('trace', x, 1))
      return true
    },
  },
]
