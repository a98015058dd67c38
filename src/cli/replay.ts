import { rename, rm, writeFile } from 'node:fs/promises'
import { exportFilters } from '../audit/export/filter.js'
import { BundleManager } from '../bundles/activate.js'
import { loadConfig } from '../config/load.js'
import { replay } from '../replay/replay.js'
import { REPORT_FORMATS, reportHtml, reportTable, type ReportFormat } from '../replay/report.js'
import { configureBuiltinsFrom, engineOptionsFrom, verification } from '../server/runtime-options.js'
import { EXIT_ERROR, EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'
import { verificationFromFlags } from './bundle-verify.js'

/** Exit status of --fail-on-change when some decision would change. */
export const EXIT_CHANGED = 3

const usage = `Usage: portcullis replay --bundle <candidate.tar.gz|dir> [--bundle ...] --audit-dir <dir>
                        [--from <time>] [--to <time>] [--path <path>]... [--format table|json|html]
                        [--out <file>] [--examples <n>] [--config <file>] [--fail-on-change] [--progress]

Re-evaluates the stored inputs of past decisions (every stream of the audit directory, filtered
as "portcullis audit export" filters) against a candidate bundle and reports every decision
that would change (allow → deny, deny → allow, other result changes, undefined ↔ defined),
grouped by path and caller, with counts and examples (docs/replay.md). Decisions whose input
was changed by masking are reported as not replayable, never guessed. The candidate is loaded
and its signature checked exactly as "serve" checks a bundle from its directory.

Options:
  --bundle <file|dir>  the candidate bundle (repeatable: bundles that serve together)
  --audit-dir <dir>    the audit directory (audit.dir)
  --from <time>        decisions at or after this RFC 3339 time
  --to <time>          decisions before this RFC 3339 time
  --path <path>        the decision path, or a path above it (repeatable)
  --format <f>         table (default), json or html
  --out <file>         write the report here (created via a temporary file); default stdout
  --examples <n>       examples kept per group (default 3, at most 100)
  --config <file>      the serve configuration: bundles.signing (keys, required), keys, and the
                       builtin settings apply as they do when serving
  --key <pem>          a verification key instead of the configuration's (with --alg, --key-id, --scope)
  --alg <alg>          algorithm of --key (default RS256)
  --key-id <id>        key id of --key
  --scope <scope>      required signature scope
  --fail-on-change     exit 3 when any decision would change (for CI)
  --progress           show progress on stderr even when it is not a terminal
  -h, --help           show this help
Exit status: 0 report written (changes or not); 3 changes and --fail-on-change; 2 error (a
candidate that fails verification: its PORTCULLIS_BUNDLE_* code on stderr).
`

export const replayCommand: Command = {
  summary: 'replay recorded decisions against a candidate bundle and report what would change',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        'bundle': { type: 'string', multiple: true },
        'audit-dir': { type: 'string' },
        'from': { type: 'string' },
        'to': { type: 'string' },
        'path': { type: 'string', multiple: true },
        'format': { type: 'string' },
        'out': { type: 'string' },
        'examples': { type: 'string' },
        'config': { type: 'string' },
        'key': { type: 'string' },
        'alg': { type: 'string' },
        'key-id': { type: 'string' },
        'scope': { type: 'string' },
        'fail-on-change': { type: 'boolean' },
        'progress': { type: 'boolean' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (values.bundle === undefined || values.bundle.length === 0) throw new UsageError('--bundle is required')
      if (values['audit-dir'] === undefined) throw new UsageError('--audit-dir is required')
      const format = (values.format ?? 'table') as ReportFormat
      if (!REPORT_FORMATS.includes(format)) throw new UsageError('--format must be table, json or html')
      let examples = 3
      if (values.examples !== undefined) {
        if (!/^\d+$/.test(values.examples) || Number(values.examples) > 100) throw new UsageError('--examples must be an integer from 0 to 100')
        examples = Number(values.examples)
      }
      const filters = exportFilters({ from: values.from, to: values.to, path: values.path })

      // the candidate, loaded as serve loads a bundle from its directory: same keys, same
      // signature requirement, same limits, same builtin settings
      const config = loadConfig(values.config !== undefined ? { file: values.config } : {})
      configureBuiltinsFrom(config)
      const manager = new BundleManager({
        load: {
          verification: (await verificationFromFlags(values)) ?? verification(config),
          requireSignature: config.bundles.signing.required,
          limits: { maxBytes: config.bundles.max_bytes, maxFiles: config.bundles.max_files },
        },
        engine: engineOptionsFrom(config),
      })
      for (const b of values.bundle) {
        if (!(await manager.load(b))) {
          const e = manager.status().find((s) => s.source === b)?.last_error
          io.stderr.write(`${e?.code ?? 'PORTCULLIS_INTERNAL'}: ${e?.message ?? `cannot load ${b}`}\n`)
          return EXIT_ERROR
        }
      }

      const tty = (io.stderr as NodeJS.WriteStream).isTTY === true
      const showProgress = values.progress === true || tty
      const started = Date.now()
      let lastShown = 0
      const onProgress = showProgress
        ? (read: number, total: number): void => {
            const now = Date.now()
            if (now - lastShown < 250 && read < total) return
            lastShown = now
            const rate = Math.round(read / Math.max(0.001, (now - started) / 1000))
            io.stderr.write(`${tty ? '\r' : ''}replay: ${read}/${total} records read (${rate}/s)${tty ? '' : '\n'}`)
          }
        : undefined
      const report = await replay(values['audit-dir'], manager.snapshot, {
        filters,
        examples,
        strictBuiltinErrors: config.policy.strict_builtin_errors,
        ...(onProgress !== undefined ? { onProgress } : {}),
      })
      if (showProgress && tty) io.stderr.write('\n')

      const text = format === 'json' ? JSON.stringify(report, null, 2) + '\n' : format === 'html' ? reportHtml(report) : reportTable(report)
      if (values.out === undefined) io.stdout.write(text)
      else {
        // a partial file never carries the final name
        const tmp = `${values.out}.partial-${process.pid}`
        try {
          await writeFile(tmp, text, { flag: 'wx', mode: 0o640 })
          await rename(tmp, values.out)
        } catch (err) {
          await rm(tmp, { force: true })
          throw err
        }
      }
      return values['fail-on-change'] === true && report.totals.changed > 0 ? EXIT_CHANGED : EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
