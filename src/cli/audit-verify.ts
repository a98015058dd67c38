import { readFile } from 'node:fs/promises'
import { verifyAuditDir, type VerifyReport } from '../audit/log/verify.js'
import { EXIT_NO, EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis audit verify <dir> [--key pub.pem] [--json]

Verifies every stream of an audit directory: each record against its stored Merkle leaf hash,
seqs contiguous (ranges removed by retention are reported, not failed), the stored interior
hashes against their recomputation, and every signed checkpoint's root, signature and
consistency with the checkpoints before it (docs/audit.md "Verify").
Prints OK with counts per stream, or the first problem per stream with its code and position.
Exit status: 0 verified; 1 a problem found; 2 usage or I/O error.

Options:
  --key <pem>   the checkpoint public key the auditor pinned (Ed25519, SPKI PEM); without it
                the directory's own checkpoint-key.pub.pem is used, which proves nothing alone
  --json        print the report as JSON
  -h, --help    show this help
`

function text (r: VerifyReport): string {
  const out: string[] = [r.ok ? 'OK' : 'FAILED']
  out.push(`checkpoint key: ${r.key.source === 'pinned' ? 'pinned (--key)' : r.key.source === 'directory' ? `${r.key.file ?? ''} (from the audit directory, not pinned)` : 'none (signatures unverified)'}`)
  for (const s of r.streams) {
    const retained = s.retained.map((x) => `${x.first_seq}..${x.last_seq} (${x.segment}, removed by retention ${x.removed_at})`)
    out.push(`stream ${s.stream}: ${s.events} events, ${s.records} records, ${s.segments} segments, ${s.checkpoints} checkpoints (signatures ${s.signatures})` +
      (retained.length > 0 ? `, retained away: ${retained.join(', ')}` : '') + (s.unhashedRecords > 0 ? `, ${s.unhashedRecords} records not yet hashed` : ''))
    const p = s.problem
    if (p !== undefined) {
      const where = [p.seq !== undefined ? `seq ${p.seq}` : '', p.segment !== undefined ? `segment ${p.segment}` : '', p.offset !== undefined ? `byte ${p.offset}` : '',
        p.checkpoint !== undefined ? `checkpoint ${p.checkpoint}` : '', p.hashIndex !== undefined ? `stored hash ${p.hashIndex}` : ''].filter((x) => x !== '').join(', ')
      out.push(`  ${p.code} at ${where === '' ? 'stream' : where}: ${p.message}`)
    }
  }
  for (const w of r.warnings) out.push(`warning: ${w}`)
  return out.join('\n') + '\n'
}

export const auditVerifyCommand: Command = {
  summary: 'verify an audit directory (records, Merkle tree, signed checkpoints)',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, { key: { type: 'string' }, json: { type: 'boolean' } }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 1) throw new UsageError('exactly one audit directory is required')
      const publicKeyPem = values.key !== undefined ? await readFile(values.key, 'utf8') : undefined
      const report = await verifyAuditDir(positionals[0] as string, publicKeyPem !== undefined ? { publicKeyPem } : {})
      io.stdout.write(values.json === true ? JSON.stringify(report, null, 2) + '\n' : text(report))
      return report.ok ? EXIT_OK : EXIT_NO
    } catch (err) {
      return reportError(err, io)
    }
  },
}
