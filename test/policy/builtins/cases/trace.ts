import { table, type Group } from './types.js'

export const traceGroup = (): Group => ({
  name: 'trace',
  tables: [table('trace', [['note'], [''], [1], [null]])],
})
