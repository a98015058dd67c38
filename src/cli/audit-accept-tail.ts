/**
 * portcullis audit accept-tail — the operator's explicit way out when a stream refuses to open
 * because more records follow its last checkpoint than a crash can leave (docs/audit.md
 * "Crash recovery"). The writer never seals such a tail on its own: it may be records someone
 * rewrote after deleting the checkpoints. When the operator has checked they are genuine
 * (checkpointing failed for long, or checkpoint.every_events was lowered), this seals exactly
 * the named number of records behind a gap record `cause: "unsealed_tail_accepted"` that says
 * so — visible in the log, verify and the console, never silent. Run it with the service
 * stopped (it takes the stream's writer lock), with the service's configuration (the same key
 * and origin sign the checkpoint).
 */
import { loadConfig } from '../config/load.js'
import { streamPaths } from '../audit/log/layout.js'
import { EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis audit accept-tail --stream <id> --records <n> [--config <file>] [--audit-dir <dir>] [--reason <text>]

Seals the unsealed tail of one stream that the writer refused to open because more records
follow its last checkpoint than a crash can leave (the refusal names the stream and the
count). Exactly <n> records must follow the last checkpoint, or nothing is done. The records
are sealed behind a gap record {"type":"gap","cause":"unsealed_tail_accepted",...} and a new
signed checkpoint: the acceptance is on the record. Check the records first (portcullis audit
verify with the pinned key reports TAIL_UNSEALED for them); records whose stored hashes differ
are still refused. Run with the service stopped: it takes the stream's writer lock.

Options:
  --stream <id>       the stream (main, w1, ...)
  --records <n>       the number of records after the last checkpoint, as the refusal named it
  --config <file>     the service's configuration (audit.dir, the checkpoint key and origin)
  --audit-dir <dir>   the audit directory instead of the configuration's audit.dir
  --reason <text>     why they are accepted (a ticket, a name); stored in the gap record
  -h, --help          show this help
Exit status: 0 sealed; 2 refused, usage or I/O error.
`

export const auditAcceptTailCommand: Command = {
  summary: 'seal a refused stream\'s too-long unsealed tail behind a recorded acceptance',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, { 'stream': { type: 'string' }, 'records': { type: 'string' }, 'config': { type: 'string' }, 'audit-dir': { type: 'string' }, 'reason': { type: 'string' } }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`)
      if (values.stream === undefined) throw new UsageError('--stream is required')
      const records = Number(values.records)
      if (values.records === undefined || !/^[1-9][0-9]*$/.test(values.records) || !Number.isSafeInteger(records)) throw new UsageError('--records must be a positive integer (the count the refusal named)')
      const reason = values.reason
      if (reason !== undefined && (reason.length > 200 || /[\r\n]/.test(reason))) throw new UsageError('--reason must be one line of at most 200 characters')
      const config = loadConfig({
        ...(values.config !== undefined ? { file: values.config } : {}),
        ...(values['audit-dir'] !== undefined ? { overrides: { audit: { dir: values['audit-dir'] } } } : {}),
      })
      streamPaths(config.audit.dir, values.stream) // a bad stream id is PORTCULLIS_AUDIT_INVALID before anything opens
      const { openDurableSink } = await import('../audit/trail.js')
      const log = await openDurableSink(config.audit, values.stream, { acceptUnsealedTail: { records, ...(reason !== undefined ? { reason } : {}) } })
      const cp = log.lastCheckpoint
      await log.close()
      io.stdout.write(`sealed ${records} records of stream ${values.stream} behind gap record seq ${String((cp?.size ?? 1) - 1)}; checkpoint size ${String(cp?.size ?? 0)}\n`)
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
