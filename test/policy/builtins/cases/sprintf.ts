import { ExactNumber } from '../../../../src/policy/builtins/exact-json.js'
import { table, type Group } from './types.js'

// Values as they reach a wasm host builtin: JSON numbers, strings, booleans, null, arrays, objects.
const formats: Array<[string, unknown[]]> = [
  ['%v %v %v %v', [1, -2, 1.5, 'x']],
  ['%s|%q|%x|%X|%#x', ['héllo', 'a"b\\c\n\t\u0001é', 'hi', 'hi', 'hi']],
  ['%d|%+d|% d|%05d|%-5d|%5d|%.3d|%x|%X|%#x|%o|%#o|%O|%b|%#b', [42, 42, 42, -42, 42, 42, 7, 255, 255, 255, 8, 8, 8, 5, 5]],
  ['%c|%q|%U|%#U', [65, 955, 0x1F600, 955]],
  ['%f|%.2f|%8.3f|%-8.2f|%+.1f|%08.3f', [3.14159, 2.675, -1.5, 1.25, 0.05, -3.5]],
  ['%.1f|%.0f|%.0f|%.1f|%.2f', [2.25, 2.5, 3.5, -1.25, 1.005]],
  ['%e|%E|%.2e|%.0e|%12.4e', [1234.5678, 0.00012, 9.995, 5.5, -0.000123456]],
  ['%g|%G|%.3g|%.10g|%g|%g|%g', [1e-7, 123456789.5, 3.14159, 1 / 3, 100000.5, 1234567.5, 0.0001]],
  ['%v|%v|%v|%v', [0.000012345, 123456789.5, 1e300, 5e-324]],
  ['%s|%v|%d', [[1, 'a', null], { b: 1, a: [true, false] }, true]],
  ['%t|%s|%v', [true, null, false]],
  ['%d %d', [1]],
  ['%d', [1, 2, 'x']],
  ['%d|%s|%f|%e|%g', ['x', 5, 'y', 'z', 7]],
  ['%%|%5%|%!|%z', [1, 2]],
  ['%*d|%-*d|%.*f', [5, 42, 5, 42, 2, 3.14159]],
  ['%6.2s|%-6.1q|%.0s|', ['abcdef', 'xyz', 'gone']],
  ['%x|%X|%o|%b', [-255, -255, -8, -5]],
  ['%d|%v', [9007199254740991, -9007199254740991]],
  ['trailing %', []],
  ['no verbs', []],
  ['', []],
  ['%v', ['']],
  ['%10v|%-10v|', ['right', 'left']],
  ['%5t|%-7v|', [true, [1]]],
]

// Numbers whose text decides their Go type in OPA's sprintf: a fraction or exponent makes a
// float64 even when the value is integral (100.0, 1e2), integers beyond int64 are *big.Int,
// and a float ParseFloat refuses (2e308) is passed on as its text.
const n = (text: string): ExactNumber => new ExactNumber(text)
const numberTexts: Array<[string, unknown[]]> = [
  ['%s', [n('123456789123456789123')]], ['%s', [n('1208925819614629174706175')]], ['%d|%v|%x|%X|%o|%b|%#x|%O', Array(8).fill(n('123456789123456789123'))],
  ['%+d|% d|%40d|%-40d|%040d|%.30d', [...Array(6).fill(n('123456789123456789123'))]], ['%d|%s', [n('-123456789123456789123'), n('-123456789123456789123')]],
  ['%f|%e|%c|%q|%t|%U', [...Array(6).fill(n('123456789123456789123'))]], ['%d', [n('123456789123456789123')]], ['%v %v', [1, n('99999999999999999999')]],
  ['%f, %3.1f, %.3f', [n('0.0'), n('100.0'), n('0.0')]], ['%f', [n('1e2')]], ['%v|%d|%s|%g|%e', Array(5).fill(n('100.0'))], ['%v|%d', [n('-1e9'), n('1.0e1')]],
  ['%v|%s|%d|%f', Array(4).fill(n('2e308'))], ['%v|%f', [n('-2e308'), n('1e-400')]], ['%v|%f', [n('-0.0'), n('1e20')]], ['%d', [n('9223372036854775807')]],
  ['%d|%x', [n('9223372036854775808'), n('-9223372036854775809')]], ['%v', [[n('100.0'), n('1e2')]]],
]

export const sprintfGroup = (): Group => ({
  name: 'sprintf',
  tables: [
    table('sprintf', [...formats.map(([f, args]) => [f, args]), [1, []], ['%v', 'not an array']]),
    table('sprintf', numberTexts.map(([f, args]) => [f, args])),
  ],
})
