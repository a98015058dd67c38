import { table, type Group } from './types.js'

export const urlqueryGroup = (): Group => ({
  name: 'urlquery',
  tables: [
    table('urlquery.encode', [[''], ['a b&c=d/e?f'], ['-_.~'], ['é€🦀'], ['+%'], ['\u0000\n'], [1]]),
    table('urlquery.decode', [[''], ['a+b%26c%3Dd'], ['%EF%BB%BFa'], ['%'], ['%4'], ['%zz'], ['%C3%A9'], ['%ff'], ['100%'], ['a%2Bb'], [[]]]),
    table('urlquery.encode_object', [
      [{}], [{ a: 'b', c: 'd e' }], [{ z: ['1', '2'], a: '&', é: 'x' }], [{ a: [] }], [{ a: [1] }], [{ a: 1 }], [{ a: { b: 'c' } }], ['a=b'],
    ]),
    table('urlquery.decode_object', [
      [''], ['a=b&c=d'], ['a=1&a=2&b'], ['a=1;b=2'], ['&&a=1&'], ['a=%zz'], ['%zz=a'], ['=x'], ['a==b'], ['q=hello+world%21'], ['a=%C3%A9&é=1'],
    ]),
  ],
})
