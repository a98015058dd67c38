/** The deprecated cast_* builtins (v0 policies only). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj, setOf } from './args.js'

const cast = (name: string, ok: (v: unknown) => boolean, to: (v: unknown) => unknown = (v) => v): BuiltinSpec => ({
  name,
  impl: (_ctx, [v]) => {
    if (!ok(v)) throw new BuiltinError(name, 'operand 1 has the wrong type')
    return to(v)
  },
})

export const castsBuiltins: BuiltinSpec[] = [
  cast('cast_array', Array.isArray),
  // The result is loaded into the policy as a real set (see policy/wasm-host.ts).
  cast('cast_set', Array.isArray, (v) => setOf(v as unknown[])),
  cast('cast_boolean', (v) => typeof v === 'boolean'),
  cast('cast_null', (v) => v === null),
  cast('cast_object', isObj),
  cast('cast_string', (v) => typeof v === 'string'),
]
