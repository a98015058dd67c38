import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager, type ActivationEvent } from '../../src/bundles/activate.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture, copyFixture, buildBundleDir } from '../helpers/bundles.js'

describe('bundle activation: atomic swap, last known good, status', needsOpa(), () => {
  let dir: string
  let v1: string
  let v2: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-act-'))
    v1 = buildFixture('basic', dir, { out: 'v1.tar.gz', revision: 'v1' })
    v2 = buildFixture('basic', dir, { out: 'v2.tar.gz', revision: 'v2' })
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('NOT_READY until the first activation, then OK with revision and time', async () => {
    const now = new Date('2026-01-02T03:04:05.000Z')
    const m = new BundleManager({ now: () => now })
    m.expect('basic', v1)
    assert.equal(m.ready(), false)
    assert.equal(m.status()[0]?.state, 'NOT_READY')
    assert.equal(await m.load(v1, 'basic'), true)
    assert.equal(m.ready(), true)
    const s = m.status()[0]
    assert.equal(s?.state, 'OK')
    assert.equal(s?.active_revision, 'v1')
    assert.equal(s?.activated_at, '2026-01-02T03:04:05.000Z')
  })

  test('a bad bundle leaves the last good revision serving and is reported', async () => {
    const m = new BundleManager()
    await m.load(v1, 'basic')
    const bad = join(dir, 'bad.tar.gz')
    writeFileSync(bad, 'garbage')
    assert.equal(await m.load(bad, 'basic'), false)
    assert.equal(m.snapshot.evaluate('basic/allow', { user: 'alice' }).revision, 'v1')
    const s = m.status()[0]
    assert.equal(s?.state, 'ERROR')
    assert.equal(s?.active_revision, 'v1')
    assert.equal(s?.last_error?.code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')
    // and a good one afterwards recovers
    assert.equal(await m.load(v2, 'basic'), true)
    assert.equal(m.status()[0]?.state, 'OK')
    assert.equal(m.status()[0]?.last_error, undefined)
  })

  test('evaluations that took the old snapshot finish on it; later ones see the new revision', async () => {
    const m = new BundleManager()
    await m.load(v1, 'basic')
    const inFlight = m.snapshot
    const events: ActivationEvent[] = []
    m.on('activate', (e) => events.push(e))
    await m.load(v2, 'basic')
    assert.equal(inFlight.evaluate('basic/allow', { user: 'alice' }).revision, 'v1')
    assert.equal(m.snapshot.evaluate('basic/allow', { user: 'alice' }).revision, 'v2')
    assert.equal(events.length, 1)
    assert.equal(events[0]?.revision, 'v2')
    assert.ok(m.snapshot.generation > inFlight.generation)
  })

  test('a bundle whose roots overlap another active bundle is rejected', async () => {
    const m = new BundleManager()
    await m.load(v1, 'basic')
    const src = copyFixture('other', dir)
    writeFileSync(join(src, '.manifest'), JSON.stringify({ roots: ['other', 'basic/nested'] }))
    const clash = buildBundleDir(src, join(dir, 'clash.tar.gz'))
    assert.equal(await m.load(clash, 'clash'), false)
    assert.equal(m.status().find((s) => s.name === 'clash')?.last_error?.code, 'PORTCULLIS_BUNDLE_ROOTS_OVERLAP')
    assert.deepEqual([...m.snapshot.bundles.keys()], ['basic'])
  })

  test('concurrent loads are applied one at a time, in order', async () => {
    const m = new BundleManager()
    const results = await Promise.all([m.load(v1, 'basic'), m.load(v2, 'basic'), m.load(v1, 'basic')])
    assert.deepEqual(results, [true, true, true])
    assert.equal(m.status()[0]?.active_revision, 'v1')
    assert.equal(m.snapshot.generation, 3)
  })

  test('removing a bundle deactivates it', async () => {
    const m = new BundleManager()
    await m.load(v1, 'basic')
    assert.equal(await m.remove('basic'), true)
    assert.equal(m.snapshot.bundles.size, 0)
    assert.equal(m.snapshot.evaluate('basic/allow', {}).defined, false)
  })
})
