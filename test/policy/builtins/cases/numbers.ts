import { table, type Group } from './types.js'

export const numbersGroup = (): Group => ({
  name: 'numbers',
  tables: [
    table('numbers.range_step', [
      [1, 10, 3], [10, 1, 3], [0, 0, 1], [0, 10, 0], [0, 10, -1], [0, 10, 1.5], [1.5, 3, 1], [-5, 5, 5], [0, 1, 100],
      [9007199254740993n, 9007199254741000n, 2], ['1', 2, 1], [1e3, 1.01e3, 1.0],
    ]),
  ],
})
