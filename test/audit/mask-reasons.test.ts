/**
 * Masking deny reasons end to end (src/audit/mask.ts, docs/audit.md "Masking"): a real runtime
 * on loopback with the durable audit log (sync), the reasons test policy plus a
 * `system/log/mask` policy compiled by the real opa, configured erase pointers below /reasons,
 * real Data API requests over the wire; events are read back from the audit directory and then
 * replayed (src/replay/replay.ts) against a candidate that allows more: reasons are output, so
 * masking them never makes a decision "not replayable" — masking its input does.
 */
import { eventsById, type AuditEventRecord } from '../helpers/audit.js'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { BundleManager } from '../../src/bundles/activate.js'
import { AUDIT_DEFAULT_ERASE } from '../../src/config/defaults.js'
import { replay } from '../../src/replay/replay.js'
import { buildBundleDir, copyFixture } from '../helpers/bundles.js'
import { startRuntime } from '../helpers/runtime.js'

type Event = AuditEventRecord

const MANIFEST = {
  roots: ['reasons', 'system/log'],
  metadata: { portcullis: { reasons: { 'reasons/allow': 'reasons/why' } } },
}

// the bundle's mask policy (OPA's system.log.mask): what it is given is the event, reasons included
const MASK_POLICY = `package system.log

# METADATA
# entrypoint: true
# scope: document
mask contains {"op": "upsert", "path": "/reasons/0", "value": "[redacted]"} if input.input.user == "carol"

mask contains "/reasons" if input.input.user == "dave"

mask contains "/input/user" if input.input.user == "erin"

# reasons are visible to the mask policy (it may decide on them)
mask contains {"op": "remove", "path": "/reasons/0"} if {
  input.input.user == "frank"
  input.reasons[0] == "only alice may read orders"
}
`


describe('deny reasons masked before they are written; replay still replays them', () => {
  let work: string
  let url: string
  let close: () => Promise<void>
  let auditDir: string
  let candidateFile: string
  const ids = new Map<string, string>()

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'portcullis-mask-reasons-'))
    const bundles = join(work, 'bundles')
    mkdirSync(bundles)
    const src = copyFixture('reasons', work)
    writeFileSync(join(src, '.manifest'), JSON.stringify(MANIFEST))
    mkdirSync(join(src, 'system', 'log'), { recursive: true })
    writeFileSync(join(src, 'system', 'log', 'log.rego'), MASK_POLICY)
    buildBundleDir(src, join(bundles, 'reasons.tar.gz'), { revision: 'served' })
    // the candidate: everyone but erin is allowed
    const cand = copyFixture('reasons', work)
    writeFileSync(join(cand, 'reasons', 'extra.rego'), 'package reasons\n\nallow if input.user != "erin"\n')
    candidateFile = buildBundleDir(cand, join(work, 'candidate.tar.gz'), { revision: 'candidate' })
    auditDir = join(work, 'audit')
    mkdirSync(auditDir)
    const { privateKeyPem } = generateCheckpointKey()
    writeFileSync(join(work, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
    const started = await startRuntime({
      bundles: { dir: bundles },
      audit: { enabled: true, dir: auditDir, durability: 'sync', erase: [...AUDIT_DEFAULT_ERASE, '/reasons/1/user'], checkpoint: { every_events: 4, every_seconds: 3600, key_file: join(work, 'checkpoint.pem') } },
    } as never)
    url = started.url
    close = started.close
    for (const user of ['bob', 'carol', 'dave', 'erin', 'frank']) {
      const r = await fetch(`${url}/v1/data/reasons/allow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: { user } }) })
      assert.equal(r.status, 200)
      const body = await r.json() as { result: boolean, decision_id: string }
      assert.equal(body.result, false)
      ids.set(user, body.decision_id)
    }
  })

  after(async () => {
    await close?.()
    rmSync(work, { recursive: true, force: true })
  })

  test('configured pointers and mask-policy rules under /reasons: erased and masked as OPA lists them, never a mask_error', async () => {
    const events = await eventsById(auditDir)
    const ev = (user: string): Event => events.get(ids.get(user) as string) as Event
    for (const user of ['bob', 'carol', 'dave', 'erin', 'frank']) {
      assert.equal(ev(user).outcome, 'deny', user)
      assert.equal(ev(user).mask_error, undefined, user)
    }
    // configured erase: the object reason loses its user
    assert.deepEqual(ev('bob').reasons, ['only alice may read orders', { code: 'NOT_ALICE' }])
    assert.deepEqual(ev('bob').erased, ['/reasons/1/user'])
    assert.equal(ev('bob').masked, undefined)
    // the mask policy's upsert
    assert.deepEqual(ev('carol').reasons, ['[redacted]', { code: 'NOT_ALICE' }])
    assert.deepEqual(ev('carol').masked, ['/reasons/0'])
    // the mask policy's erase of every reason
    assert.equal(Object.hasOwn(ev('dave'), 'reasons'), false)
    assert.deepEqual(ev('dave').erased, ['/reasons/1/user', '/reasons'])
    assert.deepEqual(ev('dave').input, { user: 'dave' })
    // the mask policy saw the reasons
    assert.deepEqual(ev('frank').reasons, [{ code: 'NOT_ALICE' }])
    assert.deepEqual(ev('frank').erased, ['/reasons/1/user', '/reasons/0'])
    // nothing of the erased values is on disk
    for (const user of ['bob', 'carol', 'dave', 'frank']) assert.equal(JSON.stringify(ev(user).reasons ?? []).includes(`"user":"${user}"`), false, user)
    assert.deepEqual(ev('erin').erased, ['/reasons/1/user', '/input/user'])
  })

  test('replay: events whose reasons were masked are replayed; only the one whose input was masked is not', async () => {
    const manager = new BundleManager()
    assert.equal(await manager.load(candidateFile), true)
    const report = await replay(auditDir, manager.snapshot, { filters: { path: ['reasons/allow'] } })
    assert.equal(report.totals.events, 5)
    assert.equal(report.totals.not_replayable, 1)
    assert.deepEqual(report.not_replayable.map((g) => g.decision_ids), [[ids.get('erin')]])
    assert.equal(report.totals.replayed, 4)
    assert.equal(report.changes.deny_to_allow, 4)
  })
})
