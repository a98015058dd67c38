/** json.marshal_with_options and json.patch (OPA v1/topdown/json.go); other json.* are native. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError, RegoSet } from './types.js'
import { goCanonicalJson } from '../../canonical-json.js'
import { isObj, str } from './args.js'

/** Go's json.Marshal(Indent) of a value, keys sorted (OPA marshals Go maps): the one canonical-JSON encoder's `go` dialect. */
export function goJson (v: unknown, indent?: string, prefix = ''): string {
  return goCanonicalJson(v, { escapeHtml: true, ...(indent !== undefined ? { indent, prefix } : {}) })
}

/** Key-order-independent JSON text, for value equality. */
export function canonicalJson (v: unknown): string {
  return goJson(v)
}

/**
 * Path segments: strings from a JSON pointer, or any values from an array path. A segment
 * under a set names the element equal to it (OPA v1/topdown/json.go), so a set's elements can
 * be added, removed, moved and descended into.
 */
type Path = unknown[]

function parsePath (b: string, p: unknown): Path {
  if (Array.isArray(p)) return [...p]
  if (typeof p !== 'string') throw new BuiltinError(b, 'path must be a string or array')
  if (p === '') return []
  // OPA reads a pointer without the leading slash as if it had one.
  return (p.startsWith('/') ? p.slice(1) : p).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function clone<T> (v: T): T {
  if (v instanceof RegoSet) return RegoSet.from(v.map(clone)) as T
  if (Array.isArray(v)) return v.map(clone) as T
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)])) as T
  return v
}

/** An array index segment (a digit string or a non-negative integer). */
function indexOf (seg: unknown): number | undefined {
  if (typeof seg === 'number') return Number.isInteger(seg) && seg >= 0 ? seg : undefined
  if (typeof seg === 'string' && /^(0|[1-9]\d*)$/.test(seg)) return Number(seg)
  return undefined
}

function keyOf (seg: unknown): string {
  return typeof seg === 'string' ? seg : canonicalJson(seg)
}

function setIndex (set: unknown[], seg: unknown): number {
  const want = canonicalJson(seg)
  return set.findIndex((x) => canonicalJson(x) === want)
}

function getAt (doc: unknown, path: Path): unknown {
  let cur = doc
  for (const seg of path) {
    if (cur instanceof RegoSet) {
      const i = setIndex(cur, seg)
      if (i < 0) return undefined
      cur = cur[i]
    } else if (Array.isArray(cur)) {
      const i = indexOf(seg)
      if (i === undefined || i >= cur.length) return undefined
      cur = cur[i]
    } else if (isObj(cur)) {
      const k = keyOf(seg)
      if (!Object.hasOwn(cur, k)) return undefined
      cur = cur[k]
    } else return undefined
  }
  return cur
}

function parentOf (b: string, doc: unknown, path: Path): [unknown, unknown] {
  const parent = getAt(doc, path.slice(0, -1))
  if (parent === undefined || (!Array.isArray(parent) && !isObj(parent))) throw new BuiltinError(b, 'path not found')
  return [parent, path[path.length - 1]]
}

function add (b: string, doc: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value
  const [parent, key] = parentOf(b, doc, path)
  if (parent instanceof RegoSet) {
    // adding to a set inserts the value, which the last segment must name (OPA: "key and value must match")
    if (canonicalJson(key) !== canonicalJson(value)) throw new BuiltinError(b, 'set key and value do not match')
    if (setIndex(parent, value) < 0) parent.push(value)
  } else if (Array.isArray(parent)) {
    if (key === '-') { parent.push(value); return doc }
    const i = indexOf(key)
    if (i === undefined || i > parent.length) throw new BuiltinError(b, 'index out of range')
    parent.splice(i, 0, value)
  } else (parent as Record<string, unknown>)[keyOf(key)] = value
  return doc
}

function remove (b: string, doc: unknown, path: Path): unknown {
  if (path.length === 0) throw new BuiltinError(b, 'cannot remove the root')
  const [parent, key] = parentOf(b, doc, path)
  if (parent instanceof RegoSet) {
    const i = setIndex(parent, key)
    if (i < 0) throw new BuiltinError(b, 'path not found')
    parent.splice(i, 1)
  } else if (Array.isArray(parent)) {
    const i = indexOf(key)
    if (i === undefined || i >= parent.length) throw new BuiltinError(b, 'index out of range')
    parent.splice(i, 1)
  } else {
    const k = keyOf(key)
    if (!Object.hasOwn(parent as object, k)) throw new BuiltinError(b, 'path not found')
    delete (parent as Record<string, unknown>)[k]
  }
  return doc
}

export const jsonBuiltins: BuiltinSpec[] = [
  {
    name: 'json.marshal_with_options',
    // OPA marshals a number as written (100.0, 1e2): the text is the value's json.Number
    numberText: true,
    impl: (_ctx, [x, opts]) => {
      const b = 'json.marshal_with_options'
      if (!isObj(opts)) throw new BuiltinError(b, 'operand 2 must be object')
      let pretty: boolean | undefined; let indent = '\t'; let prefix = ''
      let indentSet = false; let prefixSet = false
      for (const [k, v] of Object.entries(opts)) {
        if (k === 'pretty') { if (typeof v !== 'boolean') throw new BuiltinError(b, 'pretty must be a boolean'); pretty = v } else if (k === 'indent') { indent = str(b, v, 2); indentSet = true } else if (k === 'prefix') { prefix = str(b, v, 2); prefixSet = true } else throw new BuiltinError(b, `object contained unknown key ${k}`)
      }
      const isPretty = pretty ?? (indentSet || prefixSet)
      return isPretty ? goJson(x, indent, prefix) : goJson(x)
    },
  },
  {
    name: 'json.patch',
    impl: (_ctx, [doc, patches]) => {
      const b = 'json.patch'
      if (!Array.isArray(patches)) throw new BuiltinError(b, 'operand 2 must be array')
      let out = clone(doc)
      for (const p of patches) {
        if (!isObj(p)) throw new BuiltinError(b, 'patch must be an object')
        const op = p.op
        const path = parsePath(b, p.path)
        switch (op) {
          case 'add':
            if (!Object.hasOwn(p, 'value')) throw new BuiltinError(b, 'missing value')
            out = add(b, out, path, clone(p.value)); break
          case 'remove': out = remove(b, out, path); break
          case 'replace':
            if (!Object.hasOwn(p, 'value')) throw new BuiltinError(b, 'missing value')
            if (getAt(out, path) === undefined) throw new BuiltinError(b, 'path not found')
            out = path.length === 0 ? clone(p.value) : add(b, remove(b, out, path), path, clone(p.value)); break
          case 'move': case 'copy': {
            const from = parsePath(b, p.from)
            const v = getAt(out, from)
            if (v === undefined) throw new BuiltinError(b, 'from path not found')
            if (op === 'move') out = remove(b, out, from)
            out = add(b, out, path, clone(v))
            break
          }
          case 'test': {
            // RFC 6902: a test without a value is malformed (null is a value, absence is not)
            if (!Object.hasOwn(p, 'value')) throw new BuiltinError(b, "missing 'value' parameter")
            const v = getAt(out, path)
            if (v === undefined || canonicalJson(v) !== canonicalJson(p.value)) throw new BuiltinError(b, 'test failed')
            break
          }
          default: throw new BuiltinError(b, `unknown op ${String(op)}`)
        }
      }
      return out
    },
  },
]
