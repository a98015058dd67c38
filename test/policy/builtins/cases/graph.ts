import { table, type Group } from './types.js'

const g = { a: ['b', 'c'], b: ['d'], c: [], d: ['a'], e: ['e'] }

export const graphGroup = (): Group => ({
  name: 'graph',
  tables: [
    table('graph.reachable_paths', [
      [g, ['a']], [g, ['b', 'e']], [g, []], [g, ['zz']], [{}, ['a']], [{ a: ['x'] }, ['a']], [{ a: null }, ['a']], [g, 'a'], ['g', ['a']], [{ a: ['b'], b: ['a'] }, ['a', 'b']],
    ]),
  ],
})
