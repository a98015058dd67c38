/** graph.reachable_paths (OPA v1/topdown/reachable.go); graph.reachable is native wasm. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj, setOf } from './args.js'

export const graphBuiltins: BuiltinSpec[] = [
  {
    name: 'graph.reachable_paths',
    impl: (_ctx, [g, init]) => {
      const b = 'graph.reachable_paths'
      if (!isObj(g)) throw new BuiltinError(b, 'operand 1 must be object')
      if (!Array.isArray(init)) throw new BuiltinError(b, 'operand 2 must be one of {array, set}')
      const paths: unknown[][] = []
      const edgesOf = (n: unknown): unknown[] | undefined => {
        if (typeof n !== 'string' || !Object.hasOwn(g, n)) return undefined
        const e = g[n]
        return Array.isArray(e) ? e : []
      }
      // OPA's pathBuilder: a node outside the graph ends the path without itself; a leaf or a
      // neighbor already on the way ends it with the current node.
      const build = (root: unknown, path: unknown[], reached: unknown[]): void => {
        const edges = edgesOf(root)
        if (edges === undefined) { paths.push(path); return }
        const p = [...path, root]
        if (edges.length === 0) { paths.push(p); return }
        const r = [...reached, root]
        for (const n of edges) {
          if (r.some((x) => x === n)) paths.push(p)
          else build(n, p, r)
        }
      }
      for (const node of init) {
        const edges = edgesOf(node)
        if (edges === undefined) continue
        if (edges.length === 0) paths.push([node])
        for (const n of edges) build(n, [node], [node])
      }
      return setOf(paths)
    },
  },
]
