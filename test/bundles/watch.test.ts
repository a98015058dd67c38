import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync, closeSync, cpSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager } from '../../src/bundles/activate.js'
import { bundleFor, watchBundles } from '../../src/bundles/watch.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'
import { sleep, waitFor } from '../helpers/wait.js'

const revisionOf = (m: BundleManager, name: string): string | undefined => m.status().find((s) => s.name === name)?.active_revision

test('bundleFor maps changed paths to bundles', () => {
  assert.deepEqual(bundleFor('/b', '/b/authz.tar.gz'), { name: 'authz', source: '/b/authz.tar.gz' })
  assert.deepEqual(bundleFor('/b', '/b/dirbundle/x/data.json'), { name: 'dirbundle', source: '/b/dirbundle' })
  assert.equal(bundleFor('/b', '/b/.authz.tar.gz.tmp'), undefined)
  assert.equal(bundleFor('/b', '/elsewhere/x.tar.gz'), undefined)
})

describe('hot reload of a watched bundles directory', needsOpa(), () => {
  let work: string
  const rev: Record<string, string> = {}
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-watch-'))
    for (const r of ['v1', 'v2', 'v3']) rev[r] = buildFixture('basic', work, { out: `basic-${r}.tar.gz`, revision: r })
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  function setup (t: { after: (fn: () => Promise<void>) => void }): { dir: string, m: BundleManager, start: () => Promise<void> } {
    const dir = mkdtempSync(join(work, 'bundles-'))
    const m = new BundleManager()
    let close = async (): Promise<void> => {}
    t.after(async () => close())
    return {
      dir,
      m,
      start: async () => {
        const w = watchBundles(dir, m, { debounceMs: 50, stabilityMs: 150 })
        close = w.close
        await w.ready
      },
    }
  }

  test('loads what is there at start, then a write-then-rename replacement', async (t) => {
    const { dir, m, start } = setup(t)
    copyFileSync(rev.v1 as string, join(dir, 'basic.tar.gz'))
    await start()
    assert.equal(revisionOf(m, 'basic'), 'v1')
    // stage under a dot-name (ignored), then rename into place atomically
    copyFileSync(rev.v2 as string, join(dir, '.basic.tar.gz.tmp'))
    renameSync(join(dir, '.basic.tar.gz.tmp'), join(dir, 'basic.tar.gz'))
    await waitFor(() => revisionOf(m, 'basic') === 'v2', 'v2 to activate')
    assert.equal(m.status()[0]?.last_error, undefined)
  })

  test('a slow in-place copy is loaded once complete, never half-written', async (t) => {
    const { dir, m, start } = setup(t)
    copyFileSync(rev.v1 as string, join(dir, 'basic.tar.gz'))
    await start()
    const failures: string[] = []
    m.on('failure', (f) => failures.push(f.error.code))
    const bytes = readFileSync(rev.v3 as string)
    const fd = openSync(join(dir, 'basic.tar.gz'), 'w')
    const chunk = Math.ceil(bytes.length / 8)
    for (let off = 0; off < bytes.length; off += chunk) {
      writeSync(fd, bytes, off, Math.min(chunk, bytes.length - off))
      await sleep(40)
      // while the copy is in progress the old revision keeps serving
      assert.equal(m.snapshot.evaluate('basic/allow', { user: 'alice' }).revision, 'v1')
    }
    closeSync(fd)
    await waitFor(() => revisionOf(m, 'basic') === 'v3', 'v3 to activate')
    assert.deepEqual(failures, [], 'no half-written file was loaded')
  })

  test('a bad bundle keeps the last good revision serving and is reported', async (t) => {
    const { dir, m, start } = setup(t)
    copyFileSync(rev.v1 as string, join(dir, 'basic.tar.gz'))
    await start()
    writeFileSync(join(dir, '.bad'), 'not a bundle')
    renameSync(join(dir, '.bad'), join(dir, 'basic.tar.gz'))
    await waitFor(() => m.status()[0]?.state === 'ERROR', 'the failure to be reported')
    assert.equal(m.status()[0]?.last_error?.code, 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID')
    assert.equal(m.snapshot.evaluate('basic/allow', { user: 'alice' }).revision, 'v1')
  })

  test('a new bundle is added and a removed bundle is deactivated', async (t) => {
    const { dir, m, start } = setup(t)
    await start()
    assert.equal(m.snapshot.bundles.size, 0)
    copyFileSync(rev.v1 as string, join(dir, '.x'))
    renameSync(join(dir, '.x'), join(dir, 'basic.tar.gz'))
    await waitFor(() => revisionOf(m, 'basic') === 'v1', 'the new bundle')
    unlinkSync(join(dir, 'basic.tar.gz'))
    await waitFor(() => m.snapshot.bundles.size === 0, 'the removal')
  })

  test('a stray entry of the same name (x.tgz, an old x/, a file x) never deactivates x.tar.gz; two sources at once are a conflict, the active revision keeps serving', async (t) => {
    const { dir, m, start } = setup(t)
    copyFileSync(rev.v1 as string, join(dir, 'basic.tar.gz'))
    await start()
    const serving = (): boolean => m.snapshot.evaluate('basic/allow', { user: 'alice' }).revision === 'v1'
    const failures: string[] = []
    m.on('failure', (f) => failures.push(f.error.code))
    // a file named like the bundle, not a bundle source: created and deleted, nothing changes
    writeFileSync(join(dir, 'basic'), 'notes')
    await sleep(300)
    unlinkSync(join(dir, 'basic'))
    await sleep(300)
    await m.settled()
    assert.ok(serving(), 'a stray file does not deactivate the bundle')
    // a second source of the same name: a conflict, reported; the active revision keeps serving
    writeFileSync(join(dir, 'basic.tgz'), 'not a bundle')
    await waitFor(() => m.statusOf('basic')?.last_error?.code === 'PORTCULLIS_BUNDLE_NAME_CONFLICT', 'the conflict to be reported')
    assert.ok(serving())
    assert.equal(m.statusOf('basic')?.state, 'ERROR')
    // the stray source removed: the bundle is whole again, still v1
    unlinkSync(join(dir, 'basic.tgz'))
    await waitFor(() => m.statusOf('basic')?.state === 'OK', 'the conflict to clear')
    assert.ok(serving())
    // an old unpacked directory of the same name, then removed: the same
    mkdirSync(join(dir, 'basic'))
    writeFileSync(join(dir, 'basic', 'README'), 'old')
    await waitFor(() => m.statusOf('basic')?.last_error?.code === 'PORTCULLIS_BUNDLE_NAME_CONFLICT', 'the directory conflict')
    rmSync(join(dir, 'basic'), { recursive: true })
    await waitFor(() => m.statusOf('basic')?.state === 'OK', 'the directory conflict to clear')
    assert.ok(serving())
    assert.equal(m.snapshot.bundles.size, 1)
    assert.deepEqual(failures, [], 'no source was loaded while two were there')
  })

  test('two sources of one name at start: neither is loaded, the status says why', async (t) => {
    const { dir, m, start } = setup(t)
    copyFileSync(rev.v1 as string, join(dir, 'basic.tar.gz'))
    copyFileSync(rev.v2 as string, join(dir, 'basic.tgz'))
    await start()
    assert.equal(m.snapshot.bundles.size, 0)
    assert.equal(m.statusOf('basic')?.last_error?.code, 'PORTCULLIS_BUNDLE_NAME_CONFLICT')
    unlinkSync(join(dir, 'basic.tgz'))
    await waitFor(() => revisionOf(m, 'basic') === 'v1', 'the one source left to load')
  })

  test('an unpacked directory bundle reloads when a file in it changes', async (t) => {
    const { dir, m, start } = setup(t)
    const unpacked = join(dir, 'basic')
    mkdirSync(unpacked)
    execFileSync('tar', ['xzf', rev.v1 as string, '-C', unpacked])
    await start()
    assert.equal(revisionOf(m, 'basic'), 'v1')
    assert.equal(m.snapshot.evaluate('basic/allow', { user: 'carol' }).result, false)
    // replace data.json (as an operator would), keeping the manifest
    const staged = join(work, `staged-${Date.now()}`)
    cpSync(unpacked, staged, { recursive: true })
    writeFileSync(join(staged, 'data.json'), JSON.stringify({ basic: { admins: ['carol'], flag: false, nested: { deeper: { level: 1, tags: [] } } } }))
    renameSync(join(staged, 'data.json'), join(unpacked, 'data.json'))
    await waitFor(() => m.snapshot.generation >= 2, 'the reload')
    assert.equal(m.snapshot.evaluate('basic/allow', { user: 'carol' }).result, true)
  })
})
