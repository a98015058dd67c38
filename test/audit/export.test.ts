/**
 * Audit export end to end: a real server with the durable log on answers real decisions over
 * HTTP (two verified workloads and an anonymous caller, allowed, denied and undefined); the log
 * it wrote verifies; `portcullis audit export` slices it by time, outcome, SPIFFE ID and path,
 * in NDJSON and CSV; each slice holds exactly the decisions the server answered that match, and
 * verifies offline with only the export and the pinned public key.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseCsv } from 'csv-parse/sync'
import { main } from '../../src/cli/main.js'
import { verifyAuditDir } from '../../src/audit/log/verify.js'
import { verifyExport } from '../../src/audit/export/verify.js'
import { CSV_COLUMNS } from '../../src/audit/export/format.js'
import { captureIo } from '../helpers/io.js'
import { auditedServer, BACKEND, type AuditedServer, type Decided } from '../helpers/audit-runtime.js'
import { FRONTEND } from '../helpers/identity.js'

describe('audit export of a real server\'s log', () => {
  let server: AuditedServer
  const early: Decided[] = []
  const late: Decided[] = []
  let mid: string
  let end: string

  before(async () => {
    server = await auditedServer()
    for (let i = 0; i < 3; i++) early.push(await server.decide('frontend'))
    early.push(await server.decide('backend'))
    early.push(await server.decide('anonymous'))
    // event timestamps have millisecond precision: the slices' boundary lies strictly between the phases
    const t = Date.now()
    for (let i = 0; i < 100 && Date.now() <= t + 1; i++) await new Promise((resolve) => setTimeout(resolve, 2))
    mid = new Date().toISOString()
    for (let i = 0; i < 100 && Date.now() <= Date.parse(mid) + 1; i++) await new Promise((resolve) => setTimeout(resolve, 2))
    late.push(await server.decide('frontend'))
    late.push(await server.decide('backend'))
    late.push(await server.decide('backend'))
    late.push(await server.decide('frontend', 'authz/decision/nothing'))
    late.push(await server.decide('anonymous'))
    end = new Date(Date.now() + 1000).toISOString()
    // a clean shutdown writes the final checkpoint: every event is covered by a signed root
    await server.close()
  })
  after(async () => { await server?.close().catch(() => undefined) })

  const all = (): Decided[] => [...early, ...late]

  test('the decisions answered produced outcomes of every kind the slices filter on', () => {
    assert.deepEqual(new Set(all().map((d) => d.outcome)), new Set(['allow', 'deny', 'undefined']))
    assert.ok(all().some((d) => d.spiffe_id === BACKEND && d.outcome === 'deny'))
  })

  test('the server\'s audit log verifies with the pinned key and holds every answered decision', async () => {
    const report = await verifyAuditDir(server.auditDir, { publicKeyPem: server.publicKeyPem })
    assert.equal(report.ok, true, JSON.stringify(report))
    assert.equal(report.key.source, 'pinned')
    assert.equal(report.streams.length, 1)
    assert.equal(report.streams[0]?.events, all().length)
  })

  async function exportSlice (args: string[], format: 'ndjson' | 'csv'): Promise<{ ids: string[], file: string }> {
    const file = join(server.keyDir, `slice-${Math.random().toString(36).slice(2)}.${format}`)
    const out = captureIo()
    const code = await main(['audit', 'export', server.auditDir, ...args, '--format', format, '--out', file], out)
    assert.equal(code, 0, out.err())
    const verify = captureIo()
    assert.equal(await main(['audit', 'verify', file, '--key', server.publicKeyFile], verify), 0, verify.out())
    assert.match(verify.out(), /^OK\n/)
    const report = await verifyExport(file, server.publicKeyPem)
    assert.equal(report.ok, true)
    assert.equal(report.format, format)
    const ids: string[] = []
    if (format === 'ndjson') {
      for (const line of readFileSync(file, 'utf8').trimEnd().split('\n')) {
        const item = JSON.parse(line) as { type: string, record?: string }
        if (item.type === 'event') ids.push((JSON.parse(item.record as string) as { decision_id: string }).decision_id)
      }
    } else {
      const rows = parseCsv(readFileSync(file), { columns: true }) as Array<Record<string, string>>
      assert.deepEqual(Object.keys(rows[0] ?? {}), [...CSV_COLUMNS])
      for (const r of rows) {
        if (r.kind !== 'event') continue
        // the readable column and the exact record agree
        assert.equal((JSON.parse(r.record as string) as { decision_id: string }).decision_id, r.decision_id)
        ids.push(r.decision_id as string)
      }
    }
    assert.equal(report.events, ids.length)
    return { ids, file }
  }

  const idsOf = (ds: Decided[]): string[] => ds.map((d) => d.decision_id).sort()

  for (const format of ['ndjson', 'csv'] as const) {
    test(`${format}: the whole log, and a time slice`, async () => {
      assert.deepEqual((await exportSlice([], format)).ids.sort(), idsOf(all()))
      assert.deepEqual((await exportSlice(['--from', mid, '--to', end], format)).ids.sort(), idsOf(late))
      assert.deepEqual((await exportSlice(['--to', mid], format)).ids.sort(), idsOf(early))
    })

    test(`${format}: by outcome (repeatable)`, async () => {
      assert.deepEqual((await exportSlice(['--outcome', 'deny'], format)).ids.sort(), idsOf(all().filter((d) => d.outcome === 'deny')))
      assert.deepEqual((await exportSlice(['--outcome', 'allow', '--outcome', 'undefined', '--from', mid], format)).ids.sort(),
        idsOf(late.filter((d) => d.outcome === 'allow' || d.outcome === 'undefined')))
    })

    test(`${format}: by SPIFFE ID and by path`, async () => {
      assert.deepEqual((await exportSlice(['--spiffe-id', BACKEND], format)).ids.sort(), idsOf(all().filter((d) => d.spiffe_id === BACKEND)))
      assert.deepEqual((await exportSlice(['--spiffe-id', FRONTEND, '--spiffe-id', BACKEND, '--outcome', 'deny'], format)).ids.sort(),
        idsOf(all().filter((d) => d.spiffe_id !== undefined && d.outcome === 'deny')))
      assert.deepEqual((await exportSlice(['--path', 'authz/decision'], format)).ids.sort(), idsOf(all().filter((d) => d.path.startsWith('authz/decision/'))))
      assert.deepEqual((await exportSlice(['--path', '/authz/allow/'], format)).ids.sort(), idsOf(all().filter((d) => d.path === 'authz/allow')))
      assert.deepEqual((await exportSlice(['--spiffe-id', 'spiffe://example.org/nobody'], format)).ids, [])
    })
  }

  test('bad filters are usage errors with stable codes, and no file is left behind', async () => {
    for (const args of [['--from', 'yesterday'], ['--outcome', 'maybe'], ['--spiffe-id', 'frontend'], ['--from', end, '--to', mid]]) {
      const out = captureIo()
      const file = join(server.keyDir, 'bad.ndjson')
      assert.equal(await main(['audit', 'export', server.auditDir, ...args, '--out', file], out), 2, args.join(' '))
      assert.match(out.err(), /^PORTCULLIS_AUDIT_INVALID: /)
      assert.throws(() => readFileSync(file), { code: 'ENOENT' })
    }
    const fmt = captureIo()
    assert.equal(await main(['audit', 'export', server.auditDir, '--format', 'xml'], fmt), 2)
    assert.match(fmt.err(), /^usage error/)
  })

  test('an export without --key is refused: only a pinned key vouches for an export', async () => {
    const { file } = await exportSlice([], 'ndjson')
    const out = captureIo()
    assert.equal(await main(['audit', 'verify', file], out), 2)
    assert.match(out.err(), /--key/)
  })
})

test('from/to: a day the month does not have is refused (not rolled into the next month); a leap second is read', async () => {
  const { parseRfc3339 } = await import('../../src/audit/export/filter.js')
  for (const bad of ['2026-02-31T00:00:00Z', '2025-02-29T00:00:00Z', '2026-04-31T12:00:00+02:00']) {
    assert.throws(() => parseRfc3339(bad, 'from'), { code: 'PORTCULLIS_AUDIT_INVALID' }, bad)
  }
  assert.equal(parseRfc3339('2024-02-29T00:00:00Z', 'from'), Date.UTC(2024, 1, 29))
  assert.equal(parseRfc3339('2016-12-31T23:59:60Z', 'to'), Date.UTC(2017, 0, 1))
})
