/**
 * Route schemas as build-time code (src/server/route-code.ts): a process in record mode writes the
 * table when it exits; an app reading it answers exactly as one that compiles its schemas; only an
 * entry generated from the very route and schema is used; a broken table means compiling.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createRequire } from 'node:module'
import type { FastifyInstance } from 'fastify'
import { app } from '../helpers/route-code-app.js'

const require = createRequire(import.meta.url)

const requests: Array<{ method: 'GET' | 'POST', url: string, payload?: unknown }> = [
  { method: 'GET', url: '/items?limit=3&tag=a' },
  { method: 'GET', url: '/items?limit=0' },
  { method: 'GET', url: '/items?limit=x' },
  { method: 'GET', url: '/items?limit=3&limit=4' },
  { method: 'GET', url: '/items' },
  { method: 'POST', url: '/echo', payload: { name: 'bob', n: 2 } },
  { method: 'POST', url: '/echo', payload: { name: 'bob', other: 1 } },
  { method: 'POST', url: '/echo', payload: { name: 'much too long' } },
  { method: 'POST', url: '/echo', payload: { n: 1 } },
]

async function answers (a: FastifyInstance): Promise<Array<{ status: number, body: string }>> {
  const out = []
  for (const r of requests) {
    const res = await a.inject({ method: r.method, url: r.url, ...(r.payload !== undefined ? { payload: r.payload as object } : {}) })
    out.push({ status: res.statusCode, body: res.body })
  }
  return out
}

describe('route schemas as build-time code', () => {
  let dir: string
  let table: string
  let compiled: Array<{ status: number, body: string }>

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-route-code-'))
    table = join(dir, 'route-code.cjs')
    // record mode in a process of its own: the table is written when that process exits
    const helper = new URL('../helpers/route-code-app.ts', import.meta.url).href
    const script = `const { recordInto } = await import(${JSON.stringify(helper)}); await recordInto(${JSON.stringify(table)})`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 })
    assert.equal(r.status, 0, r.stderr)
    const a = app(undefined)
    compiled = await answers(a)
    await a.close()
  })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  test('a recording process writes one entry per route schema (GET, its HEAD and POST: 3 validators, 3 serializers)', () => {
    const t = require(table) as Record<string, unknown>
    assert.equal(Object.keys(t).filter((k) => k.startsWith('validator:')).length, 3)
    assert.equal(Object.keys(t).filter((k) => k.startsWith('serializer:')).length, 3)
    for (const make of Object.values(t)) assert.equal(typeof make, 'function')
  })

  test('an app using the table answers exactly as one that compiles (coercion, errors, dropped keys)', async () => {
    const a = app({ file: pathToFileURL(table) })
    assert.deepEqual(await answers(a), compiled)
    await a.close()
    assert.equal(compiled[0]?.body, JSON.stringify({ limit: 3, tag: 'a', items: [{ id: 1 }] }))
    assert.equal(compiled[1]?.status, 400)
    assert.deepEqual([compiled[6]?.status, compiled[6]?.body], [200, '{"name":"bob"}']) // fastify's removeAdditional
    assert.equal(compiled[7]?.status, 400)
  })

  test('an entry is used only for the route and schema it was generated from', async () => {
    // every entry of this table rejects everything: proof that the app takes its code from the table
    const rejecting = join(dir, 'rejecting.cjs')
    const keys = Object.keys(require(table) as Record<string, unknown>).filter((k) => k.startsWith('validator:'))
    writeFileSync(rejecting, `module.exports = {${keys.map((k) => `${JSON.stringify(k)}: () => { const v = () => { v.errors = [{ instancePath: '', schemaPath: '#', keyword: 'x', params: {}, message: 'table' }]; return false }; return v }`).join(',\n')}}`)
    const a = app({ file: pathToFileURL(rejecting) })
    assert.equal((await a.inject({ method: 'GET', url: '/items?limit=3' })).statusCode, 400)
    await a.close()
    // the same table for a changed schema (maximum 20): no entry matches, the route is compiled
    const b = app({ file: pathToFileURL(rejecting) }, 20)
    const res = await b.inject({ method: 'GET', url: '/items?limit=15' })
    assert.equal(res.statusCode, 200, res.body)
    await b.close()
  })

  test('a table that cannot be loaded, or an entry that throws, means compiling as usual', async () => {
    const broken = join(dir, 'broken.cjs')
    writeFileSync(broken, 'module.exports = {{{ not javascript')
    const a = app({ file: pathToFileURL(broken) })
    assert.deepEqual(await answers(a), compiled)
    await a.close()
    const throwing = join(dir, 'throwing.cjs')
    const keys = Object.keys(require(table) as Record<string, unknown>)
    writeFileSync(throwing, `module.exports = {${keys.map((k) => `${JSON.stringify(k)}: () => { throw new Error('no') }`).join(',\n')}}`)
    const b = app({ file: pathToFileURL(throwing) })
    assert.deepEqual(await answers(b), compiled)
    await b.close()
    const missing = app({ file: pathToFileURL(join(dir, 'missing.cjs')) })
    assert.deepEqual(await answers(missing), compiled)
    await missing.close()
  })
})
