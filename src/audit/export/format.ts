/**
 * The audit export format, version 1 (docs/audit.md "Export"), shared by the exporter and the
 * offline verifier so the two cannot drift. An export is a header (format, version, filters,
 * and per stream the signed checkpoint every proof is against), one item per event (its
 * stream, its index, its exact stored record bytes and its inclusion proof), and a trailer with
 * counts so a cut export is detected. NDJSON writes each as one JSON line; CSV writes one row
 * each, the header and trailer objects as JSON in the `record` column of rows whose `kind` says
 * what they are.
 */
import type { ExportFilters } from './filter.js'

export const EXPORT_FORMAT = 'portcullis-audit-export'
export const EXPORT_VERSION = 1

export type ExportFormat = 'ndjson' | 'csv'
export const EXPORT_FORMATS: readonly ExportFormat[] = ['ndjson', 'csv']

export interface ExportStreamCheckpoint {
  stream: string
  /** Parsed from the note, for people; the verifier checks they equal the note's. */
  origin: string
  size: number
  /** Standard base64 of the 32-byte root. */
  root: string
  /** The signed checkpoint note, exactly as the log stored it. */
  note: string
}

export interface ExportHeader {
  type: 'header'
  format: typeof EXPORT_FORMAT
  version: typeof EXPORT_VERSION
  created_at: string
  filters: ExportFilters
  /** One entry per stream with a checkpoint, in stream order; events follow in this order. */
  streams: ExportStreamCheckpoint[]
}

export interface ExportEvent {
  type: 'event'
  stream: string
  /** The record's seq: its leaf index in the stream's tree. */
  index: number
  /** The exact stored record (UTF-8 text, no newline): the Merkle leaf entry. */
  record: string
  /** RFC 9162 PATH(index, D[0:size]) against the stream's checkpoint, deepest first, standard base64. */
  inclusion_proof: string[]
}

export interface ExportTrailer {
  type: 'trailer'
  /** Events in the export. */
  events: number
  /** Events per stream (every header stream listed, 0 when none matched). */
  streams: Record<string, number>
}

/** CSV columns, in order. `kind` is header | event | trailer. */
export const CSV_COLUMNS = ['kind', 'stream', 'index', 'timestamp', 'decision_id', 'path', 'outcome', 'spiffe_id', 'subject', 'transport', 'cached', 'record', 'inclusion_proof'] as const

/** The readable columns of an event row, derived from its record (the verifier re-derives and compares them). */
export const CSV_READABLE = ['timestamp', 'decision_id', 'path', 'outcome', 'spiffe_id', 'subject', 'transport', 'cached'] as const

const s = (v: unknown): string => typeof v === 'string' ? v : ''

/**
 * Readable column values of a parsed record. A gap record (events shed while the disk failed)
 * has outcome `gap` and its first shed time as timestamp.
 */
export function readableColumns (r: Record<string, unknown>): Record<(typeof CSV_READABLE)[number], string> {
  const identity = r.identity !== null && typeof r.identity === 'object' ? r.identity as Record<string, unknown> : {}
  const gap = r.type === 'gap'
  return {
    timestamp: gap ? s(r.first_shed_at) : s(r.timestamp),
    decision_id: s(r.decision_id),
    path: s(r.path),
    outcome: gap ? 'gap' : s(r.outcome),
    spiffe_id: s(identity.spiffe_id),
    subject: s(identity.subject),
    transport: s(r.transport),
    cached: typeof r.cached === 'boolean' ? String(r.cached) : '',
  }
}

/** The inclusion proof in one CSV cell: base64 hashes separated by single spaces. */
export const PROOF_SEPARATOR = ' '

/**
 * csv-stringify's `escape_formulas` prefixes a cell starting with = + - @ TAB or CR (or their
 * full-width forms) with a single quote, so a spreadsheet does not run it as a formula
 * (CWE-1236). The verifier compares readable cells with the escaped form of what it derives
 * from the record (a genuine value may itself start with a quote), and undoes the prefix only
 * on proof cells, whose base64 never starts with a quote but may start with '+'.
 */
const FORMULA_START = '=+-@\t\r\uFF1D\uFF0B\uFF0D\uFF20'

export function escapeFormula (cell: string): string {
  return cell.length > 0 && FORMULA_START.includes(cell[0] as string) ? `'${cell}` : cell
}

export function unescapeFormula (cell: string): string {
  return cell.length >= 2 && cell[0] === "'" && FORMULA_START.includes(cell[1] as string) ? cell.slice(1) : cell
}
