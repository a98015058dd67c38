/** json.marshal_with_options and json.patch (OPA v1/topdown/json.go); other json.* are native. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { ExactNumber } from './exact-json.js'
import { isObj, str } from './args.js'

const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** A Go encoding/json string literal (HTML-escaping, like json.Marshal). */
export function goJsonString (s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    if (ch === '"') out += '\\"'
    else if (ch === '\\') out += '\\\\'
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += '\\u' + c.toString(16).padStart(4, '0')
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'
    else out += ch
  }
  return out + '"'
}

function numberText (v: number | ExactNumber): string {
  if (v instanceof ExactNumber) return v.text
  return JSON.stringify(v)
}

/** Go-style JSON with sorted keys; `indent`/`prefix` as json.MarshalIndent (prefix also on the first line, as OPA writes it). */
export function goJson (v: unknown, indent?: string, prefix = ''): string {
  const nl = (depth: number): string => indent === undefined ? '' : '\n' + prefix + indent.repeat(depth)
  const sep = indent === undefined ? ':' : ': '
  const rec = (x: unknown, depth: number): string => {
    if (x === null) return 'null'
    if (typeof x === 'boolean') return String(x)
    if (typeof x === 'number' || x instanceof ExactNumber) return numberText(x)
    if (typeof x === 'bigint') return x.toString()
    if (typeof x === 'string') return goJsonString(x)
    if (Array.isArray(x)) {
      if (x.length === 0) return '[]'
      return '[' + x.map((e) => nl(depth + 1) + rec(e, depth + 1)).join(',') + nl(depth) + ']'
    }
    const o = x as Record<string, unknown>
    const keys = Object.keys(o).sort(byteOrder)
    if (keys.length === 0) return '{}'
    return '{' + keys.map((k) => nl(depth + 1) + goJsonString(k) + sep + rec(o[k], depth + 1)).join(',') + nl(depth) + '}'
  }
  return (indent === undefined ? '' : prefix) + rec(v, 0)
}

/** Key-order-independent JSON text, for value equality. */
export function canonicalJson (v: unknown): string {
  return goJson(v)
}

type Path = string[]

function parsePath (b: string, p: unknown): Path {
  if (Array.isArray(p)) return p.map((s) => typeof s === 'string' ? s : canonicalJson(s))
  if (typeof p !== 'string') throw new BuiltinError(b, 'path must be a string or array')
  if (p === '') return []
  // OPA reads a pointer without the leading slash as if it had one.
  return (p.startsWith('/') ? p.slice(1) : p).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function clone<T> (v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)])) as T
  return v
}

function getAt (doc: unknown, path: Path): unknown {
  let cur = doc
  for (const seg of path) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(seg) || Number(seg) >= cur.length) return undefined
      cur = cur[Number(seg)]
    } else if (isObj(cur)) {
      if (!Object.hasOwn(cur, seg)) return undefined
      cur = cur[seg]
    } else return undefined
  }
  return cur
}

function parentOf (b: string, doc: unknown, path: Path): [unknown, string] {
  const parent = getAt(doc, path.slice(0, -1))
  if (parent === undefined || (!Array.isArray(parent) && !isObj(parent))) throw new BuiltinError(b, 'path not found')
  return [parent, path[path.length - 1] as string]
}

function add (b: string, doc: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value
  const [parent, key] = parentOf(b, doc, path)
  if (Array.isArray(parent)) {
    if (key === '-') { parent.push(value); return doc }
    if (!/^(0|[1-9]\d*)$/.test(key) || Number(key) > parent.length) throw new BuiltinError(b, 'index out of range')
    parent.splice(Number(key), 0, value)
  } else (parent as Record<string, unknown>)[key] = value
  return doc
}

function remove (b: string, doc: unknown, path: Path): unknown {
  if (path.length === 0) throw new BuiltinError(b, 'cannot remove the root')
  const [parent, key] = parentOf(b, doc, path)
  if (Array.isArray(parent)) {
    if (!/^(0|[1-9]\d*)$/.test(key) || Number(key) >= parent.length) throw new BuiltinError(b, 'index out of range')
    parent.splice(Number(key), 1)
  } else {
    if (!Object.hasOwn(parent as object, key)) throw new BuiltinError(b, 'path not found')
    delete (parent as Record<string, unknown>)[key]
  }
  return doc
}

export const jsonBuiltins: BuiltinSpec[] = [
  {
    name: 'json.marshal_with_options',
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
