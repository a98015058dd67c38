/**
 * signing.exclude_files matches as OPA matches it (bundle.Reader.isFileExcluded): Go's
 * filepath.Match of each pattern against the whole bundle-relative path without its leading
 * `/`, a malformed pattern excluding nothing. Checked on the cases that differed from OPA
 * before (regressions), then against Go's own filepath.Match (test/bundles/gomatch, built by
 * scripts/install-gomatch.sh) on thousands of generated pattern/name pairs (the class of bug).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { DECISIVE_PROBE_NAMES, excludeMatcher, goPathMatch } from '../src/bundle-files.js'
import { goMatch, needsGomatch } from './helpers/gomatch.js'

describe('exclude_files: OPA\'s filepath.Match on the whole path', () => {
  test('regressions: a leading / in a pattern matches nothing (OPA trims the path, not the pattern)', () => {
    assert.equal(excludeMatcher(['/*.md'])('notes.md'), false)
    assert.equal(excludeMatcher(['/*.md'])('/notes.md'), false)
    assert.equal(excludeMatcher(['*.md'])('/notes.md'), true)
  })

  test('regressions: a character class can match /, a negated one too; * and ? cannot', () => {
    assert.equal(goPathMatch('docs[/]a.md', 'docs/a.md'), true)
    assert.equal(goPathMatch('docs[^x]a.md', 'docs/a.md'), true)
    assert.equal(goPathMatch('docs*a.md', 'docs/a.md'), false)
    assert.equal(goPathMatch('docs?a.md', 'docs/a.md'), false)
  })

  test('regressions: malformed patterns (Go\'s ErrBadPattern) exclude nothing', () => {
    for (const [pattern, name] of [['[]a]', ']'], ['[a', '[a'], ['a\\', 'a\\'], ['[a-]', 'a'], ['[-a]', 'a'], ['x[', 'x['], ['*[', 'x']]) {
      assert.equal(goPathMatch(pattern as string, name as string), false, pattern)
    }
  })

  test('no ** : two stars are one star, never crossing a /', () => {
    assert.equal(goPathMatch('**/*.md', 'docs/a.md'), true)
    assert.equal(goPathMatch('**/*.md', 'docs/x/a.md'), false)
    assert.equal(goPathMatch('**', 'a/b'), false)
  })

  test('the config check still sees patterns that would exclude decisive files', () => {
    const m = excludeMatcher(['*/*', '.manifest', '*.wasm'])
    assert.ok(DECISIVE_PROBE_NAMES.some((n) => m(n)))
    assert.equal(DECISIVE_PROBE_NAMES.some((n) => excludeMatcher(['*.md', 'docs/*.txt'])(n)), false)
  })

  test('agrees with Go\'s filepath.Match on generated patterns and names', needsGomatch(), () => {
    // a small alphabet with every special character, so the generator reaches each rule
    const patternChars = ['a', 'b', '.', '/', '*', '?', '[', ']', '^', '-', '\\', 'é']
    const nameChars = ['a', 'b', '.', '/', '*', '[', ']', '-', '\\', '^', 'é']
    let seed = 0x2545f491
    const rand = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
    const word = (chars: string[], max: number): string => Array.from({ length: rand(max + 1) }, () => chars[rand(chars.length)]).join('')
    const pairs: Array<[string, string]> = []
    for (let i = 0; i < 20_000; i++) pairs.push([word(patternChars, 7), word(nameChars, 6)])
    // and names drawn to match often: the pattern with its specials replaced
    for (let i = 0; i < 5_000; i++) {
      const p = word(patternChars, 7)
      pairs.push([p, p.replace(/[*?]/g, () => ['a', '', 'b/'][rand(3)] as string)])
    }
    const go = goMatch(pairs)
    const differ = pairs.filter(([p, n], i) => goPathMatch(p, n) !== go[i]?.match)
    assert.deepEqual(differ.slice(0, 10), [], `${differ.length} of ${pairs.length} pairs differ from Go`)
    assert.ok(go.some((a) => a.match) && go.some((a) => a.bad_pattern), 'the generator reaches matches and bad patterns')
  })
})
