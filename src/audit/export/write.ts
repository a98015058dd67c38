/**
 * Streaming export of a filtered slice of an audit directory (every stream), in NDJSON or CSV,
 * carrying what an auditor needs to verify it offline: per stream the signed checkpoint, per
 * event its exact record bytes, index and inclusion proof (format.ts, docs/audit.md "Export").
 *
 * Memory does not depend on the size of the export: records are read segment by segment
 * (AuditDirReader.records), each proof is O(log n) positional reads of the hashes file, and the
 * output is a pull-based Readable — nothing is read before the consumer (a file, an HTTP
 * response) asks for more. Only records covered by each stream's latest checkpoint are
 * exported: an event without a signed root to prove against proves nothing.
 *
 * A time-bounded export does not read the whole log: segments are skipped by the timestamp of
 * their first record (StreamReader.seqRange; see TIME_SLACK_MS for why that is safe).
 */
import { Readable, pipeline } from 'node:stream'
import { stringify } from 'csv-stringify'
import { PortcullisError } from '../../errors.js'
import { AuditDirReader, TIME_SLACK_MS, type StreamReader } from '../log/reader.js'
import { ExportFilter, type ExportFilters } from './filter.js'
import { CSV_COLUMNS, EXPORT_FORMAT, EXPORT_VERSION, PROOF_SEPARATOR, readableColumns, type ExportEvent, type ExportFormat, type ExportHeader, type ExportStreamCheckpoint, type ExportTrailer } from './format.js'

export { TIME_SLACK_MS }

/** Output chunk size for NDJSON: lines are batched so a large export is not millions of tiny writes. */
const CHUNK_BYTES = 64 * 1024

export interface ExportOptions {
  filters: ExportFilters
  format: ExportFormat
  /** The export's created_at (tests). */
  now?: () => Date
}

type Item = { kind: 'header', header: ExportHeader } | { kind: 'event', event: ExportEvent, parsed: Record<string, unknown> } | { kind: 'trailer', trailer: ExportTrailer }

/**
 * Opens the directory and reads each stream's latest checkpoint: everything that can fail
 * before the first byte is written (so HTTP can still answer with an error status).
 */
export async function prepareExport (dir: string, opts: ExportOptions): Promise<{ header: ExportHeader, items: () => AsyncGenerator<Item> }> {
  const filter = new ExportFilter(opts.filters)
  const reader = await AuditDirReader.open(dir)
  const streams: Array<{ cp: ExportStreamCheckpoint, reader: StreamReader }> = []
  try {
    for (const id of reader.streams()) {
      const s = reader.stream(id)
      // the largest checkpoint, not merely the file's last note: an older genuine note appended
      // after it would otherwise shrink what the export proves without a word
      let cp = await s.latestCheckpoint()
      for (const c of cp === undefined ? [] : await s.checkpoints()) if (c.size > (cp?.size ?? 0)) cp = c
      if (cp === undefined || cp.size === 0) continue
      streams.push({ cp: { stream: id, origin: cp.origin, size: cp.size, root: cp.root.toString('base64'), note: cp.note }, reader: s })
    }
  } catch (err) {
    reader.close()
    throw err instanceof PortcullisError ? err : new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', `cannot read the audit directory ${dir}: ${(err as Error).message}`, { dir })
  }
  const header: ExportHeader = {
    type: 'header',
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    created_at: (opts.now?.() ?? new Date()).toISOString(),
    filters: opts.filters,
    streams: streams.map((s) => s.cp),
  }
  async function * items (): AsyncGenerator<Item> {
    try {
      yield { kind: 'header', header }
      const counts: Record<string, number> = {}
      let total = 0
      for (const { cp, reader: s } of streams) {
        counts[cp.stream] = 0
        const [from, to] = await s.seqRange(filter, cp.size)
        let next = from
        for await (const { seq, bytes } of s.records(from, to)) {
          // records missing where retention.log records no removal: deleted, not retained —
          // refused, as the shipper refuses them, rather than exported as if complete
          if (seq > next && !await s.retentionCovers(next, seq)) {
            throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `audit stream ${cp.stream}: records ${next}..${seq - 1} are missing and retention.log does not record their removal (run portcullis audit verify on the directory)`, { stream: cp.stream, seq: next })
          }
          next = seq + 1
          let parsed: Record<string, unknown>
          try { parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> } catch {
            throw new PortcullisError('PORTCULLIS_AUDIT_INVALID', `audit stream ${cp.stream} record ${seq} is not JSON (run portcullis audit verify on the directory)`, { stream: cp.stream, seq })
          }
          if (!filter.matches(parsed)) continue
          const proof = await s.inclusionProof(seq, cp.size)
          counts[cp.stream] = (counts[cp.stream] as number) + 1
          total++
          yield { kind: 'event', event: { type: 'event', stream: cp.stream, index: seq, record: bytes.toString('utf8'), inclusion_proof: proof.map((h) => h.toString('base64')) }, parsed }
        }
      }
      yield { kind: 'trailer', trailer: { type: 'trailer', events: total, streams: counts } }
    } finally {
      reader.close()
    }
  }
  return { header, items }
}

async function * ndjsonChunks (items: AsyncGenerator<Item>): AsyncGenerator<string> {
  let buf = ''
  for await (const it of items) {
    buf += JSON.stringify(it.kind === 'header' ? it.header : it.kind === 'event' ? it.event : it.trailer) + '\n'
    if (buf.length >= CHUNK_BYTES) { yield buf; buf = '' }
  }
  if (buf !== '') yield buf
}

async function * csvRows (items: AsyncGenerator<Item>): AsyncGenerator<string[]> {
  const empty = (): Record<string, string> => Object.fromEntries(CSV_COLUMNS.map((c) => [c, '']))
  for await (const it of items) {
    const row = empty()
    row.kind = it.kind
    if (it.kind === 'event') {
      Object.assign(row, readableColumns(it.parsed))
      row.stream = it.event.stream
      row.index = String(it.event.index)
      row.record = it.event.record
      row.inclusion_proof = it.event.inclusion_proof.join(PROOF_SEPARATOR)
    } else {
      row.record = JSON.stringify(it.kind === 'header' ? it.header : it.trailer)
    }
    yield CSV_COLUMNS.map((c) => row[c] as string)
  }
}

/**
 * The export as a Readable of bytes (pull-based: backpressure from the consumer stops the
 * reading). Errors before the first byte (bad directory) reject; an error while streaming
 * destroys the Readable — the output then has no trailer, which the verifier reports.
 */
export async function exportReadable (dir: string, opts: ExportOptions): Promise<{ header: ExportHeader, readable: Readable, contentType: string }> {
  const { header, items } = await prepareExport(dir, opts)
  if (opts.format === 'ndjson') {
    return { header, readable: Readable.from(ndjsonChunks(items()), { objectMode: false }), contentType: 'application/x-ndjson' }
  }
  const csv = stringify({ header: true, columns: [...CSV_COLUMNS], escape_formulas: true, record_delimiter: 'unix' })
  const rows = Readable.from(csvRows(items()), { objectMode: true })
  // pipeline, not pipe: a consumer that goes away (a client disconnects) destroys the rows too,
  // which ends the generator and closes the reader's files
  pipeline(rows, csv, () => {})
  return { header, readable: csv, contentType: 'text/csv; charset=utf-8' }
}
