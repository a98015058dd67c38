import { resolve } from 'node:path'
import { pino } from 'pino'
import { BundleManager } from '../bundles/activate.js'
import { watchBundles } from '../bundles/watch.js'
import { DecisionService } from '../decision/decide.js'
import { build } from '../server/app.js'
import { listen } from '../server/listen.js'
import { EXIT_OK, parse, reportError, type Command } from './args.js'

const usage = `Usage: portcullis serve [--bundles dir] [--addr host:port]

Serves decisions over OPA's Data API from the bundles in a directory, hot-reloading them.

Options:
  --bundles <dir>     bundles directory (default ./bundles)
  --addr <host:port>  listen address (default 127.0.0.1:8181)
  -h, --help          show this help
`

export const serveCommand: Command = {
  summary: 'serve decisions over HTTP from a bundles directory',
  usage,
  run: async (argv, io) => {
    try {
      const { values } = parse(argv, {
        bundles: { type: 'string' },
        addr: { type: 'string' },
      })
      if (values.help === true) {
        io.stdout.write(usage)
        return EXIT_OK
      }
      const logger = pino({ name: 'portcullis' })
      const manager = new BundleManager({ logger })
      const watcher = watchBundles(resolve(values.bundles ?? 'bundles'), manager)
      await watcher.ready
      const app = build({ decisions: new DecisionService({ manager }), manager })
      const url = await listen(app, values.addr ?? '127.0.0.1:8181')
      logger.info({ url, bundles: manager.status().map((s) => ({ name: s.name, state: s.state, revision: s.active_revision })) }, 'portcullis listening')
      const stop = (signal: string): void => {
        logger.info({ signal }, 'shutting down')
        void app.close().then(() => watcher.close()).then(() => process.exit(0))
      }
      process.once('SIGTERM', () => stop('SIGTERM'))
      process.once('SIGINT', () => stop('SIGINT'))
      return -1
    } catch (err) {
      return reportError(err, io)
    }
  },
}
