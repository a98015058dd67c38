/** object.subset (OPA v1/topdown/subset.go); object.keys and object.union_n are native wasm. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RegoSet } from './types.js'
import { isObj } from './args.js'
import { canonicalJson } from './json.js'

const eq = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b)
const isSet = (v: unknown): v is RegoSet => v instanceof RegoSet
const isArray = (v: unknown): v is unknown[] => Array.isArray(v) && !(v instanceof RegoSet)

function setSubset (sup: unknown[], sub: unknown[]): boolean {
  const have = new Set(sup.map(canonicalJson))
  return sub.every((x) => have.has(canonicalJson(x)))
}

/** A contiguous run of `sup` equal to `sub`. */
function arraySubset (sup: unknown[], sub: unknown[]): boolean {
  if (sub.length > sup.length) return false
  for (let i = 0; i + sub.length <= sup.length; i++) {
    let ok = true
    for (let j = 0; j < sub.length; j++) if (!eq(sup[i + j], sub[j])) { ok = false; break }
    if (ok) return true
  }
  return false
}

/** OPA's arraySetSubset: true once every element of the set was seen in the array (false for an empty array). */
function arraySetSubset (sup: unknown[], sub: unknown[]): boolean {
  const want = new Set(sub.map(canonicalJson))
  let unmatched = want.size
  for (const x of sup) {
    if (want.has(canonicalJson(x))) unmatched--
    if (unmatched <= 0) return true
  }
  return false
}

function objectSubset (sup: Record<string, unknown>, sub: Record<string, unknown>): boolean {
  for (const [k, v] of Object.entries(sub)) {
    if (!Object.hasOwn(sup, k)) return false
    const s = sup[k]
    if (eq(s, v)) continue
    if (isObj(s) && isObj(v)) { if (!objectSubset(s, v)) return false; continue }
    if (isSet(s) && isSet(v)) { if (!setSubset(s, v)) return false; continue }
    if (isArray(s) && isArray(v)) { if (!arraySubset(s, v)) return false; continue }
    return false
  }
  return true
}

export const objectsBuiltins: BuiltinSpec[] = [
  {
    name: 'object.subset',
    // Sets arrive as RegoSets (policy/wasm-host.ts reads arguments in Rego value form), so
    // set and array operands keep their own semantics.
    impl: (_ctx, [sup, sub]) => {
      if (isObj(sup) && isObj(sub)) return objectSubset(sup, sub)
      if (isSet(sup) && isSet(sub)) return setSubset(sup, sub)
      if (isArray(sup) && isArray(sub)) return arraySubset(sup, sub)
      if (isArray(sup) && isSet(sub)) return arraySetSubset(sup, sub)
      throw new BuiltinError('object.subset', 'both arguments object.subset must be of the same type or array and set')
    },
  },
]
