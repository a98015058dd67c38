import { readFile, stat } from 'node:fs/promises'
import { verifyExport, type ExportVerifyReport } from '../audit/export/verify.js'
import { verifyAuditDir, type VerifyOptions, type VerifyReport } from '../audit/log/verify.js'
import { EXIT_NO, EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis audit verify <dir> [--key pub.pem]... [--checkpoint kept.note]... [--origin <origin>] [--max-unsealed N | --allow-unsealed-tail] [--json]
       portcullis audit verify <export-file> --key pub.pem... [--json]

Given an export (portcullis audit export, GET /v1/audit/events; docs/audit.md "Export"),
verifies it offline, without the log: each checkpoint's signature by the pinned key, each
event's record against its inclusion proof and that signed root, the order of events, that
they match the export's filters, (CSV) the readable columns, and the trailer's counts.

Given a directory, verifies every stream of the audit directory: each record against its stored Merkle leaf hash,
seqs contiguous (ranges removed by retention are reported, not failed), the stored interior
hashes against their recomputation, and every signed checkpoint's root, signature and
consistency with the checkpoints before it (docs/audit.md "Verify").
Prints OK with counts per stream, or the first problem per stream with its code and position.
Exit status: 0 verified; 1 a problem found; 2 usage or I/O error.

Options:
  --key <pem>   the checkpoint public key the auditor pinned (Ed25519, SPKI PEM); without it
                the directory's own checkpoint-key.pub.pem is used, which proves nothing alone.
                Repeatable: after a key rotation (checkpoint.previous_public_key_files) a log
                holds checkpoints of each key, and each must be signed by one of those given
  --checkpoint <file>   a signed checkpoint the auditor kept earlier (repeatable): it must
                verify, and the log must extend it (consistency proof), so a log whose
                checkpoints were deleted and records rewritten is caught; it is matched to
                the stream whose checkpoints name its exact origin, and one that matches no
                stream fails (KEPT_CHECKPOINT_UNMATCHED: the stream was deleted or replaced)
  --origin <origin>     the origin the auditor expects (exact, or a prefix such as
                portcullis/<pod-name> for every stream of one instance): a stream whose
                checkpoints name another fails (ORIGIN_UNEXPECTED) — another replica's log
  --max-unsealed <n>    records allowed past the latest checkpoint (default 14097: what a
                crash can leave with the default checkpoint.every_events, 10000: one
                group of at most 4096 and a gap record more); more, or records with no
                checkpoint at all, is TAIL_UNSEALED
  --allow-unsealed-tail accept any number of records not yet sealed by a checkpoint
  --json        print the report as JSON
  -h, --help    show this help
`

function exportText (path: string, r: ExportVerifyReport): string {
  const out: string[] = [r.ok ? 'OK' : 'FAILED', `export ${path} (${r.format}${r.created_at !== undefined ? `, created ${r.created_at}` : ''}): ${r.events} events verified against the pinned key`]
  for (const s of r.streams) out.push(`stream ${s.stream}: ${s.events} events, checkpoint ${s.origin} size ${s.size} root ${s.root}`)
  const p = r.problem
  if (p !== undefined) {
    const where = [`line ${p.line}`, p.stream !== undefined ? `stream ${p.stream}` : '', p.index !== undefined ? `index ${p.index}` : ''].filter((x) => x !== '').join(', ')
    out.push(`  ${p.code} at ${where}: ${p.message}`)
  }
  return out.join('\n') + '\n'
}

function text (r: VerifyReport): string {
  const out: string[] = [r.ok ? 'OK' : 'FAILED']
  out.push(`checkpoint key: ${r.key.source === 'pinned' ? `pinned (--key${r.key.keys !== undefined ? `, ${r.key.keys} keys` : ''})` : r.key.source === 'directory' ? `${r.key.file ?? ''} (from the audit directory, not pinned)` : 'none (signatures unverified)'}`)
  for (const s of r.streams) {
    const retained = s.retained.map((x) => `${x.first_seq}..${x.last_seq} (${x.segment}, removed by retention ${x.removed_at})`)
    out.push(`stream ${s.stream}: origin ${s.origin ?? '(none: no checkpoint)'}, ${s.events} events, ${s.records} records, ${s.segments} segments, ${s.checkpoints} checkpoints (signatures ${s.signatures})` +
      (retained.length > 0 ? `, retained away: ${retained.join(', ')}` : '') + (s.unhashedRecords > 0 ? `, ${s.unhashedRecords} records not yet hashed` : ''))
    const p = s.problem
    if (p !== undefined) {
      const where = [p.seq !== undefined ? `seq ${p.seq}` : '', p.segment !== undefined ? `segment ${p.segment}` : '', p.offset !== undefined ? `byte ${p.offset}` : '',
        p.checkpoint !== undefined ? `checkpoint ${p.checkpoint}` : '', p.hashIndex !== undefined ? `stored hash ${p.hashIndex}` : ''].filter((x) => x !== '').join(', ')
      out.push(`  ${p.code} at ${where === '' ? 'stream' : where}: ${p.message}`)
    }
  }
  for (const p of r.problems) out.push(`${p.code}${p.checkpoint !== undefined ? ` at kept checkpoint ${p.checkpoint}` : ''}: ${p.message}`)
  for (const w of r.warnings) out.push(`warning: ${w}`)
  return out.join('\n') + '\n'
}

export const auditVerifyCommand: Command = {
  summary: 'verify an audit directory (records, Merkle tree, signed checkpoints)',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, { key: { type: 'string', multiple: true }, json: { type: 'boolean' }, checkpoint: { type: 'string', multiple: true }, origin: { type: 'string' }, 'max-unsealed': { type: 'string' }, 'allow-unsealed-tail': { type: 'boolean' } }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 1) throw new UsageError('exactly one audit directory or export file is required')
      const target = positionals[0] as string
      // --key repeated: a log signed by several keys (a key rotation); each checkpoint by one of them
      const publicKeyPem = values.key !== undefined && values.key.length > 0 ? await Promise.all(values.key.map(async (f) => await readFile(f, 'utf8'))) : undefined
      // a missing path falls through to the directory check, which reports it
      if ((await stat(target).catch(() => undefined))?.isFile() === true) {
        // an export travels without its log: only a key the auditor holds can vouch for it
        if (publicKeyPem === undefined) throw new UsageError('verifying an export needs --key <pinned checkpoint public key>')
        if (values.origin !== undefined) throw new UsageError('--origin applies to an audit directory; an export prints each stream\'s signed origin')
        const report = await verifyExport(target, publicKeyPem)
        io.stdout.write(values.json === true ? JSON.stringify(report, null, 2) + '\n' : exportText(target, report))
        return report.ok ? EXIT_OK : EXIT_NO
      }
      const opts: VerifyOptions = publicKeyPem !== undefined ? { publicKeyPem } : {}
      if (values.checkpoint !== undefined) opts.keptCheckpoints = await Promise.all(values.checkpoint.map(async (f) => await readFile(f, 'utf8')))
      if (values['max-unsealed'] !== undefined) {
        const n = Number(values['max-unsealed'])
        if (!Number.isSafeInteger(n) || n < 0) throw new UsageError('--max-unsealed must be a non-negative integer')
        opts.maxUnsealed = n
      }
      if (values['allow-unsealed-tail'] === true) opts.allowUnsealedTail = true
      if (values.origin !== undefined) {
        if (values.origin === '' || /[\n\r]/.test(values.origin)) throw new UsageError('--origin must be one non-empty line')
        opts.expectedOrigin = values.origin
      }
      const report = await verifyAuditDir(target, opts)
      io.stdout.write(values.json === true ? JSON.stringify(report, null, 2) + '\n' : text(report))
      return report.ok ? EXIT_OK : EXIT_NO
    } catch (err) {
      return reportError(err, io)
    }
  },
}
