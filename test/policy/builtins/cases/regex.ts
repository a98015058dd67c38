import { table, type Group } from './types.js'

/**
 * [pattern, text] pairs run through every regex builtin. The first part is RE2 syntax that a
 * JavaScript RegExp lacks or reads differently; the second is JavaScript syntax RE2 rejects
 * (every one must be an error, so the call is undefined, as in opa eval).
 */
const syntax: Array<[string, string]> = [
  // RE2 accepts, JavaScript does not (or means something else)
  ['a(?i)b', 'aB ab AB'], ['(?i)a(?-i)b', 'AbAB'], ['x(?i:y)z', 'xYz xYZ'], ['(?im-s:^a.)', 'A\nab'], ['a\\z', 'a\na'], ['\\Aa', 'aa'],
  ['(?P<first>a)(?P<second>b)?', 'abac'], ['(?<n>x)', 'xx'], ['[[:alpha:]]+', 'ab1cd'], ['[[:^digit:]]+', 'a1b'], ['[^[:space:]]+', 'a b\tc'],
  ['[[:word:]]+', 'a_b-c'], ['[[:foo:]]', 'a'], ['\\pL+', 'éa1ß'], ['\\PL+', 'a12b'], ['\\p{Greek}+', 'αβc'], ['\\p{Lu}', 'aBc'], ['\\pN', '٣'],
  ['(?s)a.b', 'a\nb'], ['a.b', 'a\nb'], ['(?U)a+', 'aaa'], ['(?U)a+?', 'aaa'], ['(?m)^\\w$', 'a\nb'], ['^\\w$', 'a\nb'], ['\\Qa.b*\\E+', 'a.b**'],
  ['\\x{1F980}', '🦀'], ['.', '🦀x'], ['[^a]', '🦀'], ['a{,3}', 'a{,3}'], ['\\_\\!\\<\\ ', '_!< '], ['(?i)k', '\u212a'], ['(?i)σ', 'ΣσςS'],
  ['\\b', 'ab cd'], ['\\B', 'abc'], ['(a|ab)(c|bcd)(d*)', 'abcd'], ['\\v', '\u000b'], ['[\\d\\-z]+', '1-z'], ['\\x41\\x{42}', 'AB'], ['\\101', 'A'],
  ['(?P<a>x)(?P<a>y)', 'xy'], ['a{1000}', 'a'], ['', 'abc'], ['x*', 'abc'], ['a*', 'baaac'], ['a*?', 'baaac'], ['(|a)*', 'aa'],
  // JavaScript accepts, RE2 rejects
  ['(a)\\1', 'aa'], ['(?<n>a)\\k<n>', 'aa'], ['a(?=b)', 'ab'], ['a(?!b)', 'ac'], ['(?<=a)b', 'ab'], ['(?<!a)b', 'cb'], ['a++', 'aa'], ['a*+', 'aa'],
  ['a?+', 'a'], ['(?>a)', 'a'], ['\\u0041', 'A'], ['\\cA', '\u0001'], ['[\\b]', '\b'], ['\\Z', 'a'], ['\\G', 'a'], ['\\e', '\u001b'], ['(?#note)a', 'a'],
  ['(?x) a b', 'ab'], ['a{2,1001}', 'aa'], ['\\8', '8'], ['\\C', 'a'], ['(?P=n)', 'a'], ['a**', 'aa'], ['[z-a]', 'a'], ['(', 'a'], ['\\', 'a'], ['x{2}{3}', 'xxxxxx'],
]

/**
 * regex.match, regex.is_valid and regex.find_all_string_submatch_n are compiled into the module
 * by `opa build -t wasm` (OPA's C++ RE2), not run by Portcullis. That RE2 differs from Go's in
 * three of the cases above, so opa eval and OPA's own wasm disagree there: it rejects `(?<n>x)`
 * (Go 1.22+ accepts), accepts `\C` (Go rejects), and matches `(|a)*` differently. Those stay in
 * the host builtins' tables and are left out of the native ones.
 */
const nativeWasmDiffers = new Set(['(?<n>x)', '\\C', '(|a)*'])
const native = syntax.filter(([p]) => !nativeWasmDiffers.has(p))

export const regexGroup = (): Group => ({
  name: 'regex',
  tables: [
    table('regex.replace', [
      ['hello world', 'o', '0'], ['abc', '(a)(b)', '$2$1'], ['abc', '(a)(b)', '${2}x$1x'], ['abc', '(?P<first>a)', '[${first}]'], ['abc', 'x*', '-'],
      ['baaac', 'a*', '-'], ['abc', '(', 'x'], ['AbC', '(?i)b', 'x'], ['a.b', '\\.', '$$'], ['line1\nline2', '^line', 'L'], ['line1\nline2', '(?m)^line', 'L'],
      ['x', '\\z', 'END'], ['tab\there', '[[:space:]]', '_'], ['éé', 'é', 'e'], ['a1b2', '\\d', '#'], ['a1b2', '\\pL', '#'], [1, 'a', 'b'],
      // Go's Regexp.Expand: leading zeros, missing groups, unmatched groups, Unicode names, a name used twice, braces
      ['abc', '(a)(b)', '$01'], ['abc', '(a)(b)', '$3|$9|$999999999|$'], ['abc', '(a)|(x)', '[$2]'], ['abc', '(?P<é>a)', '$é${é}'],
      ['xy', '(?P<a>x)(?P<a>y)', '$a'], ['y', '(?P<a>x)?(?P<a>y)', '$a'], ['abc', '(a)', '${1'], ['abc', '(a)', '${}'], ['abc', '(a)', '$1x'],
      ['abc', '(?P<x1>a)', '$x1'], ['abc', '(a)', '$$1'], ['a', 'a', '$-'], ['abc', '(?P<n>b)', '<${n}>$n.'],
      ...syntax.map(([p, s]) => [s, p, '<$0>']),
    ]),
    table('regex.find_n', [
      ['a.', 'paranormal', -1], ['a.', 'paranormal', 2], ['a.', 'paranormal', 0], ['a*', 'baaac', -1], ['', 'abc', -1], ['[', 'x', -1], ['(?i)A', 'aAa', -1],
      ['\\w+', 'hello, wide world', 10], ['x', 'abc', -1], ['a', 'aaa', 1.5], ['.', '🦀é', -1], ['(?s).', 'a\nb', -1], ['a', 'aaa', 1e12], ['a', 'aaa', -7],
      ...syntax.map(([p, s]) => [p, s, -1]),
    ]),
    table('regex.split', [
      ['a', 'banana'], [',', 'a,b,,c,'], ['', 'abc'], ['', ''], ['x', ''], ['x*', 'axbxxc'], ['^', 'ab'], ['$', 'ab'], ['(', 'a'], [1, 'a'],
      ...syntax.map(([p, s]) => [p, s]),
    ]),
    table('regex.match', native.map(([p, s]) => [p, s])),
    table('regex.is_valid', [...native.map(([p]) => [p]), [1]]),
    table('regex.find_all_string_submatch_n', [...native.map(([p, s]) => [p, s, -1]), ['(a)(b)?', 'aab', 1], ['(a)', 'aaa', 0]]),
    table('regex.globs_match', [
      ['a.a.[0-9]+z', '.b.b2359825792*'], ['a*', 'b*'], ['*a', 'a'], ['a**', 'a'], ['a+', 'aa'], ['[a-c]+', '[b-d]'], ['[a-', 'a'], ['a\\', 'a'], ['', ''], ['a*', ''],
      ['[^a]', 'b'], ['a\\*', 'a*'], ['a[]', 'a'], ['.', 'é'], ['a+*', 'a'], ['a*b', 'b'], ['ba*', 'b'], ['.*', 'abc'], ['a.*', '.*z'], ['[0-9]+', '[a-z]+'],
      ['foo.*bar', 'foo[a-z]*'], ['x', 'x'], ['x', 'y'], ['a*b*c', 'abbbc'], ['[b-a]', 'a'], ['\\.', '.'], ['\\.', 'a'], ['ab+', 'a+b'], [1, 'a'],
      ['pqrs]', '[a-b]+'], ['[a-]', 'a'], ['[-a]', 'a'], ['a', '[a--b]'], ['a', '[a-]]'], ['[a-\\]]', 'a'], ['a+', '[\\]]'],
    ]),
    table('regex.template_match', [
      ['urn:foo:{.*}', 'urn:foo:bar:baz', '{', '}'], ['urn:foo:{.*}', 'urn:fooo:bar', '{', '}'], ['urn:foo.bar.com:{.*}', 'urn:foo.bar.com:x', '{', '}'],
      ['urn:foo.bar.com:{.*}', 'urn:fooxbar.com:x', '{', '}'], ['<[0-9]{2}>-x', '12-x', '<', '>'], ['{a{1,2}}', 'aa', '{', '}'], ['{a', 'a', '{', '}'],
      ['{[}', 'x', '{', '}'], ['plain', 'plain', '{', '}'], ['plain', 'plainer', '{', '}'], ['{\\d+}/{\\w+}', '12/ab', '{', '}'],
      ['a}b', 'a}b', '{', '}'], ['<a>', 'a', '<<', '>'], ['<a>', 'a', 'é', '>'], ['|a|', 'a', '|', '|'], ['x-(a+)-y', 'x-(aa)-y', '(', ')'],
      ['{a)|(b}', 'b', '{', '}'], ['{(?P<n>a)}{\\pL}', 'aé', '{', '}'], ['[a]+$^', '[a]+$^', '{', '}'], ['🦀{.}', '🦀é', '{', '}'],
      ...syntax.map(([p, s]) => [`<${p}>`, s, '<', '>']),
    ]),
  ],
})

/** Patterns that backtrack exponentially (or in a high power) in a JavaScript RegExp, with inputs that trigger it. */
const redos: Array<[string, string]> = [
  ['^(a+)+$', 'a'.repeat(34) + '!'], ['^(a|a)*$', 'a'.repeat(40) + '!'], ['^(a|aa)+$', 'a'.repeat(60) + '!'], ['(x+x+)+y', 'x'.repeat(5000)],
  ['^(\\w+\\s?)*$', 'word '.repeat(30) + '!'], ['(.*a){20}', 'a'.repeat(3000) + 'b'], ['^(([a-z])+.)+[A-Z]([a-z])+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'],
  ['^(a+)+$', 'a'.repeat(100000) + '!'],
]

/** The ReDoS regression: every regex builtin, on each catastrophic pattern, answers (as opa eval does). */
export const regexRedosGroup = (): Group => ({
  name: 'regex-redos',
  tables: [
    table('regex.replace', redos.map(([p, s]) => [s, p, 'x'])),
    table('regex.find_n', redos.map(([p, s]) => [p, s, -1])),
    table('regex.split', redos.map(([p, s]) => [p, s])),
    table('regex.match', redos.map(([p, s]) => [p, s])),
    table('regex.find_all_string_submatch_n', redos.map(([p, s]) => [p, s, -1])),
    table('regex.template_match', redos.map(([p, s]) => [`{${p}}`, s, '{', '}'])),
  ],
})
