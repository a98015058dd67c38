/** Starts a real Portcullis runtime (config -> runtime) over a temp copy of the committed bundles. */
import { cpSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { loadConfig, type ConfigOverrides } from '../../src/config/load.js'
import { createRuntime, type ListenerFactory, type Runtime } from '../../src/server/runtime.js'

export function bundlesCopy (): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bundles-'))
  cpSync(join(process.cwd(), 'bundles'), dir, { recursive: true })
  return dir
}

export interface StartRuntimeOptions {
  /** Start listening (default true); false: url is ''. */
  listen?: boolean
  /** The `bundles` section before the caller's overrides (default: a temp copy of bundles/, fast watch). */
  bundles?: Record<string, unknown>
  listeners?: ListenerFactory[]
  /** Called after the runtime stopped (e.g. to remove the caller's temp directory). */
  cleanup?: () => void
}

export async function startRuntime (overrides: ConfigOverrides = {}, opts: StartRuntimeOptions = {}): Promise<{ runtime: Runtime, url: string, close: () => Promise<void> }> {
  const o = overrides as Record<string, Record<string, unknown> | undefined>
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      server: { addr: '127.0.0.1:0', workers: 1, ...o.server },
      bundles: { ...(opts.bundles ?? { dir: bundlesCopy(), debounce_ms: 50, stability_ms: 100 }), ...o.bundles },
      logging: { level: 'silent' },
    } as ConfigOverrides,
  })
  const runtime = await createRuntime(config, {}, { logger: pino({ level: 'silent' }), ...(opts.listeners !== undefined ? { listeners: opts.listeners } : {}) })
  const url = opts.listen === false ? '' : await runtime.start()
  return {
    runtime,
    url,
    close: async () => {
      await runtime.stop()
      opts.cleanup?.()
    },
  }
}
