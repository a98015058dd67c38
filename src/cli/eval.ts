import { JsonInputError, parseJsonInput } from '../json-input.js'
import { readFile } from 'node:fs/promises'
import { BundleManager } from '../bundles/activate.js'
import { DecisionService } from '../decision/decide.js'
import { ResultSlots } from '../decision/result-json.js'
import { loadConfig, type DeepPartial } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { configureBuiltinsFrom, engineOptionsFrom } from '../server/runtime-options.js'
import { PolicyError } from '../errors.js'
import { EXIT_NO, EXIT_OK, parse, readAll, reportError, UsageError, type Command } from './args.js'
import { verificationFromFlags } from './bundle-verify.js'

const usage = `Usage: portcullis eval --bundle <file|dir> [--bundle ...] --path <authz/allow> [--input <file|->] [options]

Evaluates one decision against one or more bundles and prints the result as JSON. The decision
goes through the same pipeline as the server's (path rules, input.identity and
input.identity_error removed from the input, builtin-error handling), without a cache.
Exit status: 0 result printed; 1 the decision is undefined (nothing printed); 2 error (its code on stderr).

Options:
  --bundle <file|dir>        bundle .tar.gz or directory (repeatable)
  --path <path>              Data API path, e.g. authz/allow
  --input <file|->           input document (JSON); - reads stdin; omitted: no input
  --key <pem>                verification key for signed bundles
  --alg <alg>                algorithm of --key (default RS256)
  --key-id <id>              key id of --key (default "default")
  --scope <scope>            required signature scope
  --skip-verify              do not verify bundle signatures
  --strict-builtin-errors    fail the decision on a builtin error (OPA strict mode)
  --config <file>            read the builtin settings from a serve configuration file
                             (policy.builtin_switches, policy.http_send, policy.runtime_env,
                             policy.strict_builtin_errors, policy.max_memory_pages), so the CLI
                             answers as that server does
  --builtin-switch <name>    turn on a builtin switch (repeatable): http_send,
                             net_lookup_ip_addr, rand_intn (as policy.builtin_switches)
  --http-send-allowed-host <host>  a host http.send may reach (repeatable; as policy.http_send.allowed_hosts)
  --http-send-timeout-ms <ms>      http.send's timeout (as policy.http_send.timeout_ms)
  -h, --help                 show this help
`

export const evalCommand: Command = {
  summary: 'evaluate a decision against bundles and print the result',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        'bundle': { type: 'string', multiple: true },
        'path': { type: 'string' },
        'input': { type: 'string' },
        'key': { type: 'string' },
        'alg': { type: 'string' },
        'key-id': { type: 'string' },
        'scope': { type: 'string' },
        'skip-verify': { type: 'boolean' },
        'strict-builtin-errors': { type: 'boolean' },
        'config': { type: 'string' },
        'builtin-switch': { type: 'string', multiple: true },
        'http-send-allowed-host': { type: 'string', multiple: true },
        'http-send-timeout-ms': { type: 'string' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      if (values.bundle === undefined || values.bundle.length === 0) throw new UsageError('--bundle is required')
      if (values.path === undefined) throw new UsageError('--path is required')

      let input: unknown
      if (values.input !== undefined) {
        const text = values.input === '-' ? await readAll(io.stdin) : await readFile(values.input, 'utf8')
        try {
          // the server's checks (src/json-input.ts), with a depth limit only a stack would set
          input = parseJsonInput(text, 1000)
        } catch (err) {
          if (!(err instanceof JsonInputError)) throw err
          throw new PolicyError('PORTCULLIS_INPUT_INVALID', `input ${values.input === '-' ? '(stdin)' : values.input} ${err.message}`, { file: values.input, problem: err.problem })
        }
      }

      // The builtin settings as `serve` takes them: the configuration (file, environment), flags on top.
      const policy: NonNullable<DeepPartial<Config>['policy']> = {}
      if (values['builtin-switch'] !== undefined) policy.builtin_switches = values['builtin-switch']
      const httpSend: NonNullable<typeof policy.http_send> = {}
      if (values['http-send-allowed-host'] !== undefined) httpSend.allowed_hosts = values['http-send-allowed-host']
      if (values['http-send-timeout-ms'] !== undefined) {
        if (!/^[1-9]\d*$/.test(values['http-send-timeout-ms'])) throw new UsageError('--http-send-timeout-ms must be a positive integer')
        httpSend.timeout_ms = Number(values['http-send-timeout-ms'])
      }
      if (Object.keys(httpSend).length > 0) policy.http_send = httpSend
      const config = loadConfig({ ...(values.config !== undefined ? { file: values.config } : {}), overrides: { policy } })
      configureBuiltinsFrom(config)
      const manager = new BundleManager({
        load: { verification: await verificationFromFlags(values), skipVerification: values['skip-verify'] === true },
        engine: engineOptionsFrom(config),
      })
      for (const b of values.bundle) {
        if (!(await manager.load(b))) {
          const failed = manager.status().find((s) => s.source === b)
          const e = failed?.last_error
          io.stderr.write(`${e?.code ?? 'PORTCULLIS_INTERNAL'}: ${e?.message ?? `cannot load ${b}`}\n`)
          return 2
        }
      }
      // the server's pipeline, cache off: the CLI cannot answer differently from the server
      const decisions = new DecisionService({ manager })
      const decision = await decisions.decide({
        path: values.path,
        input,
        transport: 'cli',
        ...(values['strict-builtin-errors'] === true || config.policy.strict_builtin_errors ? { strictBuiltinErrors: true } : {}),
      })
      if (!decision.defined) return EXIT_NO
      const slots = new ResultSlots()
      io.stdout.write(slots.stringify(slots.valueOf(decision), 2) + '\n')
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
