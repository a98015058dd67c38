/** The deprecated cast_* builtins (v0 policies only). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj } from './args.js'
import { canonicalJson } from './json.js'

const cast = (name: string, ok: (v: unknown) => boolean, to: (v: unknown) => unknown = (v) => v): BuiltinSpec => ({
  name,
  impl: (_ctx, [v]) => {
    if (!ok(v)) throw new BuiltinError(name, 'operand 1 has the wrong type')
    return to(v)
  },
})

export const castsBuiltins: BuiltinSpec[] = [
  cast('cast_array', Array.isArray),
  // A set cannot cross opa-wasm's JSON boundary: the result is a sorted, de-duplicated array.
  cast('cast_set', Array.isArray, (v) => {
    const seen = new Map<string, unknown>()
    for (const x of v as unknown[]) seen.set(canonicalJson(x), x)
    return [...seen.keys()].sort().map((k) => seen.get(k))
  }),
  cast('cast_boolean', (v) => typeof v === 'boolean'),
  cast('cast_null', (v) => v === null),
  cast('cast_object', isObj),
  cast('cast_string', (v) => typeof v === 'string'),
]
