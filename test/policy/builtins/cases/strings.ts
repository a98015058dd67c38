import { table, type Group } from './types.js'

export const stringsGroup = (): Group => ({
  name: 'strings',
  tables: [
    table('strings.any_prefix_match', [['foobar', 'foo'], ['foobar', ['x', 'fo']], [['a', 'b'], ['b']], [[], ['a']], ['a', []], ['', ''], ['a', 1], [[1], 'a']]),
    table('strings.any_suffix_match', [['foobar', 'bar'], ['foobar', ['x', 'ar']], [['a', 'b'], ['c']], ['é', 'é'], ['a', [1]]]),
    table('strings.count', [['cheese', 'e'], ['five', ''], ['aéé', ''], ['aaaa', 'aa'], ['', ''], ['', 'a'], ['a', 1]]),
    table('strings.split_n', [
      ['a,b,c', ',', 2], ['a,b,c', ',', -1], ['a,b,c', ',', 0], ['a,b,c', ',', 10], ['a,b,c', '', 2], ['aéc', '', -1], ['', ',', -1], ['', '', -1],
      ['a,,b', ',', -5], ['a,b', ',', 1.5], ['a', 'a', 1], [1, ',', 1],
    ]),
    table('indexof_n', [['aéaéa', 'a'], ['aaa', 'aa'], ['abc', 'x'], ['', 'a'], ['abc', ''], ['🦀x🦀', '🦀'], [1, 'a']]),
    table('strings.render_template', [
      ['hello {{.name}}', { name: 'world' }], ['{{.a.b}}-{{.c}}', { a: { b: 1 }, c: true }], ['{{.missing}}', {}], ['{{range .xs}}[{{.}}]{{end}}', { xs: ['a', 'b'] }],
      ['{{if .ok}}yes{{else}}no{{end}}', { ok: false }], ['{{- .x -}} ', { x: 'y' }], ['{{.arr}}', { arr: [1, 'a', null] }], ['{{.obj}}', { obj: { b: 1, a: 'x' } }],
      ['no actions', {}], ['{{.x', {}], ['{{.f}}', { f: 1.5 }], ['{{.n}}', { n: null }], ['x', 'y'], ['{{.a.b}}', {}], ['{{.a.b}}', { a: 1 }], ['{{range .m}}{{.}},{{end}}', { m: { b: 2, a: 1 } }], ['{{if .xs}}T{{end}}', { xs: [] }],
      // range with variables: element, index and element, key and value; declarations; $ is the data
      ['{{range $i, $name := .names}}{{if $i}},{{end}}hello {{$name}}{{end}}', { names: ['rohan', 'john doe'] }], ['{{range $x := .xs}}<{{$x}}>{{end}}', { xs: [1, 2] }],
      ['{{range $k, $v := .m}}{{$k}}={{$v.n}};{{end}}', { m: { b: { n: 2 }, a: { n: 1 } } }], ['{{$t := .title}}{{range .xs}}{{$t}}:{{.}} {{end}}', { title: 'T', xs: ['a', 'b'] }],
      ['{{range .xs}}{{$.p}}{{.}}{{end}}', { p: '-', xs: ['a'] }], ['{{$}}', { a: 1 }], ['{{$nope}}', {}], ['{{range $i, $x := .xs}}{{end}}{{$x}}', { xs: [1] }],
      ['{{range $i, $x := .xs}}{{$i}}{{else}}none{{end}}', { xs: [] }],
    ]),
  ],
})
