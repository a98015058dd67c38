/**
 * Watches a bundles directory (chokidar) and keeps the BundleManager in step with it.
 *
 * A bundle is either `<name>.tar.gz` / `<name>.tgz` directly in the directory, or an unpacked
 * bundle directory `<name>/`. Names starting with `.` are ignored, so writers can stage a file
 * as `.name.tar.gz.tmp` and rename it into place. Every change is debounced per bundle, and
 * chokidar's awaitWriteFinish waits for a file's size to settle, so a half-written file is not
 * loaded; should a slow writer pause longer than that, the partial file fails verification and
 * the previous revision keeps serving until the complete file arrives.
 */
import { readdir, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { BundleManager } from './activate.js'
import { compareUtf8 } from '../canonical-json.js'
import { bundleNameOf } from './load.js'

export interface WatchOptions {
  /** Quiet time after the last change to a bundle before it is loaded. */
  debounceMs?: number
  /** How long a file's size must stay unchanged before chokidar reports it. */
  stabilityMs?: number
  /** Use polling (for filesystems without change notifications). */
  usePolling?: boolean
}

export interface BundleWatcher {
  /** Resolves when the initial scan has been loaded and the watcher is live. */
  ready: Promise<void>
  close: () => Promise<void>
}

const ARCHIVE = /\.(tar\.gz|tgz)$/

/** Maps a changed path to the bundle it belongs to, or undefined when it belongs to none. */
export function bundleFor (dir: string, changed: string): { name: string, source: string } | undefined {
  const rel = relative(dir, changed)
  if (rel === '' || rel.startsWith('..')) return undefined
  const first = rel.split(sep)[0] as string
  if (first.startsWith('.')) return undefined
  if (rel === first) {
    // Top-level entry: an archive, or a bundle directory itself.
    if (ARCHIVE.test(first)) return { name: bundleNameOf(first), source: join(dir, first) }
    return { name: first, source: join(dir, first) }
  }
  return { name: first, source: join(dir, first) }
}

/** Lists the bundles present in `dir` now. */
export async function scanBundles (dir: string): Promise<Array<{ name: string, source: string }>> {
  const out: Array<{ name: string, source: string }> = []
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => compareUtf8(a.name, b.name))) {
    if (entry.name.startsWith('.')) continue
    if (entry.isFile() && ARCHIVE.test(entry.name)) out.push({ name: bundleNameOf(entry.name), source: join(dir, entry.name) })
    else if (entry.isDirectory()) out.push({ name: entry.name, source: join(dir, entry.name) })
  }
  return out
}

export function watchBundles (dir: string, manager: BundleManager, opts: WatchOptions = {}): BundleWatcher {
  const debounceMs = opts.debounceMs ?? 250
  const stabilityMs = opts.stabilityMs ?? 200
  const timers = new Map<string, NodeJS.Timeout>()
  let closed = false

  const apply = async (name: string, source: string): Promise<void> => {
    let exists = false
    let isArchiveOrDir = false
    try {
      const st = await stat(source)
      exists = true
      isArchiveOrDir = st.isDirectory() || (st.isFile() && ARCHIVE.test(source))
    } catch {
      exists = false
    }
    if (closed) return
    if (!exists) await manager.remove(name)
    else if (isArchiveOrDir) await manager.load(source, name)
  }

  const schedule = (changed: string): void => {
    const target = bundleFor(dir, changed)
    if (target === undefined || closed) return
    const existing = timers.get(target.name)
    if (existing !== undefined) clearTimeout(existing)
    timers.set(target.name, setTimeout(() => {
      timers.delete(target.name)
      void apply(target.name, target.source)
    }, debounceMs))
  }

  let watcher: FSWatcher | undefined
  const ready = (async () => {
    for (const b of await scanBundles(dir)) manager.expect(b.name, b.source)
    for (const b of await scanBundles(dir)) await manager.load(b.source, b.name)
    if (closed) return
    watcher = watch(dir, {
      ignoreInitial: true,
      usePolling: opts.usePolling ?? false,
      interval: 100,
      awaitWriteFinish: { stabilityThreshold: stabilityMs, pollInterval: Math.max(10, Math.floor(stabilityMs / 4)) },
      ignored: (p: string) => {
        const rel = relative(dir, p)
        return rel !== '' && (rel.split(sep)[0] as string).startsWith('.')
      },
    })
    for (const event of ['add', 'change', 'unlink', 'addDir', 'unlinkDir'] as const) {
      watcher.on(event, schedule)
    }
    await new Promise<void>((resolve) => watcher?.once('ready', () => resolve()))
  })()

  return {
    ready,
    close: async () => {
      closed = true
      for (const t of timers.values()) clearTimeout(t)
      timers.clear()
      await ready.catch(() => {})
      await watcher?.close()
      await manager.settled()
    },
  }
}
