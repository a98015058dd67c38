import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../src/bundles/load.js'
import { compileBundle } from '../../src/policy/engine.js'
import { PolicySnapshot } from '../../src/policy/snapshot.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'

describe('Data API paths resolve to the bundle and entrypoint that own them', needsOpa(), () => {
  let dir: string
  let snapshot: PolicySnapshot

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-snap-'))
    const compiled = await Promise.all(['basic', 'other'].map(async (n) => ({ compiled: compileBundle(await loadBundle(buildFixture(n, dir, { revision: `${n}-rev` }))), activatedAt: new Date() })))
    snapshot = new PolicySnapshot(7, compiled)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('exact entrypoint', () => {
    const r = snapshot.resolve('/basic/allow/')
    assert.equal(r.kind, 'entrypoint')
    assert.equal(r.kind === 'entrypoint' && r.entrypoint, 'basic/allow')
  })

  test('a path below an entrypoint evaluates it and descends', () => {
    const e = snapshot.evaluate('basic/info/level', { user: 'x' })
    assert.equal(e.entrypoint, 'basic/info')
    assert.equal(e.result, 3)
    assert.equal(snapshot.evaluate('basic/info/missing', {}).defined, false)
  })

  test('a pure data document is served from the bundle data', () => {
    assert.deepEqual(snapshot.evaluate('basic/admins', undefined).result, ['alice', 'bob'])
    assert.deepEqual(snapshot.evaluate('basic/nested/deeper/tags', undefined).result, ['a', 'b'])
  })

  test('the answering bundle and its revision are reported', () => {
    const e = snapshot.evaluate('other/greeting', { name: 'svc' })
    assert.equal(e.result, 'hello svc')
    assert.equal(e.bundle, 'other')
    assert.equal(e.revision, 'other-rev')
    assert.deepEqual(snapshot.revisions(), { basic: { revision: 'basic-rev' }, other: { revision: 'other-rev' } })
  })

  test('policies see the data of every active bundle, as in OPA', () => {
    assert.deepEqual(snapshot.evaluate('other/basic_admins', {}).result, ['alice', 'bob'])
  })

  test('a path no bundle owns is undefined, as OPA answers', () => {
    assert.deepEqual(snapshot.resolve('nobody/allow'), { kind: 'none' })
    const e = snapshot.evaluate('nobody/allow', {})
    assert.equal(e.defined, false)
    assert.equal(Object.hasOwn(e, 'result'), false)
  })

  test('a path inside a bundle that is neither an entrypoint nor data is PORTCULLIS_POLICY_PATH_NOT_FOUND', () => {
    assert.throws(() => snapshot.evaluate('basic/not_a_rule', {}), { code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
    // the whole package cannot be computed from its entrypoints
    assert.throws(() => snapshot.evaluate('basic', {}), { code: 'PORTCULLIS_POLICY_PATH_NOT_FOUND' })
  })
})
