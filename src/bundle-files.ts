/**
 * Which bundle files decide an outcome, and OPA's `signing.exclude_files` patterns. Shared by
 * bundles/verify.ts (a bundle whose decisive file is excluded from its signature is refused) and
 * config/bundle-service.ts (a pattern that would exclude one is refused at config load); a
 * top-level module because config/ and bundles/ may not import each other.
 */

/**
 * Files that feed a decision: the manifest (roots, entrypoints, wasm modules), wasm modules,
 * data documents and Rego sources. None of them may be left out of a bundle's signature.
 */
export function decidesOutcome (name: string): boolean {
  return name === '.manifest' || name.endsWith('/.manifest') || name.endsWith('.wasm') || name.endsWith('.rego') ||
    /(^|\/)data\.(json|ya?ml)$/.test(name)
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
 * Go's `filepath.Match` on `/`-separated names, as OPA applies `exclude_files`: `*` and `?`
 * never cross a `/`, `[...]` is a character class (`^` negates), `\\` escapes. OPA's tar
 * reader names members with a leading `/`, so a pattern is tried against both forms.
 */
export function excludeMatcher (patterns: string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => false
  const res = patterns.map(goGlobToRegExp)
  return (name) => res.some((re) => re.test(name) || re.test(`/${name}`))
}

function goGlobToRegExp (pattern: string): RegExp {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else if (c === '\\' && i + 1 < pattern.length) out += escapeRe(pattern[++i] as string)
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end === -1) { out += '\\['; continue }
      let body = pattern.slice(i + 1, end)
      const negate = body.startsWith('^')
      if (negate) body = body.slice(1)
      out += `[${negate ? '^/' : ''}${body.replace(/[\]\\^]/g, (m) => `\\${m}`)}]`
      i = end
    } else out += escapeRe(c)
  }
  return new RegExp(`^${out}$`)
}

function escapeRe (c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, (m) => `\\${m}`)
}
