/** Argument checks shared by the host builtins; a wrong type is a builtin error, as in OPA. */
import { compareUtf8 } from '../../canonical-json.js'
import { ExactNumber } from './exact-json.js'
import { RegoSet } from './types.js'
import { BuiltinError } from './types.js'

export type Json = null | boolean | number | string | ExactNumber | Json[] | { [k: string]: Json }

function typeName (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (v instanceof ExactNumber || typeof v === 'number') return 'number'
  return typeof v
}

export function str (b: string, v: unknown, pos: number): string {
  if (typeof v !== 'string') throw new BuiltinError(b, `operand ${pos} must be string but got ${typeName(v)}`)
  return v
}

export function bool (b: string, v: unknown, pos: number): boolean {
  if (typeof v !== 'boolean') throw new BuiltinError(b, `operand ${pos} must be boolean but got ${typeName(v)}`)
  return v
}

export function arr (b: string, v: unknown, pos: number): unknown[] {
  if (!Array.isArray(v)) throw new BuiltinError(b, `operand ${pos} must be array but got ${typeName(v)}`)
  return v
}

export function obj (b: string, v: unknown, pos: number): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof ExactNumber) throw new BuiltinError(b, `operand ${pos} must be object but got ${typeName(v)}`)
  return v as Record<string, unknown>
}

export function isObj (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof ExactNumber)
}

export function isNum (v: unknown): v is number | ExactNumber {
  return typeof v === 'number' || v instanceof ExactNumber
}

export function num (b: string, v: unknown, pos: number): number {
  if (typeof v === 'number') return v
  if (v instanceof ExactNumber) return Number(v.text)
  throw new BuiltinError(b, `operand ${pos} must be number but got ${typeName(v)}`)
}

/** The exact integer value of a JSON number, or undefined when it is not an integer. */
export function exactInt (v: number | ExactNumber): bigint | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : undefined
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(v.text)
  if (m === null) return undefined
  let digits = m[2] + (m[3] ?? '')
  let exp = Number(m[4] ?? '0') - (m[3]?.length ?? 0)
  if (exp < 0) {
    const cut = digits.slice(digits.length + exp)
    if (!/^0*$/.test(cut)) return undefined
    digits = digits.slice(0, digits.length + exp) || '0'
    exp = 0
  }
  if (exp > 4000) return undefined
  const n = BigInt(digits) * 10n ** BigInt(exp)
  return m[1] === '-' ? -n : n
}

/** An integer operand (OPA: "operand N must be integer"). */
export function int (b: string, v: unknown, pos: number): bigint {
  if (!isNum(v)) throw new BuiltinError(b, `operand ${pos} must be number but got ${typeName(v)}`)
  const i = exactInt(v)
  if (i === undefined) throw new BuiltinError(b, `operand ${pos} must be integer number but got floating-point number`)
  return i
}

/** Go int64 range check. */
export function int64 (b: string, v: bigint): bigint {
  if (v > 9223372036854775807n || v < -9223372036854775808n) throw new BuiltinError(b, 'number too big for int64')
  return v
}

/** Strings from an array or set operand (sets cross the wasm boundary as arrays). */
export function strings (b: string, v: unknown, pos: number): string[] {
  if (typeof v === 'string') return [v]
  const a = arr(b, v, pos)
  return a.map((x) => str(b, x, pos))
}

function rank (v: unknown): number {
  if (v === null) return 0
  if (typeof v === 'boolean') return 1
  if (isNum(v)) return 2
  if (typeof v === 'string') return 3
  if (Array.isArray(v)) return 4
  return 6
}

function numCmp (a: number | ExactNumber, b: number | ExactNumber): number {
  const x = typeof a === 'number' ? a : Number(a.text)
  const y = typeof b === 'number' ? b : Number(b.text)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Rego's total order of values (ast.Compare), for the order in which sets print. */
export function regoCompare (a: unknown, b: unknown): number {
  const ra = rank(a); const rb = rank(b)
  if (ra !== rb) return ra - rb
  if (typeof a === 'boolean') return Number(a) - Number(b)
  if (isNum(a)) return numCmp(a, b as number)
  // Go compares strings by their UTF-8 bytes (code points): UTF-16 order put an emoji before U+FEFF
  if (typeof a === 'string') return compareUtf8(a, b as string)
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    for (let i = 0; i < Math.min(a.length, bb.length); i++) {
      const c = regoCompare(a[i], bb[i])
      if (c !== 0) return c
    }
    return a.length - bb.length
  }
  if (a === null) return 0
  const oa = a as Record<string, unknown>; const ob = b as Record<string, unknown>
  const ka = Object.keys(oa).sort(compareUtf8); const kb = Object.keys(ob).sort(compareUtf8)
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
    const c = regoCompare(ka[i], kb[i]) || regoCompare(oa[ka[i] as string], ob[kb[i] as string])
    if (c !== 0) return c
  }
  return ka.length - kb.length
}

/** A Rego set as it crosses back to the wasm module: a sorted, de-duplicated array. */
export function setOf (values: unknown[]): unknown[] {
  const sorted = [...values].sort(regoCompare)
  const out = new RegoSet()
  for (const [i, v] of sorted.entries()) {
    if (i === 0 || regoCompare(sorted[i - 1], v) !== 0) out.push(v)
  }
  return out
}
