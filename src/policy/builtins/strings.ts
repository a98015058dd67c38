/** strings.* host builtins and indexof_n (OPA v1/topdown/strings.go, template.go). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { ExactNumber } from './exact-json.js'
import { int, isObj, str } from './args.js'

function stringsOf (b: string, v: unknown, pos: number): string[] {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) {
    return v.map((x) => {
      if (typeof x !== 'string') throw new BuiltinError(b, `operand ${pos} must be string`)
      return x
    })
  }
  throw new BuiltinError(b, `operand ${pos} must be one of {string, array, set}`)
}

/** Go strings.Count. */
function count (s: string, sub: string): number {
  if (sub === '') return [...s].length + 1
  let n = 0
  let i = s.indexOf(sub)
  while (i >= 0) { n++; i = s.indexOf(sub, i + sub.length) }
  return n
}

/** OPA strings.split_n: the first n parts of the full split, or the last |n| when n is negative. */
function splitN (s: string, sep: string, n: number): string[] {
  if (n === 0) return []
  const parts = sep === '' ? [...s] : s.split(sep)
  return n > 0 ? parts.slice(0, n) : parts.slice(Math.max(0, parts.length + n))
}

// ---- a subset of Go text/template for strings.render_template ----

/** Go's fmt %v of a JSON value as OPA hands it to text/template. */
function goPrint (v: unknown): string {
  if (v === null) return '<nil>'
  if (typeof v === 'string') return v
  if (typeof v === 'boolean') return String(v)
  if (typeof v === 'number') return String(v)
  if (v instanceof ExactNumber) return v.text
  if (Array.isArray(v)) return '[' + v.map(goPrint).join(' ') + ']'
  const o = v as Record<string, unknown>
  return 'map[' + Object.keys(o).sort().map((k) => `${k}:${goPrint(o[k])}`).join(' ') + ']'
}

type Node =
  | { t: 'text', s: string }
  | { t: 'print', expr: string }
  | { t: 'declare', name: string, expr: string }
  | { t: 'if', expr: string, then: Node[], else: Node[] }
  | { t: 'range', expr: string, body: Node[], else: Node[], key?: string, elem?: string }

const VAR = '\\$[A-Za-z_][A-Za-z0-9_]*'
/** `range $x := pipeline` or `range $i, $x := pipeline` (text/template: index or key, then element). */
const RANGE_VARS = new RegExp(`^(${VAR})(?:\\s*,\\s*(${VAR}))?\\s*:=\\s*(.+)$`)
/** `{{$x := pipeline}}`: a variable for the rest of the enclosing block. */
const DECLARE = new RegExp(`^(${VAR})\\s*:=\\s*(.+)$`)

function tokenize (b: string, tpl: string): Array<{ text?: string, action?: string }> {
  const out: Array<{ text?: string, action?: string }> = []
  let i = 0
  while (i < tpl.length) {
    const open = tpl.indexOf('{{', i)
    if (open < 0) { out.push({ text: tpl.slice(i) }); break }
    let text = tpl.slice(i, open)
    const close = tpl.indexOf('}}', open + 2)
    if (close < 0) throw new BuiltinError(b, 'unclosed action')
    let action = tpl.slice(open + 2, close)
    let next = close + 2
    if (/^-\s/.test(action)) { text = text.replace(/\s+$/, ''); action = action.slice(1) }
    if (/\s-$/.test(action)) { action = action.slice(0, -1); const m = /^\s*/.exec(tpl.slice(next)); next += (m?.[0].length ?? 0) }
    if (text !== '') out.push({ text })
    out.push({ action: action.trim() })
    i = next
  }
  return out
}

function parseTemplate (b: string, tpl: string): Node[] {
  const toks = tokenize(b, tpl)
  let pos = 0
  const block = (): [Node[], string] => {
    const nodes: Node[] = []
    while (pos < toks.length) {
      const tok = toks[pos++] as { text?: string, action?: string }
      if (tok.text !== undefined) { nodes.push({ t: 'text', s: tok.text }); continue }
      const a = tok.action as string
      if (a.startsWith('/*')) continue
      if (a === 'end' || a === 'else') return [nodes, a]
      const m = /^(if|range)\s+(.+)$/.exec(a)
      if (m !== null) {
        const [body, term] = block()
        let els: Node[] = []
        if (term === 'else') {
          const [e, t2] = block()
          if (t2 !== 'end') throw new BuiltinError(b, 'missing end')
          els = e
        } else if (term !== 'end') throw new BuiltinError(b, 'missing end')
        if (m[1] === 'if') nodes.push({ t: 'if', expr: m[2] as string, then: body, else: els })
        else {
          const v = RANGE_VARS.exec(m[2] as string)
          if (v === null) nodes.push({ t: 'range', expr: m[2] as string, body, else: els })
          else if (v[2] === undefined) nodes.push({ t: 'range', expr: v[3] as string, body, else: els, elem: v[1] as string })
          else nodes.push({ t: 'range', expr: v[3] as string, body, else: els, key: v[1] as string, elem: v[2] })
        }
        continue
      }
      const d = DECLARE.exec(a)
      if (d !== null) nodes.push({ t: 'declare', name: d[1] as string, expr: d[2] as string })
      else nodes.push({ t: 'print', expr: a })
    }
    return [nodes, '']
  }
  const [nodes, term] = block()
  if (term !== '') throw new BuiltinError(b, `unexpected ${term}`)
  return nodes
}

/** Template variables in scope, innermost last; `$` is the data passed to the template. */
type Scope = ReadonlyArray<readonly [string, unknown]>

function evalExpr (b: string, expr: string, dot: unknown, scope: Scope): unknown {
  let cur: unknown
  let path: string
  if (expr === '.') return dot
  const variable = /^(\$[A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$/.exec(expr)
  if (variable !== null) {
    const name = variable[1] as string
    let found: readonly [string, unknown] | undefined
    for (let i = scope.length - 1; i >= 0 && found === undefined; i--) if ((scope[i] as readonly [string, unknown])[0] === name) found = scope[i]
    if (found === undefined) throw new BuiltinError(b, `undefined variable: ${name}`)
    cur = found[1]
    path = variable[2] as string
    if (path === '') return cur
  } else if (expr.startsWith('.')) { cur = dot; path = expr } else throw new BuiltinError(b, `unsupported template action ${expr}`)
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(path)) throw new BuiltinError(b, `unsupported template action ${expr}`)
  for (const f of path.slice(1).split('.')) {
    if (cur === undefined) return undefined
    if (!isObj(cur)) throw new BuiltinError(b, `can't evaluate field ${f}`)
    if (!Object.hasOwn(cur, f)) return undefined
    cur = cur[f]
  }
  return cur
}

function truthy (v: unknown): boolean {
  if (v === null || v === false || v === '' || v === 0) return false
  if (v instanceof ExactNumber) return Number(v.text) !== 0
  if (Array.isArray(v)) return v.length > 0
  if (isObj(v)) return Object.keys(v).length > 0
  return true
}

function render (b: string, nodes: Node[], dot: unknown, outer: Scope): string {
  // A variable declared in a block lives until the block's end (text/template scoping).
  let scope = outer
  let out = ''
  for (const n of nodes) {
    if (n.t === 'text') out += n.s
    else if (n.t === 'print') {
      const v = evalExpr(b, n.expr, dot, scope)
      out += v === null || v === undefined ? '<undefined>' : goPrint(v)
    } else if (n.t === 'declare') scope = [...scope, [n.name, evalExpr(b, n.expr, dot, scope)]]
    else if (n.t === 'if') out += render(b, truthy(evalExpr(b, n.expr, dot, scope)) ? n.then : n.else, dot, scope)
    else {
      const v = evalExpr(b, n.expr, dot, scope)
      // Arrays by index, objects by key in sorted order, as text/template ranges over Go maps.
      const entries: Array<[unknown, unknown]> | undefined = Array.isArray(v) ? v.map((x, i) => [i, x]) : isObj(v) ? Object.keys(v).sort().map((k) => [k, v[k]]) : undefined
      if (entries === undefined) throw new BuiltinError(b, 'range can\'t iterate over value')
      if (entries.length === 0) out += render(b, n.else, dot, scope)
      for (const [k, it] of entries) {
        const inner: Array<readonly [string, unknown]> = [...scope]
        if (n.key !== undefined) inner.push([n.key, k])
        if (n.elem !== undefined) inner.push([n.elem, it])
        out += render(b, n.body, it, inner)
      }
    }
  }
  return out
}

export const stringsBuiltins: BuiltinSpec[] = [
  {
    name: 'strings.any_prefix_match',
    impl: (_ctx, [s, p]) => {
      const b = 'strings.any_prefix_match'
      const ss = stringsOf(b, s, 1); const ps = stringsOf(b, p, 2)
      return ss.some((x) => ps.some((y) => x.startsWith(y)))
    },
  },
  {
    name: 'strings.any_suffix_match',
    impl: (_ctx, [s, p]) => {
      const b = 'strings.any_suffix_match'
      const ss = stringsOf(b, s, 1); const ps = stringsOf(b, p, 2)
      return ss.some((x) => ps.some((y) => x.endsWith(y)))
    },
  },
  {
    name: 'strings.count',
    impl: (_ctx, [s, sub]) => count(str('strings.count', s, 1), str('strings.count', sub, 2)),
  },
  {
    name: 'strings.split_n',
    impl: (_ctx, [s, d, n]) => {
      const b = 'strings.split_n'
      const k = int(b, n, 3)
      return splitN(str(b, s, 1), str(b, d, 2), k > 2147483647n ? 2147483647 : k < -2147483647n ? -2147483647 : Number(k))
    },
  },
  {
    name: 'indexof_n',
    impl: (_ctx, [s, sub]) => {
      const b = 'indexof_n'
      const runes = [...str(b, s, 1)]
      const search = [...str(b, sub, 2)]
      if (search.length === 0) throw new BuiltinError(b, 'empty search character')
      const out: number[] = []
      for (let i = 0; i + search.length <= runes.length; i++) {
        let ok = true
        for (let j = 0; j < search.length; j++) if (runes[i + j] !== search[j]) { ok = false; break }
        if (ok) out.push(i)
      }
      return out
    },
  },
  {
    name: 'strings.render_template',
    numberText: true,
    impl: (_ctx, [tpl, vars]) => {
      const b = 'strings.render_template'
      const t = str(b, tpl, 1)
      if (!isObj(vars)) throw new BuiltinError(b, 'operand 2 must be object')
      return render(b, parseTemplate(b, t), vars, [['$', vars]])
    },
  },
]
