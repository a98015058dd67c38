import type { Group } from './types.js'

export const randGroup = (): Group => ({
  name: 'rand',
  switches: ['rand_intn'],
  tables: [
    { builtin: 'rand.intn', call: 'rand.intn($0, $1) < $1', cases: [{ args: ['a', 10] }, { args: ['b', 1] }, { args: ['c', 1000000] }] },
    { builtin: 'rand.intn', call: 'rand.intn($0, $1) == rand.intn($0, $1)', cases: [{ args: ['a', 10] }] },
    { builtin: 'rand.intn', call: 'rand.intn($0, $1)', cases: [{ args: ['a', 0] }, { args: ['a', 1] }, { args: ['a', -1] }, { args: ['a', 1.5] }, { args: [1, 10] }, { args: ['a', '10'] }] },
    { builtin: 'rand.intn', call: 'rand.intn($0, $1) < 5', cases: [{ args: ['a', -5] }] },
  ],
})
