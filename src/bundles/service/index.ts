/**
 * Bundles from bundle servers (OPA's bundle service protocol): one BundleDownloader per
 * configured remote bundle, all feeding the same BundleManager as the bundles directory.
 * `start()` loads every persisted copy first (so a restart with the server down serves the last
 * good bundles), then starts polling; `close()` aborts what is in flight and clears every timer.
 */
import type { BundleManager } from '../activate.js'
import { BundleDownloader, type DownloaderDeps, type RemoteBundleOptions } from './downloader.js'

export { BundleDownloader, OPA_BUNDLE_CONTENT_TYPE, type PollOutcome, type RemoteBundleOptions } from './downloader.js'
export { bundleUrl, fetchBundle, type ServiceOptions } from './client.js'
export { persistDirOf } from './persist.js'

export interface BundleService {
  readonly downloaders: ReadonlyMap<string, BundleDownloader>
  /** Loads persisted bundles, then starts every downloader. Does not wait for the first download. */
  start: () => Promise<void>
  close: () => Promise<void>
}

export function createBundleService (manager: BundleManager, bundles: RemoteBundleOptions[], deps: DownloaderDeps = {}): BundleService {
  const downloaders = new Map<string, BundleDownloader>()
  for (const b of bundles) downloaders.set(b.name, new BundleDownloader(manager, b, deps))
  let closed = false
  return {
    downloaders,
    start: async () => {
      for (const d of downloaders.values()) {
        if (closed) return
        await d.loadPersisted()
      }
      if (closed) return
      for (const d of downloaders.values()) d.start()
    },
    close: async () => {
      closed = true
      await Promise.all([...downloaders.values()].map(async (d) => await d.close()))
    },
  }
}
