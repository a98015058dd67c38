/**
 * Which bundle files decide an outcome, and OPA's `signing.exclude_files` patterns. Shared by
 * bundles/verify.ts (a bundle whose decisive file is excluded from its signature is refused) and
 * config/bundle-service.ts (a pattern that would exclude one is refused at config load); a
 * top-level module because config/ and bundles/ may not import each other.
 */

/**
 * A bundle's data documents: `data.json`, `data.yaml` or `data.yml` by exact base name, at the
 * bundle root or below. The one rule for what the loader reads as data, what a signature hashes
 * as a parsed document (with `.manifest`) and what may never be excluded from a signature.
 */
export const DATA_FILE = /(^|\/)data\.(json|ya?ml)$/

/** A data document written in YAML (`data.yaml`, `data.yml`). */
export function isYamlDataFile (name: string): boolean {
  return DATA_FILE.test(name) && !name.endsWith('.json')
}

/**
 * Files that feed a decision: the manifest (roots, entrypoints, wasm modules), wasm modules,
 * data documents and Rego sources. None of them may be left out of a bundle's signature.
 */
export function decidesOutcome (name: string): boolean {
  return name === '.manifest' || name.endsWith('/.manifest') || name.endsWith('.wasm') || name.endsWith('.rego') || DATA_FILE.test(name)
}

/**
 * Names an `exclude_files` pattern must not match, for the configuration check: if a pattern
 * matches one of these it would exclude files that decide the outcome.
 */
export const DECISIVE_PROBE_NAMES: readonly string[] = [
  '.manifest', 'policy.wasm', 'data.json', 'data.yaml', 'data.yml', 'policy.rego',
  'a/.manifest', 'a/policy.wasm', 'a/data.json', 'a/data.yaml', 'a/data.yml', 'a/policy.rego',
  'a/b/data.json', 'a/b/data.yaml', 'a/b/policy.rego', 'a/b/policy.wasm',
]

/**
 * OPA's `signing.exclude_files` test (bundle.Reader.isFileExcluded): a file is excluded when
 * Go's `filepath.Match(pattern, path)` is true for some pattern, `path` being the whole
 * bundle-relative name without its leading `/` (OPA trims it). One pattern against the whole
 * path: `*` and `?` never cross a `/`, there is no `**` (two stars are one), and a malformed
 * pattern (Go's ErrBadPattern, which OPA ignores) excludes nothing.
 */
export function excludeMatcher (patterns: string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => false
  return (name) => {
    const path = name.replace(/^\/+/, '')
    return patterns.some((p) => goPathMatch(p, path))
  }
}

/** Go's ErrBadPattern, inside the port below. */
class BadPattern extends Error {}

/**
 * A port of Go's `path.Match` (= `filepath.Match` with `/` as separator), errors as false.
 * Syntax: `*` any run of non-`/`; `?` one non-`/` character; `[` [`^`] ranges `]` one character
 * (a class *can* match `/`), ranges `lo-hi`; `\c` the character c. Works on code points, as Go
 * works on UTF-8 runes.
 */
export function goPathMatch (pattern: string, name: string): boolean {
  try { return match(Array.from(pattern), Array.from(name)) } catch (err) {
    if (err instanceof BadPattern) return false
    throw err
  }
}

function match (pattern: string[], name: string[]): boolean {
  pattern: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern)
    pattern = rest
    if (star && chunk.length === 0) return !name.includes('/') // a trailing * matches the rest unless it has a /
    const t = matchChunk(chunk, name)
    // the last chunk must use up the name, or the star may still find a later match
    if (t !== undefined && (t.length === 0 || pattern.length > 0)) { name = t; continue }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1))
        if (t2 !== undefined) {
          if (pattern.length === 0 && t2.length > 0) continue
          name = t2
          continue pattern
        }
      }
    }
    // no match: the rest of the pattern must still be well formed (Go checks it too)
    while (pattern.length > 0) {
      const next = scanChunk(pattern)
      pattern = next.rest
      matchChunk(next.chunk, [])
    }
    return false
  }
  return name.length === 0
}

function scanChunk (pattern: string[]): { star: boolean, chunk: string[], rest: string[] } {
  let star = false
  let p = 0
  while (p < pattern.length && pattern[p] === '*') { p++; star = true }
  let inRange = false
  let i = p
  for (; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\') { if (i + 1 < pattern.length) i++ } else if (c === '[') inRange = true
    else if (c === ']') inRange = false
    else if (c === '*' && !inRange) break
  }
  return { star, chunk: pattern.slice(p, i), rest: pattern.slice(i) }
}

/** The rest of `s` after `chunk` matched its start, or undefined; throws BadPattern. */
function matchChunk (chunk: string[], s: string[]): string[] | undefined {
  let failed = false
  let c = 0
  let k = 0
  while (c < chunk.length) {
    if (!failed && k >= s.length) failed = true
    const ch = chunk[c] as string
    if (ch === '[') {
      let r = ''
      if (!failed) r = s[k++] as string
      c++
      let negated = false
      if (c < chunk.length && chunk[c] === '^') { negated = true; c++ }
      let matched = false
      let nrange = 0
      for (;;) {
        if (c < chunk.length && chunk[c] === ']' && nrange > 0) { c++; break }
        const lo = getEsc(chunk, c)
        c = lo.next
        let hi = lo.r
        if (chunk[c] === '-') {
          const h = getEsc(chunk, c + 1)
          c = h.next
          hi = h.r
        }
        const cp = r === '' ? 0 : r.codePointAt(0) as number
        if ((lo.r.codePointAt(0) as number) <= cp && cp <= (hi.codePointAt(0) as number)) matched = true
        nrange++
      }
      if (matched === negated) failed = true
    } else if (ch === '?') {
      if (!failed) {
        if (s[k] === '/') failed = true
        k++
      }
      c++
    } else {
      if (ch === '\\') {
        c++
        if (c >= chunk.length) throw new BadPattern()
      }
      if (!failed) {
        if (chunk[c] !== s[k]) failed = true
        k++
      }
      c++
    }
  }
  return failed ? undefined : s.slice(k)
}

/** One (possibly escaped) class character at chunk[c]; Go's getEsc. */
function getEsc (chunk: string[], c: number): { r: string, next: number } {
  if (c >= chunk.length || chunk[c] === '-' || chunk[c] === ']') throw new BadPattern()
  if (chunk[c] === '\\') {
    c++
    if (c >= chunk.length) throw new BadPattern()
  }
  const r = chunk[c] as string
  if (c + 1 >= chunk.length) throw new BadPattern() // a class must be closed
  return { r, next: c + 1 }
}
