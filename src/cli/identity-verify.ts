import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { IdentityError, PortcullisError } from '../errors.js'
import { createIdentityVerifier, validateIdentityConfig, type CredentialContext } from '../identity/index.js'
import { pemCertificates } from '../identity/pem.js'
import { EXIT_ERROR, EXIT_NO, EXIT_OK, parse, readAll, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis identity verify (--cert chain.pem | --token file | --xfcc 'header value')
         [--trust-domain example.org=ca.pem ...] [--jwt-bundle example.org=bundle.json ...]
         [--oidc-issuer URL [--jwks file]] [--audience aud ...] [--config file] [--now time]

Verifies a workload credential exactly as the server does and prints the identity document
as JSON. Exit status: 0 verified; 1 rejected (its code and reason on stderr); 2 usage,
configuration or trust-bundle error.

Credential (exactly one):
  --cert <file>                 PEM chain, leaf first (an X.509-SVID as presented over mTLS)
  --token <file|->              a JWT-SVID or OIDC token (- reads stdin)
  --xfcc <value>                an x-forwarded-client-cert header value (treated as coming
                                from a trusted proxy)

Trust:
  --trust-domain <td>=<file>    X.509 authorities of a trust domain: PEM CA file or SPIFFE
                                bundle JSON (repeatable)
  --jwt-bundle <td>=<file>      JWT-SVID keys of a trust domain: SPIFFE bundle or JWKS (repeatable)
  --oidc-issuer <url>           an OIDC issuer (Kubernetes: the cluster's service-account issuer)
  --jwks <file>                 keys of --oidc-issuer (default: OIDC discovery)
  --audience <aud>              accepted audience for JWT-SVIDs and the OIDC issuer (repeatable)
  --config <file>               identity configuration (YAML/JSON; top level or under "identity");
                                flags add to it
  --now <time>                  verify as of this RFC 3339 time (default: now)
  -h, --help                    show this help
`

// Raw configuration as parsed from YAML/JSON, before validateIdentityConfig checks it.
type Raw = Record<string, any>

function pair (v: string, flag: string): [string, string] {
  const i = v.indexOf('=')
  if (i <= 0 || i === v.length - 1) throw new UsageError(`${flag} expects <trust-domain>=<file>, got ${JSON.stringify(v)}`)
  return [v.slice(0, i), v.slice(i + 1)]
}

async function loadConfigFile (file: string): Promise<Raw> {
  const text = await readFile(file, 'utf8')
  let doc: unknown
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `${file}: not valid YAML/JSON: ${(err as Error).message}`, { file })
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new PortcullisError('PORTCULLIS_CONFIG_INVALID', `${file}: expected an object`, { file })
  const d = doc as Raw
  return (typeof d.identity === 'object' && d.identity !== null ? d.identity : d) as Raw
}

function domain (raw: Raw, td: string): Raw {
  raw.trust_domains ??= {}
  raw.trust_domains[td] ??= {}
  return raw.trust_domains[td] as Raw
}

function push (o: Raw, key: string, v: string): void {
  o[key] = [...(Array.isArray(o[key]) ? o[key] : o[key] !== undefined ? [o[key]] : []), v]
}

export const identityVerifyCommand: Command = {
  summary: 'verify an X.509-SVID, JWT-SVID, OIDC token or XFCC header and print the identity',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        'cert': { type: 'string' },
        'token': { type: 'string' },
        'xfcc': { type: 'string' },
        'trust-domain': { type: 'string', multiple: true },
        'jwt-bundle': { type: 'string', multiple: true },
        'oidc-issuer': { type: 'string' },
        'jwks': { type: 'string' },
        'audience': { type: 'string', multiple: true },
        'config': { type: 'string' },
        'now': { type: 'string' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      const given = [values.cert, values.token, values.xfcc].filter((v) => v !== undefined).length
      if (given !== 1) throw new UsageError('exactly one of --cert, --token, --xfcc is required')
      if (values.jwks !== undefined && values['oidc-issuer'] === undefined) throw new UsageError('--jwks needs --oidc-issuer')
      let now = new Date()
      if (values.now !== undefined) {
        now = new Date(values.now)
        if (Number.isNaN(now.getTime())) throw new UsageError(`--now expects an RFC 3339 time, got ${JSON.stringify(values.now)}`)
      }

      // Configuration: the file (if any), then the flags on top of it.
      const raw: Raw = values.config !== undefined ? await loadConfigFile(values.config) : {}
      for (const v of values['trust-domain'] ?? []) {
        const [td, file] = pair(v, '--trust-domain')
        const text = await readFile(file, 'utf8')
        push(domain(raw, td), text.trimStart().startsWith('{') ? 'spiffe_bundles' : 'x509_authorities', file)
      }
      for (const v of values['jwt-bundle'] ?? []) {
        const [td, file] = pair(v, '--jwt-bundle')
        push(domain(raw, td), 'jwt_authorities', file)
      }
      const audiences = values.audience ?? []
      if (values.token !== undefined && audiences.length === 0 && values.config === undefined) {
        throw new UsageError('--token needs --audience: JWT-SVIDs and OIDC tokens are only accepted for a named audience')
      }
      if (values.token !== undefined && (audiences.length > 0 || raw.jwt_svid !== undefined)) {
        raw.jwt_svid ??= {}
        if (audiences.length > 0) raw.jwt_svid.audiences = [...new Set([...(raw.jwt_svid.audiences ?? []), ...audiences])]
      }
      if (values['oidc-issuer'] !== undefined) {
        raw.oidc ??= {}
        raw.oidc.issuers ??= []
        const issuer: Raw = { issuer: values['oidc-issuer'], audiences }
        if (values.jwks !== undefined) issuer.jwks_file = values.jwks
        else issuer.discovery = true
        raw.oidc.issuers.push(issuer)
      }
      if (values.xfcc !== undefined) {
        // The operator hands us the header: the CLI itself is the trusted proxy.
        raw.x509_svid ??= {}
        raw.x509_svid.xfcc ??= {}
        raw.x509_svid.xfcc.trusted_proxies = ['127.0.0.1']
        raw.x509_svid.sources = ['xfcc']
        raw.x509_svid.enabled = true
      }
      if (values.cert !== undefined) {
        raw.x509_svid ??= {}
        raw.x509_svid.enabled = true
        raw.x509_svid.sources = ['mtls']
      }
      raw.watch = { enabled: false }
      const config = validateIdentityConfig(raw, values.config !== undefined ? { baseDir: dirname(values.config) } : {})

      const ctx: CredentialContext = {}
      if (values.cert !== undefined) {
        try {
          ctx.peerCertificates = pemCertificates(await readFile(values.cert, 'utf8'), values.cert)
        } catch (err) {
          if (!(err instanceof IdentityError)) throw err
          io.stderr.write(`${err.code}: ${err.message}\n`)
          return EXIT_NO
        }
      } else if (values.token !== undefined) {
        const token = (values.token === '-' ? await readAll(io.stdin) : await readFile(values.token, 'utf8')).trim()
        const header = config.jwt_svid.enabled ? config.jwt_svid.header : config.oidc.issuers[0]?.header ?? 'authorization'
        ctx.headers = { [header]: header === 'authorization' ? `Bearer ${token}` : token }
      } else if (values.xfcc !== undefined) {
        ctx.headers = { [config.x509_svid.xfcc.header]: values.xfcc }
        ctx.remoteAddress = '127.0.0.1'
      }

      const verifier = createIdentityVerifier(config, { now: () => now })
      try {
        await verifier.ready
        // A trust source that did not load is an operator error, not the credential's fault.
        for (const [td, st] of Object.entries({ ...verifier.status().trust_domains, ...verifier.status().oidc_key_files })) {
          if (st.last_error !== undefined) {
            io.stderr.write(`${st.last_error.code}: ${td}: ${st.last_error.message}\n`)
            return EXIT_ERROR
          }
        }
        const result = await verifier.verify(ctx)
        if (result.kind === 'verified') {
          io.stdout.write(JSON.stringify(result.identity, null, 2) + '\n')
          return EXIT_OK
        }
        if (result.kind === 'rejected') {
          io.stderr.write(`${result.error.code}: ${result.error.message}\n`)
          return EXIT_NO
        }
        io.stderr.write('PORTCULLIS_IDENTITY_REQUIRED: no credential of a configured kind was found (is the right plugin configured?)\n')
        return EXIT_NO
      } finally {
        await verifier.close()
      }
    } catch (err) {
      return reportError(err, io)
    }
  },
}
