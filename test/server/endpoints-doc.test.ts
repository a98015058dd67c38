/**
 * docs/configuration.md "HTTP endpoints" names every route the server registers
 * (src/server/routes/): a route added without its line in the table fails here. Routes are read
 * from the route files' `app.get/post('<url>'` registrations; in the table a `:param` is written
 * `{param}` and a trailing `/*` as `/{path}`, `/{file}` (any `{…}`).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const ROUTES_DIR = join('src', 'server', 'routes')

function registeredRoutes (): Array<{ method: string, url: string }> {
  const out: Array<{ method: string, url: string }> = []
  for (const f of readdirSync(ROUTES_DIR).filter((n) => n.endsWith('.ts'))) {
    const src = readFileSync(join(ROUTES_DIR, f), 'utf8')
    for (const m of src.matchAll(/app\.(get|post|put|delete|patch)(?:<[^>]*>)?\('([^']+)'/g)) out.push({ method: (m[1] as string).toUpperCase(), url: m[2] as string })
  }
  return out
}

/** The table's endpoints as `METHOD url` with every `{…}` made `{}`. */
function documented (): Set<string> {
  const doc = readFileSync(join('docs', 'configuration.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## HTTP endpoints'))
  const out = new Set<string>()
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue
    const first = line.split(' | ')[0] as string
    for (const m of first.matchAll(/`(GET|POST|PUT|DELETE|PATCH) ([^`?]+)/g)) out.add(`${m[1] as string} ${(m[2] as string).replace(/\{[^}]*\}/g, '{}')}`)
  }
  return out
}

test('every registered route is in the HTTP endpoints table of docs/configuration.md', () => {
  const routes = registeredRoutes()
  assert.ok(routes.length > 20, `${routes.length} routes read`)
  const table = documented()
  const norm = (url: string): string => url.replace(/:[A-Za-z_]+/g, '{}').replace(/\/\*$/, '/{}')
  const missing = routes.filter(({ method, url }) => {
    const u = norm(url)
    // `/ui` is documented as `/ui/`, a trailing slash being the same page
    return !table.has(`${method} ${u}`) && !table.has(`${method} ${u}/`)
  }).map(({ method, url }) => `${method} ${url}`)
  assert.deepEqual(missing, [])
})
