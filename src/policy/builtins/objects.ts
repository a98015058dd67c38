/** object.subset (OPA v1/topdown/object.go); object.keys and object.union_n are native wasm. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj } from './args.js'
import { canonicalJson } from './json.js'

const eq = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b)

/** Sets cross the wasm boundary as arrays, so array operands take OPA's array semantics. */
function isSubset (sup: unknown, sub: unknown): boolean {
  if (isObj(sup)) {
    if (!isObj(sub)) return false
    for (const [k, v] of Object.entries(sub)) {
      if (!Object.hasOwn(sup, k)) return false
      const sv = sup[k]
      if (!isSubset(sv, v)) return false
    }
    return true
  }
  if (Array.isArray(sup)) {
    if (!Array.isArray(sub)) return false
    if (sub.length === 0) return true
    // A contiguous run of sup equal to sub.
    for (let i = 0; i + sub.length <= sup.length; i++) {
      let ok = true
      for (let j = 0; j < sub.length; j++) if (!eq(sup[i + j], sub[j])) { ok = false; break }
      if (ok) return true
    }
    return false
  }
  return eq(sup, sub)
}

export const objectsBuiltins: BuiltinSpec[] = [
  {
    name: 'object.subset',
    impl: (_ctx, [sup, sub]) => {
      const b = 'object.subset'
      const okType = (v: unknown): boolean => isObj(v) || Array.isArray(v)
      if (!okType(sup)) throw new BuiltinError(b, 'operand 1 must be one of {object, array, set}')
      if (!okType(sub)) throw new BuiltinError(b, 'operand 2 must be one of {object, array, set}')
      if (isObj(sup) !== isObj(sub)) throw new BuiltinError(b, 'both arguments must be objects, arrays or sets')
      return isSubset(sup, sub)
    },
  },
]
