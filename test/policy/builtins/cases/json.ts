import { table, type Group } from './types.js'

const doc = { a: { b: [1, 2, { c: 'x' }] }, 'd/e': 1, 'f~g': 2 }

export const jsonGroup = (): Group => ({
  name: 'json',
  tables: [
    table('json.marshal_with_options', [
      [doc, {}], [doc, { pretty: true }], [doc, { indent: '  ' }], [doc, { prefix: '> ' }], [doc, { pretty: false, indent: '  ' }],
      [doc, { pretty: true, indent: '', prefix: '' }], [[], { pretty: true }], [{}, { pretty: true }], [{ z: [], y: {} }, { pretty: true }],
      ['<&>\u2028\u0001"\\', {}], [null, {}], [[1, 'a', true, null], { indent: '\t', prefix: '#' }], [doc, { foo: 1 }], [doc, { pretty: 'yes' }], [doc, { indent: 1 }], [doc, 'x'],
    ]),
    table('json.patch', [
      [doc, []], [doc, [{ op: 'add', path: '/a/x', value: 1 }]], [doc, [{ op: 'add', path: '/a/b/-', value: 3 }]], [doc, [{ op: 'add', path: '/a/b/0', value: 0 }]],
      [doc, [{ op: 'add', path: '/a/b/9', value: 0 }]], [doc, [{ op: 'remove', path: '/d~1e' }]], [doc, [{ op: 'remove', path: '/f~0g' }]], [doc, [{ op: 'remove', path: '/nope' }]],
      [doc, [{ op: 'replace', path: '/a/b/1', value: 'two' }]], [doc, [{ op: 'replace', path: '/zz', value: 1 }]], [doc, [{ op: 'move', from: '/a/b', path: '/b' }]],
      [doc, [{ op: 'copy', from: '/a/b/2', path: '/c' }]], [doc, [{ op: 'test', path: '/a/b/0', value: 1 }]], [doc, [{ op: 'test', path: '/a/b/0', value: 2 }]],
      [doc, [{ op: 'add', path: ['a', 'y'], value: 1 }]], [doc, [{ op: 'add', path: '', value: 1 }]], [doc, [{ op: 'bogus', path: '/a' }]], [doc, [{ op: 'add', path: 'a', value: 1 }]],
      [doc, [{ op: 'remove', path: '/a/b/01' }]], [doc, [{ op: 'add', path: '/x/y', value: 1 }]], [[1, 2], [{ op: 'remove', path: '/0' }]], [doc, [{ op: 'replace', path: '', value: 5 }]],
    ]),
  ],
})
