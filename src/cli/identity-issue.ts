import { open, readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { PortcullisError } from '../errors.js'
import { issueJwtSvid, issueX509Svid, loadJwtSigningKey, loadSigningCa } from '../identity/issue.js'
import { EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

/** The demo trust domain `npm start` trusts (examples/demo-trust-domain/, made by scripts/demo-trust-domain.ts). */
export const DEMO_TRUST_DOMAIN = 'example.org'
export const DEMO_FILES = {
  caCert: 'demo-only-ca.pem',
  caKey: 'demo-only-ca.key',
  jwtKey: 'demo-only-jwt-signing.key',
  bundle: 'demo-only-bundle.json',
  serverCert: 'demo-only-server.pem',
  serverKey: 'demo-only-server.key',
} as const

/** examples/demo-trust-domain of this checkout (the same from src/cli and dist/cli). */
export function demoTrustDomainDir (): string {
  return fileURLToPath(new URL('../../examples/demo-trust-domain/', import.meta.url))
}

/**
 * Writes a secret (private key, bearer token) readable by its owner only. writeFile's `mode`
 * applies only when the file is created; an existing file keeps its mode, so it is set on the
 * open handle before the secret is written (a 0644 file never holds the new secret).
 */
async function writeSecret (file: string, text: string): Promise<void> {
  const fh = await open(file, 'w', 0o600)
  try {
    await fh.chmod(0o600)
    await fh.writeFile(text)
  } finally {
    await fh.close()
  }
}

/** Longest lifetime this command issues: SVIDs are short-lived by design (X509-SVID §4.4, JWT-SVID §3). */
const MAX_TTL_SECONDS = 24 * 3600

const usage = `Usage: portcullis identity issue --jwt --spiffe-id ID (--demo | --jwt-key key.pem [--kid id])
         [--audience aud ...] [--ttl 5m] [--out file]
       portcullis identity issue --x509 --spiffe-id ID (--demo | --ca-cert ca.pem --ca-key ca.key)
         --out-cert cert.pem --out-key key.pem [--ttl 1h]

Issues a short-lived SVID from a trust domain's own signing keys, for tests and demos (this
is not a SPIFFE server: no attestation, rotation or revocation). JWT-SVID: header alg, kid,
typ JWT; claims sub (the SPIFFE ID), aud, exp, iat; the token is printed (or written to
--out). X.509-SVID: a new EC P-256 key, cA=false, keyUsage digitalSignature, exactly one URI
SAN; the leaf and its key are written to --out-cert and --out-key (mode 0600).

Options:
  --jwt | --x509          the kind of SVID
  --spiffe-id <id>        spiffe://<trust-domain>/<path>
  --demo                  sign with the DEMO-ONLY trust domain ${DEMO_TRUST_DOMAIN} in
                          examples/demo-trust-domain (its private keys are public)
  --jwt-key <file>        PEM private key of the trust domain's JWT-SVID authority
  --kid <id>              key id (default: the key's RFC 7638 thumbprint)
  --ca-cert <file>        PEM CA certificate of the trust domain (first block)
  --ca-key <file>         its PEM private key
  --audience <aud>        JWT audience (repeatable; default portcullis)
  --ttl <duration>        lifetime: 90s, 5m, 1h (default 5m for --jwt, 1h for --x509; at most 24h)
  --out <file>            write the token here instead of stdout
  --out-cert <file>       where the X.509-SVID (PEM) goes
  --out-key <file>        where its private key (PKCS#8 PEM) goes
  -h, --help              show this help

Exit status: 0 issued; 2 usage error or unusable keys.
`

/** "90s", "5m", "1h" (or bare seconds) → seconds. */
export function parseTtl (v: string): number {
  const m = /^(\d+)([smh]?)$/.exec(v)
  if (m === null) throw new UsageError(`--ttl expects a duration such as 90s, 5m or 1h, got ${JSON.stringify(v)}`)
  const seconds = Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1)
  if (seconds < 1 || seconds > MAX_TTL_SECONDS) throw new UsageError(`--ttl must be between 1s and 24h, got ${v}`)
  return seconds
}

async function readKeyFile (file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `${flag} ${file}: ${(err as Error).message}`, { flag, file })
  }
}

export const identityIssueCommand: Command = {
  summary: 'issue a short-lived JWT-SVID or X.509-SVID from trust-domain keys (tests, demos)',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        'jwt': { type: 'boolean' },
        'x509': { type: 'boolean' },
        'spiffe-id': { type: 'string' },
        'demo': { type: 'boolean' },
        'jwt-key': { type: 'string' },
        'kid': { type: 'string' },
        'ca-cert': { type: 'string' },
        'ca-key': { type: 'string' },
        'audience': { type: 'string', multiple: true },
        'ttl': { type: 'string' },
        'out': { type: 'string' },
        'out-cert': { type: 'string' },
        'out-key': { type: 'string' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if ((values.jwt === true) === (values.x509 === true)) throw new UsageError('give exactly one of --jwt and --x509')
      const spiffeId = values['spiffe-id']
      if (spiffeId === undefined) throw new UsageError('--spiffe-id is required')
      const ttlSeconds = parseTtl(values.ttl ?? (values.jwt === true ? '5m' : '1h'))
      const demo = values.demo === true
      const dir = demoTrustDomainDir()
      if (demo) {
        if (values['jwt-key'] !== undefined || values['ca-cert'] !== undefined || values['ca-key'] !== undefined || values.kid !== undefined) throw new UsageError('--demo replaces --jwt-key, --kid, --ca-cert and --ca-key')
      }
      // after every usage check, so a usage error is the only line a mistyped command prints
      const warnDemo = (): void => {
        if (demo) io.stderr.write(`WARNING: --demo signs with the DEMO-ONLY trust domain ${DEMO_TRUST_DOMAIN} (${dir}); its private keys are public. Never trust it outside a demo.\n`)
      }

      if (values.jwt === true) {
        if (values['out-cert'] !== undefined || values['out-key'] !== undefined || values['ca-cert'] !== undefined || values['ca-key'] !== undefined) throw new UsageError('--out-cert, --out-key, --ca-cert and --ca-key are for --x509')
        const keyFile = demo ? join(dir, DEMO_FILES.jwtKey) : values['jwt-key']
        if (keyFile === undefined) throw new UsageError('--jwt needs --jwt-key (or --demo)')
        warnDemo()
        const key = await loadJwtSigningKey(await readKeyFile(keyFile, '--jwt-key'), values.kid)
        const { token } = await issueJwtSvid(key, spiffeId, { audience: values.audience ?? ['portcullis'], ttlSeconds })
        if (values.out !== undefined) await writeSecret(values.out, token + '\n')
        else io.stdout.write(token + '\n')
        return EXIT_OK
      }

      if (values['jwt-key'] !== undefined || values.kid !== undefined || values.audience !== undefined || values.out !== undefined) throw new UsageError('--jwt-key, --kid, --audience and --out are for --jwt')
      const certFile = demo ? join(dir, DEMO_FILES.caCert) : values['ca-cert']
      const caKeyFile = demo ? join(dir, DEMO_FILES.caKey) : values['ca-key']
      if (certFile === undefined || caKeyFile === undefined) throw new UsageError('--x509 needs --ca-cert and --ca-key (or --demo)')
      const outCert = values['out-cert']
      const outKey = values['out-key']
      if (outCert === undefined || outKey === undefined) throw new UsageError('--x509 needs --out-cert and --out-key')
      warnDemo()
      const ca = await loadSigningCa(await readKeyFile(certFile, '--ca-cert'), await readKeyFile(caKeyFile, '--ca-key'))
      const svid = await issueX509Svid(ca, spiffeId, { ttlSeconds })
      await writeSecret(outKey, svid.keyPem)
      await writeFile(outCert, svid.certPem)
      io.stderr.write(`issued ${spiffeId}, valid until ${svid.notAfter.toISOString()}: ${outCert}, ${outKey}\n`)
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
