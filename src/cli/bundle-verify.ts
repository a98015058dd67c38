import { readFile } from 'node:fs/promises'
import { loadBundle } from '../bundles/load.js'
import type { VerificationConfig } from '../bundles/verify.js'
import { isPortcullisError } from '../errors.js'
import { EXIT_NO, EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis bundle verify <file|dir> --key <pem> [--alg ES256] [--key-id id] [--scope scope]

Verifies a signed bundle as Portcullis does before activating it: the .signatures.json JWS
against the key, the signed file list against the bundle's files, every file's hash, the
scope, and OPA's bundle rules. Prints the result as JSON.
Exit status: 0 verified; 1 rejected (the code on stderr); 2 usage or I/O error.

Options:
  --key <pem>        public key (PEM: SPKI, PKCS#1 or certificate); for HS* the secret file
  --alg <alg>        JWS algorithm the key verifies (default RS256)
  --key-id <id>      key id to use (default: the signature's kid, else "default")
  --scope <scope>    scope the signature must carry
  -h, --help         show this help
`

/** Builds a VerificationConfig from --key/--alg/--key-id/--scope flags (undefined without --key). */
export async function verificationFromFlags (values: { 'key'?: string, 'alg'?: string, 'key-id'?: string, 'scope'?: string }): Promise<VerificationConfig | undefined> {
  if (values.key === undefined) return undefined
  const key = await readFile(values.key, 'utf8')
  const algorithm = values.alg ?? 'RS256'
  const keyId = values['key-id']
  const config: VerificationConfig = {
    // Without --key-id the one key answers whatever kid the signature names (the CLI trusts
    // exactly the key it was handed), as `opa build --verification-key` does with "default".
    keys: { [keyId ?? 'default']: { key, algorithm } },
    keyId: keyId ?? 'default',
  }
  if (values.scope !== undefined) config.scope = values.scope
  return config
}

export const bundleVerifyCommand: Command = {
  summary: 'verify a signed bundle against a public key',
  usage,
  run: async (argv, io) => {
    try {
      const { values, positionals } = parse(argv, {
        'key': { type: 'string' },
        'alg': { type: 'string' },
        'key-id': { type: 'string' },
        'scope': { type: 'string' },
      }, true)
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (positionals.length !== 1) throw new UsageError('exactly one bundle path is required')
      if (values.key === undefined) throw new UsageError('--key is required')
      const source = positionals[0] as string
      try {
        // Every data file is parsed and checked here (roots, conflicts, JSON), however large: the
        // server defers large files to activation, but an offline verdict must cover them too.
        const bundle = await loadBundle(source, { verification: await verificationFromFlags(values), requireSignature: true, largeDataBytes: Number.POSITIVE_INFINITY })
        io.stdout.write(JSON.stringify({ bundle: bundle.name, revision: bundle.manifest.revision, signature: bundle.signature }, null, 2) + '\n')
        return EXIT_OK
      } catch (err) {
        if (isPortcullisError(err) && err.code.startsWith('PORTCULLIS_BUNDLE_') && err.code !== 'PORTCULLIS_BUNDLE_NOT_FOUND') {
          io.stderr.write(`${err.code}: ${err.message}\n`)
          return EXIT_NO
        }
        throw err
      }
    } catch (err) {
      return reportError(err, io)
    }
  },
}
