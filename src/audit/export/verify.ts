/**
 * Offline verification of an audit export (format.ts, docs/audit.md "Export") with nothing but
 * the export and the auditor's pinned checkpoint public key: each checkpoint's signature, each
 * event's leaf hash and inclusion proof against its stream's signed root, the order of events,
 * that they match the export's own filters, (CSV) that the readable columns say what the record
 * says, and the trailer's counts. The file is read as a stream (memory independent of its
 * size); the first problem stops the check and is reported with a stable code and its line.
 */
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { KeyObject } from 'node:crypto'
import { parse as csvParse } from 'csv-parse'
import { PortcullisError } from '../../errors.js'
import { parseCheckpoint, parseCheckpointPublicKey, signedByAny } from '../log/checkpoint.js'
import { STREAM_RE, recordSeq } from '../log/layout.js'
import { HASH_SIZE, leafHash, verifyInclusion } from '../log/tree.js'
import { ExportFilter, exportFilters, type ExportFilterInput } from './filter.js'
import { CSV_COLUMNS, CSV_READABLE, EXPORT_FORMAT, EXPORT_VERSION, PROOF_SEPARATOR, escapeFormula, readableColumns, unescapeFormula, type ExportFormat } from './format.js'

export type ExportProblemCode =
  | 'EXPORT_MALFORMED'
  | 'EXPORT_VERSION_UNSUPPORTED'
  | 'EXPORT_TRUNCATED'
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_ORIGIN_MISMATCH'
  | 'EVENT_STREAM_UNKNOWN'
  | 'EVENT_OUT_OF_ORDER'
  | 'EVENT_INDEX_MISMATCH'
  | 'EVENT_BEYOND_CHECKPOINT'
  | 'EVENT_PROOF_INVALID'
  | 'EVENT_FILTER_MISMATCH'
  | 'EVENT_COLUMN_MISMATCH'
  | 'TRAILER_COUNT_MISMATCH'

export interface ExportProblem {
  code: ExportProblemCode
  /** 1-based line of the export (NDJSON line; CSV row, the column-name row being line 1). */
  line: number
  stream?: string
  index?: number
  message: string
}

export interface ExportVerifyReport {
  ok: boolean
  format: ExportFormat
  /** Events verified (all of them when ok). */
  events: number
  streams: Array<{ stream: string, origin: string, size: number, root: string, events: number }>
  filters?: Record<string, unknown>
  created_at?: string
  problem?: ExportProblem
}

class Problem extends Error {
  constructor (readonly problem: ExportProblem) { super(problem.message) }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** The checks, item by item, shared by both formats. */
class ExportChecker {
  private header = false
  private trailer = false
  private filter: ExportFilter | undefined
  private readonly streams = new Map<string, { origin: string, size: number, root: Buffer, rootB64: string, order: number, events: number, last: number }>()
  private current = -1
  events = 0
  filters: Record<string, unknown> | undefined
  createdAt: string | undefined

  constructor (private readonly keys: KeyObject[]) {}

  private fail (code: ExportProblemCode, line: number, message: string, where: { stream?: string, index?: number } = {}): never {
    throw new Problem({ code, line, ...where, message })
  }

  onItem (item: unknown, line: number, csv?: Record<string, string>): void {
    if (!isObj(item)) this.fail('EXPORT_MALFORMED', line, 'not a JSON object')
    if (this.trailer) this.fail('EXPORT_MALFORMED', line, 'content after the trailer')
    if (!this.header) {
      if (item.type !== 'header') this.fail('EXPORT_MALFORMED', line, 'the export does not start with a header')
      this.onHeader(item, line)
      return
    }
    switch (item.type) {
      case 'event': this.onEvent(item, line, csv); return
      case 'trailer': this.onTrailer(item, line); return
      default: this.fail('EXPORT_MALFORMED', line, `unexpected item type ${JSON.stringify(item.type)}`)
    }
  }

  private onHeader (h: Record<string, unknown>, line: number): void {
    if (h.format !== EXPORT_FORMAT) this.fail('EXPORT_MALFORMED', line, `not a ${EXPORT_FORMAT} header`)
    if (h.version !== EXPORT_VERSION) this.fail('EXPORT_VERSION_UNSUPPORTED', line, `export version ${JSON.stringify(h.version)}; this verifier reads version ${EXPORT_VERSION}`)
    if (!isObj(h.filters) || !Array.isArray(h.streams)) this.fail('EXPORT_MALFORMED', line, 'the header needs filters and streams')
    try {
      this.filter = new ExportFilter(exportFilters(h.filters as ExportFilterInput))
    } catch (err) {
      this.fail('EXPORT_MALFORMED', line, `header filters: ${(err as Error).message}`)
    }
    this.filters = h.filters
    if (typeof h.created_at === 'string') this.createdAt = h.created_at
    let order = 0
    for (const s of h.streams as unknown[]) {
      if (!isObj(s) || typeof s.stream !== 'string' || typeof s.note !== 'string') this.fail('CHECKPOINT_MALFORMED', line, 'a stream entry needs stream and note')
      const stream = s.stream
      // a stream id as the writer names them (so never a spreadsheet formula, never free text)
      if (!STREAM_RE.test(stream)) this.fail('CHECKPOINT_MALFORMED', line, `stream ${JSON.stringify(stream)} is not a stream id`)
      if (this.streams.has(stream)) this.fail('CHECKPOINT_MALFORMED', line, `stream ${stream} is listed twice`, { stream })
      let cp
      try { cp = parseCheckpoint(s.note as string) } catch (err) { this.fail('CHECKPOINT_MALFORMED', line, `stream ${stream}: ${(err as Error).message}`, { stream }) }
      if (s.origin !== cp.origin || s.size !== cp.size || s.root !== cp.root.toString('base64')) {
        this.fail('CHECKPOINT_MALFORMED', line, `stream ${stream}: origin, size or root differ from the signed note`, { stream })
      }
      if (!signedByAny(cp.note, this.keys)) this.fail('CHECKPOINT_SIGNATURE_INVALID', line, `stream ${stream}: the checkpoint carries no valid signature by the pinned key${this.keys.length > 1 ? 's' : ''}`, { stream })
      // the signed origin names the stream (`<prefix>/<stream>`): the header cannot relabel a stream
      if (!cp.origin.endsWith(`/${stream}`)) this.fail('CHECKPOINT_ORIGIN_MISMATCH', line, `stream ${stream}: the signed origin ${JSON.stringify(cp.origin)} does not end in /${stream}`, { stream })
      this.streams.set(stream, { origin: cp.origin, size: cp.size, root: cp.root, rootB64: cp.root.toString('base64'), order: order++, events: 0, last: -1 })
    }
    this.header = true
  }

  private onEvent (e: Record<string, unknown>, line: number, csv: Record<string, string> | undefined): void {
    const stream = typeof e.stream === 'string' ? e.stream : undefined
    const index = typeof e.index === 'number' && Number.isSafeInteger(e.index) && e.index >= 0 ? e.index : undefined
    if (stream === undefined || index === undefined || typeof e.record !== 'string' || !Array.isArray(e.inclusion_proof)) {
      this.fail('EXPORT_MALFORMED', line, 'an event needs stream, index, record and inclusion_proof', { ...(stream !== undefined ? { stream } : {}) })
    }
    const where = { stream, index }
    const s = this.streams.get(stream)
    if (s === undefined) this.fail('EVENT_STREAM_UNKNOWN', line, `stream ${stream} has no checkpoint in the header`, where)
    if (s.order < this.current || (s.order === this.current && index <= s.last)) {
      this.fail('EVENT_OUT_OF_ORDER', line, `events must be grouped by stream in header order, indexes increasing (index ${index} after ${s.last})`, where)
    }
    this.current = s.order
    if (index >= s.size) this.fail('EVENT_BEYOND_CHECKPOINT', line, `index ${index} is not in the checkpoint's tree of size ${s.size}`, where)
    const bytes = Buffer.from(e.record, 'utf8')
    if (recordSeq(bytes) !== index) this.fail('EVENT_INDEX_MISMATCH', line, `the record's seq is not ${index}`, where)
    const proof: Buffer[] = []
    for (const p of e.inclusion_proof as unknown[]) {
      const h = typeof p === 'string' ? Buffer.from(p, 'base64') : Buffer.alloc(0)
      if (h.length !== HASH_SIZE || h.toString('base64') !== p) this.fail('EVENT_PROOF_INVALID', line, 'an inclusion proof entry is not a base64 SHA-256 hash', where)
      proof.push(h)
    }
    if (!verifyInclusion(index, s.size, leafHash(bytes), proof, s.root)) {
      this.fail('EVENT_PROOF_INVALID', line, `record ${index} with its proof does not lead to the signed root of size ${s.size} (the record or the proof was changed)`, where)
    }
    let parsed: Record<string, unknown>
    try { parsed = JSON.parse(e.record) as Record<string, unknown> } catch { this.fail('EVENT_FILTER_MISMATCH', line, 'the record is not JSON', where) }
    if (!(this.filter as ExportFilter).matches(parsed)) this.fail('EVENT_FILTER_MISMATCH', line, 'the event does not match the export\'s filters', where)
    if (csv !== undefined) {
      // every cell exactly as the exporter writes it, formula-escaped (CWE-1236)
      if (csv.stream !== escapeFormula(stream) || csv.index !== escapeFormula(String(index)) || csv.inclusion_proof !== escapeFormula((e.inclusion_proof as string[]).join(PROOF_SEPARATOR))) {
        this.fail('EVENT_COLUMN_MISMATCH', line, 'the stream, index or inclusion_proof cell is not written as the exporter writes it', where)
      }
      const want = readableColumns(parsed)
      for (const c of CSV_READABLE) {
        if (csv[c] !== escapeFormula(want[c])) this.fail('EVENT_COLUMN_MISMATCH', line, `column ${c} does not say what the record says`, where)
      }
    }
    s.last = index
    s.events++
    this.events++
  }

  private onTrailer (t: Record<string, unknown>, line: number): void {
    // per stream first: it names where events are missing
    const counts = isObj(t.streams) ? t.streams : {}
    for (const [id, s] of this.streams) {
      if (counts[id] !== s.events) this.fail('TRAILER_COUNT_MISMATCH', line, `the trailer counts ${String(counts[id])} events of stream ${id}; the export holds ${s.events}`, { stream: id })
    }
    for (const id of Object.keys(counts)) if (!this.streams.has(id)) this.fail('TRAILER_COUNT_MISMATCH', line, `the trailer counts events of stream ${id}, which the header does not list`, { stream: id })
    if (t.events !== this.events) this.fail('TRAILER_COUNT_MISMATCH', line, `the trailer counts ${String(t.events)} events; the export holds ${this.events}`)
    this.trailer = true
  }

  finish (line: number): void {
    if (!this.header) this.fail('EXPORT_TRUNCATED', line, 'the export is empty')
    if (!this.trailer) this.fail('EXPORT_TRUNCATED', line, 'the export ends without its trailer (it was cut)')
  }

  report (format: ExportFormat, problem?: ExportProblem): ExportVerifyReport {
    return {
      ok: problem === undefined,
      format,
      events: this.events,
      streams: [...this.streams].map(([stream, s]) => ({ stream, origin: s.origin, size: s.size, root: s.rootB64, events: s.events })),
      ...(this.filters !== undefined ? { filters: this.filters } : {}),
      ...(this.createdAt !== undefined ? { created_at: this.createdAt } : {}),
      ...(problem !== undefined ? { problem } : {}),
    }
  }
}

/** Whether a file looks like an export, and which format: NDJSON starts with `{`, CSV with the column row. */
export async function exportFormatOf (path: string): Promise<ExportFormat | undefined> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(64)
    const { bytesRead } = await fh.read(buf, 0, 64, 0)
    const head = buf.subarray(0, bytesRead).toString('utf8')
    if (head.startsWith('{')) return 'ndjson'
    if (head.startsWith(`${CSV_COLUMNS[0]},${CSV_COLUMNS[1]},`)) return 'csv'
    return undefined
  } finally { await fh.close() }
}

async function endsWithNewline (path: string): Promise<{ size: number, newline: boolean }> {
  const fh = await open(path, 'r')
  try {
    const size = (await fh.stat()).size
    if (size === 0) return { size, newline: false }
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, size - 1)
    return { size, newline: b[0] === 10 }
  } finally { await fh.close() }
}

async function checkNdjson (path: string, checker: ExportChecker): Promise<void> {
  let line = 0
  let carry = ''
  const handle = (text: string): void => {
    line++
    let item: unknown
    try { item = JSON.parse(text) } catch { throw new Problem({ code: 'EXPORT_MALFORMED', line, message: 'not a JSON line' }) }
    checker.onItem(item, line)
  }
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 256 * 1024 })) {
    const parts = (carry + (chunk as string)).split('\n')
    carry = parts.pop() as string
    for (const p of parts) handle(p)
  }
  if (carry !== '') throw new Problem({ code: 'EXPORT_TRUNCATED', line: line + 1, message: 'the last line is cut (no newline): the export was truncated' })
  checker.finish(line)
}

async function checkCsv (path: string, checker: ExportChecker): Promise<void> {
  const { size, newline } = await endsWithNewline(path)
  const parser = createReadStream(path).pipe(csvParse({ info: true, relax_column_count: false, skip_empty_lines: false }))
  let row = 0
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[], info: { bytes: number, lines: number } }>) {
      row++
      const last = info.bytes >= size
      try {
        if (row === 1) {
          if (record.join(',') !== CSV_COLUMNS.join(',')) throw new Problem({ code: 'EXPORT_MALFORMED', line: row, message: `the first row must name the columns ${CSV_COLUMNS.join(',')}` })
          continue
        }
        const cells = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, record[i] as string]))
        let item: unknown
        if (cells.kind === 'event') {
          const index = /^(0|[1-9][0-9]{0,15})$/.test(cells.index as string) ? Number(cells.index) : Number.NaN
          const proofCell = unescapeFormula(cells.inclusion_proof as string)
          item = { type: 'event', stream: unescapeFormula(cells.stream as string), index, record: cells.record, inclusion_proof: proofCell === '' ? [] : proofCell.split(PROOF_SEPARATOR) }
        } else if (cells.kind === 'header' || cells.kind === 'trailer') {
          // the exporter writes only kind and record in these rows: anything else is not its
          const extra = CSV_COLUMNS.find((c) => c !== 'kind' && c !== 'record' && cells[c] !== '')
          if (extra !== undefined) throw new Problem({ code: 'EXPORT_MALFORMED', line: row, message: `the ${cells.kind as string} row's ${extra} cell must be empty` })
          try { item = JSON.parse(cells.record as string) } catch { throw new Problem({ code: 'EXPORT_MALFORMED', line: row, message: `the ${cells.kind as string} row's record is not JSON` }) }
          if (!isObj(item) || item.type !== cells.kind) throw new Problem({ code: 'EXPORT_MALFORMED', line: row, message: `the ${cells.kind as string} row's record is not a ${cells.kind as string}` })
        } else {
          throw new Problem({ code: 'EXPORT_MALFORMED', line: row, message: `unknown row kind ${JSON.stringify(cells.kind)}` })
        }
        checker.onItem(item, row, cells.kind === 'event' ? cells : undefined)
      } catch (err) {
        // whatever is wrong with a last row that was cut mid-way, what happened is the cut
        if (last && !newline && err instanceof Problem) throw new Problem({ code: 'EXPORT_TRUNCATED', line: row, message: `the last row is cut (no newline): the export was truncated (${err.problem.code})` })
        throw err
      }
    }
  } catch (err) {
    if (err instanceof Problem) throw err
    const code = (err as { code?: string }).code
    throw new Problem({ code: code === 'CSV_QUOTE_NOT_CLOSED' || !newline ? 'EXPORT_TRUNCATED' : 'EXPORT_MALFORMED', line: row + 1, message: `CSV: ${(err as Error).message}` })
  }
  checker.finish(row)
}

/**
 * Verifies an export file offline against the auditor's pinned checkpoint key (Ed25519 SPKI
 * PEM), or keys (after a rotation: each stream's checkpoint signed by one of them). Resolves to a report (ok, or the first problem); rejects only when the file or key
 * cannot be read (PORTCULLIS_AUDIT_INVALID).
 */
export async function verifyExport (path: string, publicKeyPem: string | string[], format?: ExportFormat): Promise<ExportVerifyReport> {
  const pems = typeof publicKeyPem === 'string' ? [publicKeyPem] : publicKeyPem
  if (pems.length === 0) throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', 'verifying an export needs the pinned checkpoint public key')
  const keys = pems.map((pem, i) => parseCheckpointPublicKey(pem, pems.length > 1 ? `pinned checkpoint public key ${i + 1}` : undefined))
  const fmt = format ?? await exportFormatOf(path) ?? 'ndjson'
  const checker = new ExportChecker(keys)
  try {
    if (fmt === 'csv') await checkCsv(path, checker)
    else await checkNdjson(path, checker)
  } catch (err) {
    if (err instanceof Problem) return checker.report(fmt, err.problem)
    throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `cannot read the export ${path}: ${(err as Error).message}`, { path })
  }
  return checker.report(fmt)
}
