/**
 * replay() on events written by the real durable log writer (AuditLog) into a temp directory,
 * against the reasons test policy compiled by the real opa: the change kinds the end-to-end
 * test does not reach (undefined <-> defined, a candidate that fails), mask_error events, a
 * masked result, and the bound on groups.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AuditLog } from '../../src/audit/log/writer.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { ExportFilter } from '../../src/audit/export/filter.js'
import { BundleManager } from '../../src/bundles/activate.js'
import type { PolicySnapshot } from '../../src/policy/snapshot.js'
import { OVERFLOW, replay } from '../../src/replay/replay.js'
import { buildBundleDir, buildFixture, copyFixture } from '../helpers/bundles.js'
import { logOptions } from '../helpers/audit.js'

const TS = '2026-11-30T10:00:00Z'
let n = 0
const ev = (path: string, fields: Record<string, unknown>): string =>
  JSON.stringify({ decision_id: `d-${++n}`, path, timestamp: TS, transport: 'http', ...fields })

async function writeDir (events: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-replay-engine-'))
  const log = await AuditLog.open(logOptions(dir))
  for (const e of events) await log.append(e)
  await log.close()
  return dir
}

describe('replay(): change kinds, not-replayable events, bounds', () => {
  let work: string
  let snapshot: PolicySnapshot
  const dirs: string[] = []

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-replay-engine-b-'))
    const manager = new BundleManager()
    assert.equal(await manager.load(buildFixture('reasons', work, { revision: 'r1' })), true)
    snapshot = manager.snapshot
  })

  after(() => {
    rmSync(work, { recursive: true, force: true })
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('undefined -> defined, defined -> undefined, and a candidate that fails', async () => {
    const dir = await writeDir([
      ev('reasons/absent', { input: { never_set: true }, outcome: 'undefined' }),
      ev('reasons/absent', { input: {}, result: ['x'], outcome: 'value' }),
      ev('reasons/conflict', { input: { user: 'x' }, result: ['a'], outcome: 'value' }),
      ev('reasons/allow', { input: { user: 'alice' }, result: true, outcome: 'allow' }),
    ])
    dirs.push(dir)
    const r = await replay(dir, snapshot)
    assert.deepEqual(r.changes, { allow_to_deny: 0, deny_to_allow: 0, result_changed: 0, undefined_to_defined: 1, defined_to_undefined: 1, to_error: 1 })
    assert.equal(r.totals.unchanged, 1)
    const failed = r.groups.find((g) => g.path === 'reasons/conflict')?.examples[0]
    assert.equal(failed?.new_error, 'PORTCULLIS_POLICY_CONFLICT')
    assert.equal(failed?.new_outcome, 'error')
    const appeared = r.groups.find((g) => g.path === 'reasons/absent' && g.changes.undefined_to_defined === 1)?.examples[0]
    assert.equal(Object.hasOwn(appeared ?? {}, 'old_result'), false)
    assert.deepEqual(appeared?.new_result, ['never'])
  })

  test('mask_error and masked inputs are not replayable; a masked result is compared by outcome only', async () => {
    const dir = await writeDir([
      ev('reasons/allow', { erased: ['/input', '/result'], mask_error: { code: 'PORTCULLIS_AUDIT_MASK_FAILED', message: 'x' }, outcome: 'deny' }),
      ev('reasons/allow', { input: { user: 'bob' }, masked: ['/input/user'], result: false, outcome: 'deny' }),
      // the stored result was masked: it differs from the candidate's, the outcome does not
      ev('reasons/allow', { input: { user: 'alice' }, erased: ['/result/secret'], result: 'masked away', outcome: 'allow' }),
    ])
    dirs.push(dir)
    const r = await replay(dir, snapshot)
    assert.equal(r.totals.not_replayable, 2)
    assert.deepEqual(r.not_replayable.map((g) => g.reasons), [{ masked: 1, mask_error: 1 }])
    assert.equal(r.totals.replayed, 1)
    assert.equal(r.totals.unchanged, 1)
  })

  test('groups are bounded: beyond the limit, changes are counted in one overflow group', async () => {
    const callers = ['spiffe://example.org/a', 'spiffe://example.org/b', 'spiffe://example.org/c', 'spiffe://example.org/d']
    const dir = await writeDir(callers.map((id) => ev('reasons/allow', { input: { user: 'bob', identity: { type: 'jwt-svid', spiffe_id: id } }, identity: { type: 'jwt-svid', spiffe_id: id }, result: true, outcome: 'allow' })))
    dirs.push(dir)
    const r = await replay(dir, snapshot, { maxGroups: 2, examples: 1 })
    assert.equal(r.groups_truncated, true)
    assert.equal(r.totals.changed, 4)
    assert.deepEqual(r.groups.map((g) => [g.caller, g.changed, g.examples.length]), [[OVERFLOW, 2, 1], [callers[0], 1, 1], [callers[1], 1, 1]])
  })
})

describe('replay(): stored inputs keep the digits the policy saw', () => {
  let work: string

  before(() => { work = mkdtempSync(join(tmpdir(), 'portcullis-replay-exact-')) })
  after(() => rmSync(work, { recursive: true, force: true }))

  test('an id beyond 2^53 in a stored input is replayed as written, not rounded to a double', async () => {
    const src = copyFixture('bigdata', work)
    mkdirSync(join(src, 'bigdata', 'values'), { recursive: true })
    writeFileSync(join(src, 'bigdata', 'values', 'data.json'), '{"big":123456789012345678901234567890}')
    const manager = new BundleManager()
    assert.equal(await manager.load(buildBundleDir(src, join(work, 'bigdata.tar.gz'), { revision: 'r1' })), true)
    // the event text as the log stores it (JSON.stringify cannot write these digits)
    const stored = (id: string, result: boolean): string => ev('bigdata/input_matches', { input: { id: 0 }, result, outcome: result ? 'allow' : 'deny' }).replace('"id":0', `"id":${id}`)
    const dir = await writeDir([stored('123456789012345678901234567890', true), stored('123456789012345678901234567891', false)])
    try {
      const r = await replay(dir, manager.snapshot)
      assert.equal(r.totals.unchanged, 2, JSON.stringify(r.changes))
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('replay(): a time range is read as the export reads it', () => {
  let work: string
  let snapshot: PolicySnapshot
  let dir: string
  const T0 = Date.parse('2026-11-01T00:00:00Z')
  /** Events 20 min apart over almost three days, in small segments: many segments, each spanning hours. */
  const STEP_MS = 20 * 60 * 1000
  const EVENTS = 200
  const at = (i: number): string => new Date(T0 + i * STEP_MS).toISOString()

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-replay-range-'))
    const manager = new BundleManager()
    assert.equal(await manager.load(buildFixture('reasons', work, { revision: 'r1' })), true)
    snapshot = manager.snapshot
    dir = join(work, 'audit')
    mkdirSync(dir)
    const log = await AuditLog.open(logOptions(dir, { segmentMaxBytes: 4096 }))
    for (let i = 0; i < EVENTS; i++) {
      await log.append(JSON.stringify({ decision_id: `r-${i}`, path: 'reasons/allow', timestamp: at(i), transport: 'http', input: { user: 'alice' }, result: true, outcome: 'allow' }))
    }
    await log.close()
  })
  after(() => rmSync(work, { recursive: true, force: true }))

  test('events exactly in [from, to) are replayed, and reading stops where the export stops (not at the end of the log)', async () => {
    const from = 60
    const to = 100
    const filters = { from: at(from), to: at(to) }
    const r = await replay(dir, snapshot, { filters })
    // the bounds are exact: the event stamped `from` is in, the one stamped `to` is out
    assert.equal(r.totals.events, to - from)
    assert.equal(r.totals.unchanged, to - from)
    // the records read are the export's seq range, which ends well before the log does
    const reader = await AuditDirReader.open(dir)
    try {
      const main = reader.stream('main')
      const [start, end] = await main.seqRange(new ExportFilter(filters), await main.treeSize())
      assert.ok(end < EVENTS, `the export stops at seq ${end}`)
      assert.equal(r.totals.records_read, end - start)
    } finally { reader.close() }
    // without `to`, reading goes on to the end
    const open = await replay(dir, snapshot, { filters: { from: at(from) } })
    assert.equal(open.totals.events, EVENTS - from)
  })
})
