/**
 * Watches a bundles directory (chokidar) and keeps the BundleManager in step with it.
 *
 * A bundle is either `<name>.tar.gz` / `<name>.tgz` directly in the directory, or an unpacked
 * bundle directory `<name>/`. Names starting with `.` are ignored, so writers can stage a file
 * as `.name.tar.gz.tmp` and rename it into place. Every change is debounced per bundle, and
 * chokidar's awaitWriteFinish waits for a file's size to settle, so a half-written file is not
 * loaded; should a slow writer pause longer than that, the partial file fails verification and
 * the previous revision keeps serving until the complete file arrives. One name, one source: a
 * name with several (`x.tar.gz` and `x/`) is not loaded while they last (loadBundlesDir).
 */
import { readdir, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { watch, type FSWatcher } from 'chokidar'
import type { BundleManager } from './activate.js'
import { compareUtf8 } from '../canonical-json.js'
import { bundleNameOf } from './load.js'
import { BundleError } from '../errors.js'

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

/** Lists the bundles present in `dir` now (a name with several sources is listed once per source). */
export async function scanBundles (dir: string): Promise<Array<{ name: string, source: string }>> {
  const out: Array<{ name: string, source: string }> = []
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => compareUtf8(a.name, b.name))) {
    if (entry.name.startsWith('.')) continue
    if (entry.isFile() && ARCHIVE.test(entry.name)) out.push({ name: bundleNameOf(entry.name), source: join(dir, entry.name) })
    else if (entry.isDirectory()) out.push({ name: entry.name, source: join(dir, entry.name) })
  }
  return out
}

/** The sources of bundle `name` in `dir` now: `<name>.tar.gz`, `<name>.tgz`, the directory `<name>/`. */
async function sourcesOf (dir: string, name: string): Promise<string[]> {
  const out: string[] = []
  for (const [file, dirEntry] of [[`${name}.tar.gz`, false], [`${name}.tgz`, false], [name, true]] as const) {
    try {
      const st = await stat(join(dir, file))
      if (dirEntry ? st.isDirectory() : st.isFile()) out.push(join(dir, file))
    } catch { /* absent */ }
  }
  return out
}

/**
 * Several sources for one bundle name (`x.tar.gz` beside `x.tgz` or an unpacked `x/`): which one
 * is meant cannot be told, so none of them is loaded — the active revision, if any, keeps
 * serving and the bundle's status says why (PORTCULLIS_BUNDLE_NAME_CONFLICT).
 */
function reportConflict (manager: BundleManager, name: string, sources: string[]): void {
  manager.reportFailure(name, sources[0] as string, new BundleError('PORTCULLIS_BUNDLE_NAME_CONFLICT',
    `bundle ${JSON.stringify(name)} has ${sources.length} sources in the bundles directory (${sources.map((x) => JSON.stringify(x)).join(', ')}); none is loaded until only one is left`,
    { bundle: name, sources }))
}

/**
 * Loads every bundle of `dir` once (the start, with or without the watcher): one source per
 * name; a name with several sources is not loaded (reportConflict).
 */
export async function loadBundlesDir (dir: string, manager: BundleManager): Promise<void> {
  const byName = new Map<string, string[]>()
  for (const b of await scanBundles(dir)) byName.set(b.name, [...(byName.get(b.name) ?? []), b.source])
  for (const [name, sources] of byName) manager.expect(name, sources[0] as string)
  for (const [name, sources] of byName) {
    if (sources.length > 1) reportConflict(manager, name, sources)
    else await manager.load(sources[0] as string, name)
  }
}

export function watchBundles (dir: string, manager: BundleManager, opts: WatchOptions = {}): BundleWatcher {
  const debounceMs = opts.debounceMs ?? 250
  const stabilityMs = opts.stabilityMs ?? 200
  const timers = new Map<string, NodeJS.Timeout>()
  /** The paths changed since a bundle's last apply (its debounce window). */
  const changedPaths = new Map<string, Set<string>>()
  let closed = false

  // What a bundle name stands for is decided from the directory as it is now, not from the
  // path that changed: deleting a stray `x.tgz`, an old `x/` or a file named `x` must not
  // deactivate the `x.tar.gz` that serves.
  const apply = async (name: string, changed: Set<string>): Promise<void> => {
    const sources = await sourcesOf(dir, name)
    if (closed) return
    if (sources.length === 0) { await manager.remove(name); return }
    if (sources.length > 1) { reportConflict(manager, name, sources); return }
    const source = sources[0] as string
    const current = manager.statusOf(name)
    const touched = [...changed].some((p) => p === source || p.startsWith(source + sep))
    // nothing of the one source changed and it is what serves: nothing to do
    if (!touched && current?.source === source && current.state === 'OK') return
    await manager.load(source, name)
  }

  const schedule = (changed: string): void => {
    const target = bundleFor(dir, changed)
    if (target === undefined || closed) return
    const existing = timers.get(target.name)
    if (existing !== undefined) clearTimeout(existing)
    const paths = changedPaths.get(target.name) ?? new Set<string>()
    paths.add(changed)
    changedPaths.set(target.name, paths)
    timers.set(target.name, setTimeout(() => {
      timers.delete(target.name)
      changedPaths.delete(target.name)
      void apply(target.name, paths)
    }, debounceMs))
  }

  let watcher: FSWatcher | undefined
  const ready = (async () => {
    await loadBundlesDir(dir, manager)
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
