import { table, type Group } from './types.js'

const values: unknown[][] = [[[1, 'a']], [[]], [{ a: 1 }], ['s'], [true], [false], [null], [1], [[2, 1, 2, 'x', null]]]

export const castsGroup = (): Group => ({
  name: 'casts',
  v0: true,
  tables: [
    table('cast_array', values), table('cast_boolean', values), table('cast_null', values), table('cast_object', values), table('cast_string', values),
    // Sets cross the boundary as sorted arrays; compare through a count and membership, which behave alike.
    { builtin: 'cast_set', call: 'count(cast_set($0))', cases: values.map((args) => ({ args })) },
  ],
})
