import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { exportFilters } from '../audit/export/filter.js'
import { EXPORT_FORMATS, type ExportFormat } from '../audit/export/format.js'
import { exportReadable } from '../audit/export/write.js'
import { EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis audit export <dir> [--from <time>] [--to <time>] [--outcome <o>]...
                               [--spiffe-id <id>]... [--path <path>]... [--format ndjson|csv]
                               [--out <file>]

Exports a slice of every stream of an audit directory, with what an auditor needs to verify it
offline: each stream's signed checkpoint, and each event's index, exact stored record and
inclusion proof (docs/audit.md "Export"). Check it with
  portcullis audit verify <file> --key <pinned public key>
Only events covered by a stream's latest checkpoint are exported. Memory does not grow with
the size of the export.

Options:
  --from <time>       events at or after this RFC 3339 time (e.g. 2026-11-30T00:00:00Z)
  --to <time>         events before this RFC 3339 time
  --outcome <o>       allow, deny, undefined, error or value (repeatable: any of them)
  --spiffe-id <id>    the caller's SPIFFE ID (repeatable)
  --path <path>       the decision path, or a path above it (repeatable), e.g. authz/allow
  --format <f>        ndjson (default) or csv
  --out <file>        write here (created via a temporary file, renamed when complete);
                      without it, to standard output
  -h, --help          show this help
Exit status: 0 exported; 2 usage or I/O error.
`

export const auditExportCommand: Command = {
  summary: 'export a verifiable slice of the audit log (NDJSON or CSV)',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, {
        'from': { type: 'string' },
        'to': { type: 'string' },
        'outcome': { type: 'string', multiple: true },
        'spiffe-id': { type: 'string', multiple: true },
        'path': { type: 'string', multiple: true },
        'format': { type: 'string' },
        'out': { type: 'string' },
      }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 1) throw new UsageError('exactly one audit directory is required')
      const format = (values.format ?? 'ndjson') as ExportFormat
      if (!EXPORT_FORMATS.includes(format)) throw new UsageError('--format must be ndjson or csv')
      const filters = exportFilters({ from: values.from, to: values.to, outcome: values.outcome, spiffe_id: values['spiffe-id'], path: values.path })
      const { readable } = await exportReadable(positionals[0] as string, { filters, format })
      if (values.out === undefined) {
        await pipeline(readable, io.stdout, { end: false })
        return EXIT_OK
      }
      // a partial file never carries the final name: an interrupted export leaves no export
      const tmp = `${values.out}.partial-${process.pid}`
      try {
        await pipeline(readable, createWriteStream(tmp, { flags: 'wx', mode: 0o640 }))
        await rename(tmp, values.out)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      }
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
