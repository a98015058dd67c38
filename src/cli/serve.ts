import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { pino } from 'pino'
import { loadConfig, type DeepPartial } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { clearStaleUnixSocket, unixSocketPath } from '../envoy/unix-socket.js'
import { EXIT_OK, parse, reportError, UsageError, type Command } from './args.js'

const usage = `Usage: portcullis serve [--config file] [--bundles dir] [--addr host:port] [--workers N]
                        [--envoy-grpc-addr host:port|unix:path] [--envoy-http-addr host:port]
                        [--audit-dir dir] [--audit-durability sync|batched|async]

Serves decisions over OPA's Data API from the bundles in a directory, hot-reloading them,
and, when asked, to Envoy's ext_authz filter over gRPC and HTTP (docs/envoy.md).
Flags override the config file; see docs/configuration.md for every setting.

Options:
  --config <file>     YAML or JSON configuration file
  --bundles <dir>     bundles directory (default ./bundles)
  --addr <host:port>  listen address (default 127.0.0.1:8181)
  --workers <N>       worker processes (default: number of cores; 1 = no cluster)
  --envoy-grpc-addr <host:port|unix:/path>
                      serve Envoy ext_authz (envoy.service.auth.v3.Authorization) on this address
  --envoy-http-addr <host:port>
                      serve Envoy's ext_authz http_service mode on this address
  --audit-dir <dir>   record every decision in the durable audit log in this directory
                      (turns audit on; docs/audit.md)
  --audit-durability <sync|batched|async>
                      when an event counts as recorded (default batched)
  -h, --help          show this help
`

export const serveCommand: Command = {
  summary: 'serve decisions over HTTP from a bundles directory',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        config: { type: 'string' },
        bundles: { type: 'string' },
        addr: { type: 'string' },
        workers: { type: 'string' },
        'envoy-grpc-addr': { type: 'string' },
        'envoy-http-addr': { type: 'string' },
        'audit-dir': { type: 'string' },
        'audit-durability': { type: 'string' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      const overrides: DeepPartial<Config> = {}
      if (values.addr !== undefined) overrides.server = { addr: values.addr }
      if (values.workers !== undefined) {
        if (!/^\d+$/.test(values.workers)) throw new UsageError('--workers must be a non-negative integer')
        overrides.server = { ...overrides.server, workers: Number(values.workers) }
      }
      if (values.bundles !== undefined) overrides.bundles = { dir: values.bundles }
      const grpcAddr = values['envoy-grpc-addr']
      const httpAddr = values['envoy-http-addr']
      if (grpcAddr !== undefined || httpAddr !== undefined) {
        overrides.envoy_ext_authz = {
          ...(grpcAddr !== undefined ? { grpc: { enabled: true, addr: grpcAddr } } : {}),
          ...(httpAddr !== undefined ? { http: { enabled: true, addr: httpAddr } } : {}),
        } as DeepPartial<Config['envoy_ext_authz']>
      }
      const auditDir = values['audit-dir']
      const durability = values['audit-durability']
      if (durability !== undefined && durability !== 'sync' && durability !== 'batched' && durability !== 'async') {
        throw new UsageError('--audit-durability must be sync, batched or async')
      }
      if (auditDir !== undefined || durability !== undefined) {
        overrides.audit = {
          // a flag's path is the caller's, relative to the working directory
          ...(auditDir !== undefined ? { enabled: true, dir: resolve(auditDir) } : {}),
          ...(durability !== undefined ? { durability } : {}),
        }
      }
      const config = loadConfig({ ...(values.config !== undefined ? { file: values.config } : {}), overrides })
      const logger = pino({ name: 'portcullis', level: config.logging.level })
      const workers = config.server.workers === 0 ? availableParallelism() : config.server.workers

      if (workers > 1 && cluster.isPrimary) {
        // Workers share the primary's listening sockets; a stale unix socket is cleared once, here.
        const grpc = config.envoy_ext_authz.grpc
        if (grpc.enabled && grpc.addr.startsWith('unix:')) await clearStaleUnixSocket(unixSocketPath(grpc.addr))
        logger.info({ workers, addr: config.server.addr }, 'starting worker group')
        // The primary only supervises: it never imports the server (fastify, the policy engine,
        // gRPC), so the workers are forked as soon as the configuration is read.
        const { runPrimary } = await import('../server/workers.js')
        await runPrimary({ workers, logger, shutdownGraceMs: config.server.shutdown_grace_ms })
        logger.info('stopped')
        return EXIT_OK
      }

      // Imported here, not at the top: a primary never needs them (above), and the Envoy
      // listeners load gRPC only when the configuration enables them (envoy/listeners.ts).
      const [{ createRuntime }, { envoyExtAuthz }, workerGroup] = await Promise.all([
        import('../server/runtime.js'),
        import('../envoy/listeners.js'),
        cluster.isWorker ? import('../server/workers.js') : undefined,
      ])
      const hooks = workerGroup?.workerHooks()
      // a group's workers build large data images one at a time (server/workers.ts)
      if (hooks !== undefined) (await import('../policy/data-loader.js')).setBuildSlot(hooks.buildSlot)
      const runtime = await createRuntime(config, hooks ?? {}, { logger, listeners: [envoyExtAuthz] })
      hooks?.bindLocalFlush(() => runtime.decisions.flushCache())
      const url = await runtime.start()
      workerGroup?.announceWorker(runtime, url)
      logger.info({ url, pid: process.pid, bundles: runtime.manager.status().map((s) => ({ name: s.name, state: s.state, revision: s.active_revision, error: s.last_error?.code })) }, 'portcullis listening')

      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests')
          void runtime.stop().then(resolve, resolve)
        }
        process.once('SIGTERM', () => stop('SIGTERM'))
        process.once('SIGINT', () => stop('SIGINT'))
      })
      logger.info('stopped')
      return EXIT_OK
    } catch (err) {
      return reportError(err, io)
    }
  },
}
