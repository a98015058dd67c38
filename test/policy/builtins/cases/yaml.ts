import { table, type Group } from './types.js'

// Documents as they reach yaml.is_valid / yaml.unmarshal: yaml.v3's scalar resolution, keys,
// merge keys, anchors, tags, several documents, and texts it rejects.
const documents: string[] = [
  'foo:\n  - qux: bar\n  - baz: 2', 'foo:\n  - qux: bar\n  - baz: {', '{"json": "ok"}', '  test:\ntest1: hello\n', 'a: 1\n---\n\tb: 2\n', 'a: 1\n---\nb: 2\n',
  '[1,2,3', 'a: 1\na: 2\n', 'x: &a {b: 1}\ny:\n  <<: *a\n  c: 2\n', 'x: &a {b: 1, c: 1}\ny: &b {c: 2, d: 2}\nz:\n  d: 3\n  <<: [*a, *b]\n', 'z:\n  <<: 1\n',
  '1: x\ntrue: y\n1.5: z\n', '? [1]\n: x\n', '~: 1\n', 't: 2001-12-14\n', 'n: .nan\n', 'i: -.inf\n', 'a: 0x1F\nb: 0o17\nc: 1_000\nd: 017\ne: 0b11\nf: -0b11\ng: -0o17\n',
  'a: yes\nb: on\nc: True\nd: NULL\ne: +1\nf: .5\ng: 1e3\nh: 123456789012345678901234\n', 'a: 1.0\nb: 1e400\nc: -0\nd: 0.1e-5\ne: 1.5e300\nf: 0x1p3\n',
  '', '# c\n', '---\n', 'x: !!binary aGVsbG8=\n', 'x: !!set {a, b}\n', 'x: "2001-12-14"\ny: !!timestamp 2001-12-14\n', 'a: *b\n', '- &x 1\n- *x\n',
  '0.1: a\n1e40: b\n', 'x: 9223372036854775807\ny: 9223372036854775808\nz: 18446744073709551615\nw: -9223372036854775808\n', 'a: |\n  x\n  y\nb: >\n  x\n  y\n',
  'a: "\\u00e9\\t"\nb: \'it\'\'s\'\n', '{a: 1, b: [1, 2]}', 'a: b: c', 'a:\n- 1\n-  2\n', 'x: 1 # c\n', 'a: !!int "12"\nb: !!float 1\nc: !!str 1\nd: !!bool true\n',
  'a: !!int x\n', 'a: !foo bar\n', 'null: 1\n', 'a: [1, 2\n', 'a: 1\n--- [\n', '- 1\n- - 2\n  - 3\n- {a: [], b: {}}\n', '"__proto__": 1\n',
  '2001-12-14: a\n', 'a: 1:20\nb: 2001-12-14 21:59:43.10\nc: 2001-12-14t21:59:43.10-05:00\n',
]

// Values as yaml.marshal gets them, for yaml.v3's emitter: key order, quoting, literal blocks, numbers.
const values: unknown[] = [
  { a: [1, { b: 2, c: [] }], a10: 1, a9: 2, 'x y': 'true', n: null, s: 'a: b', t: 'line1\nline2', u: '', f: 1.5, big: 1e30, e: {}, q: '#x', d: '-', k: '1', star: '*a', long: 'x'.repeat(100) + ' ' + 'y'.repeat(50) },
  [[1, 2], [3]], 'plain', 'yes', 3, true, null, [], {}, 'é\t', ' lead', 'trail ', "it's", 'a"b', '\u0001',
  'l1\nl2', 'a\n\n', ' x\ny', ['l1\nl2', { k: 'a\nb' }], { a: { b: { c: [1, [2, 3]] } } },
  { 'a\nb': 1, y: 'n', '': 1, '-': 'x', 'a b': '#c', 'x#': 'a #b', ':x': 'x:', k: 'x: y' },
  ['😀', '\u00a0', 'é', '\u2028', '\ufeff', 'a\\b', '"'], 'x\n', 'line \nx', '\tx\ny', [[{ a: 1, b: [] }]], '---', '1.5', '0x10', '1_000', '.5', '012', 'null',
  'Null', '~', 'True', 'On', 'off', '1:20', '+1', '.inf', '-', '- a', '?', '? a', 'a,b', '[a', '!x', '%x', '@x', '`x', 'a\t', 'a:b', 'http://x', '<<', '2001-12-14',
  '2001-12-14 21:59:43', 'a #b', 'a# b', '...', '\n', '\nx', 'x\n\n\ny', { k2: 1, k10: 2, k1: 3, K: 4, _: 5, '10': 6, '9': 7, a1b: 8, a01b: 9, é: 10 },
  [0.5, -1.25, 1e21, 1e-7, 123456789, -0, 100000.5, 1234567.5, 2 ** 60], [1e300, 5e-324],
]

export const yamlGroup = (): Group => ({
  name: 'yaml',
  tables: [
    table('yaml.is_valid', [...documents.map((d) => [d]), [1], [null], [['a']], [{ a: 1 }]]),
    table('yaml.unmarshal', [...documents.map((d) => [d]), [1]]),
    table('yaml.marshal', values.map((v) => [v])),
    // yaml.marshal's text reads back as the same value
    // (except a literal block whose first line starts with a tab: yaml.v3's scanner refuses the
    // tab where it measures the indentation, the yaml package reads it — docs/builtins.md)
    table('yaml.unmarshal', values.filter((v) => v !== '\tx\ny').map((v) => [v]), 'yaml.unmarshal(yaml.marshal($0))'),
  ],
})
