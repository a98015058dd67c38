import { decodeProtectedHeader } from 'jose'
import { DEFAULT_ARCHIVE_LIMITS } from '../bundles/archive.js'
import { bundleFromFiles, readBundleFiles } from '../bundles/load.js'
import { SIGNATURES_FILE } from '../bundles/verify.js'
import { builtinAvailability } from '../policy/builtins/index.js'
import { inspectModule } from '../policy/engine.js'
import { EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'
import { verificationFromFlags } from './bundle-verify.js'

const usage = `Usage: portcullis bundle inspect <file|dir> [--json] [--key <pem> --alg <alg>]

Shows a bundle's revision, roots, entrypoints, the builtins its wasm calls (and whether
Portcullis provides each), its data roots and its signature status. With --key the signature
is verified; without it a signature is only decoded and reported as not verified.

Options:
  --json            print JSON instead of text
  --key <pem>       verify the signature with this key (see "bundle verify")
  --alg <alg>       algorithm of --key (default RS256)
  --key-id <id>     key id of --key
  -h, --help        show this help
`

export const bundleInspectCommand: Command = {
  summary: 'show a bundle\'s revision, roots, entrypoints, builtins and signature',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, {
        'json': { type: 'boolean' },
        'key': { type: 'string' },
        'alg': { type: 'string' },
        'key-id': { type: 'string' },
      }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 1) throw new UsageError('exactly one bundle path is required')
      const source = positionals[0] as string
      const files = await readBundleFiles(source, DEFAULT_ARCHIVE_LIMITS)
      const verification = await verificationFromFlags(values)
      const bundle = await bundleFromFiles(files, source, { verification, skipVerification: verification === undefined })

      let signature: Record<string, unknown> = { ...bundle.signature }
      const sig = files.get(SIGNATURES_FILE)
      if (sig !== undefined && bundle.signature.state === 'not_verified') {
        try {
          const token = (JSON.parse(sig.toString('utf8')) as { signatures: string[] }).signatures[0] as string
          const header = decodeProtectedHeader(token)
          const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { keyid?: string, scope?: string, files?: unknown[] }
          signature = { state: 'signed_not_verified', alg: header.alg, kid: header.kid ?? payload.keyid, scope: payload.scope, files: payload.files?.length }
        } catch {
          signature = { state: 'signed_unreadable' }
        }
      }

      const builtins: Record<string, string> = {}
      for (const [path, bytes] of bundle.wasmModules) {
        for (const name of inspectModule(new Uint8Array(bytes), source, path).builtins) {
          const a = builtinAvailability(name)
          builtins[name] = a.available ? (a.native ? 'opa-wasm' : 'host') : a.reason === 'disabled' ? `disabled (switch ${a.switch ?? ''})` : 'unsupported'
        }
      }
      const report = {
        name: bundle.name,
        revision: bundle.manifest.revision,
        roots: bundle.manifest.roots,
        entrypoints: bundle.manifest.wasm.map((w) => ({ entrypoint: w.entrypoint, module: w.module })),
        builtins,
        data_keys: Object.keys(bundle.data).sort(),
        rego_files: bundle.regoFiles,
        metadata: bundle.manifest.metadata ?? {},
        signature,
        digest: bundle.digest,
      }
      if (values.json === true) {
        io.stdout.write(JSON.stringify(report, null, 2) + '\n')
        return EXIT_OK
      }
      const lines = [
        `Bundle:      ${report.name}`,
        `Revision:    ${report.revision === '' ? '(none)' : report.revision}`,
        `Roots:       ${report.roots.map((r) => (r === '' ? '(all of data)' : r)).join(', ')}`,
        'Entrypoints:',
        ...report.entrypoints.map((e) => `  ${e.entrypoint}  (${e.module})`),
        'Builtins:',
        ...(Object.keys(builtins).length === 0 ? ['  (none from the host)'] : Object.entries(builtins).map(([n, s]) => `  ${n}  ${s}`)),
        `Signature:   ${String(signature.state)}${signature.keyId !== undefined ? ` (key ${String(signature.keyId)}, ${String(signature.algorithm)})` : ''}${signature.kid !== undefined ? ` (kid ${String(signature.kid)}, ${String(signature.alg)})` : ''}`,
        `Digest:      sha256:${report.digest}`,
      ]
      io.stdout.write(lines.join('\n') + '\n')
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
