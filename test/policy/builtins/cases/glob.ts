import { table, type Group } from './types.js'

export const globGroup = (): Group => ({
  name: 'glob',
  tables: [
    table('glob.quote_meta', [[''], ['*.github.com'], ['[a-z]?{x,y}\\'], ['!^$()+|.-'], ['plain'], ['é*'], [1]]),
  ],
})
