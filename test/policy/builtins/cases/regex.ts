import { table, type Group } from './types.js'

export const regexGroup = (): Group => ({
  name: 'regex',
  tables: [
    table('regex.replace', [
      ['hello world', 'o', '0'], ['abc', '(a)(b)', '$2$1'], ['abc', '(a)(b)', '${2}x$1x'], ['abc', '(?P<first>a)', '[${first}]'], ['abc', 'x*', '-'],
      ['baaac', 'a*', '-'], ['abc', '(', 'x'], ['AbC', '(?i)b', 'x'], ['a.b', '\\.', '$$'], ['line1\nline2', '^line', 'L'], ['line1\nline2', '(?m)^line', 'L'],
      ['x', '\\z', 'END'], ['tab\there', '[[:space:]]', '_'], ['éé', 'é', 'e'], ['a1b2', '\\d', '#'], ['a1b2', '\\pL', '#'], [1, 'a', 'b'],
    ]),
    table('regex.find_n', [
      ['a.', 'paranormal', -1], ['a.', 'paranormal', 2], ['a.', 'paranormal', 0], ['a*', 'baaac', -1], ['', 'abc', -1], ['[', 'x', -1], ['(?i)A', 'aAa', -1],
      ['\\w+', 'hello, wide world', 10], ['x', 'abc', -1], ['a', 'aaa', 1.5], ['.', '🦀é', -1], ['(?s).', 'a\nb', -1],
    ]),
    table('regex.globs_match', [
      ['a.a.[0-9]+z', '.b.b2359825792*'], ['a*', 'b*'], ['*a', 'a'], ['a**', 'a'], ['a+', 'aa'], ['[a-c]+', '[b-d]'], ['[a-', 'a'], ['a\\', 'a'], ['', ''], ['a*', ''],
      ['[^a]', 'b'], ['a\\*', 'a*'], ['a[]', 'a'], ['.', 'é'], ['a+*', 'a'], ['a*b', 'b'], ['ba*', 'b'], ['.*', 'abc'], ['a.*', '.*z'], ['[0-9]+', '[a-z]+'],
      ['foo.*bar', 'foo[a-z]*'], ['x', 'x'], ['x', 'y'], ['a*b*c', 'abbbc'], ['[b-a]', 'a'], ['\\.', '.'], ['\\.', 'a'], ['ab+', 'a+b'], [1, 'a'],
    ]),
    table('regex.template_match', [
      ['urn:foo:{.*}', 'urn:foo:bar:baz', '{', '}'], ['urn:foo:{.*}', 'urn:fooo:bar', '{', '}'], ['urn:foo.bar.com:{.*}', 'urn:foo.bar.com:x', '{', '}'],
      ['urn:foo.bar.com:{.*}', 'urn:fooxbar.com:x', '{', '}'], ['<[0-9]{2}>-x', '12-x', '<', '>'], ['{a{1,2}}', 'aa', '{', '}'], ['{a', 'a', '{', '}'],
      ['{[}', 'x', '{', '}'], ['plain', 'plain', '{', '}'], ['plain', 'plainer', '{', '}'], ['{\\d+}/{\\w+}', '12/ab', '{', '}'],
    ]),
  ],
})
