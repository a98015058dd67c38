/**
 * What makes one writer the stream's only writer, and what it leaves for the next one
 * (writer.ts, docs/audit.md):
 * - the writer lock: proper-lockfile, a directory whose mtime the holder refreshes — not a pid
 *   alone, which every container's first process shares; a dead writer's lock turns stale within
 *   `staleMs` of its last refresh, or at once when its owner record proves it dead (../lock.ts);
 * - `writer-state`: whether the last writer finished its stop (`closed`) and the events it could
 *   not write then (written as a gap record at the next open). It is rewritten in place at a
 *   fixed size, so a full disk cannot refuse it at a stop.
 */
import { readFile, unlink, type FileHandle } from 'node:fs/promises'
import { hostname } from 'node:os'
import lockfile from 'proper-lockfile'
import type { Logger } from '../../log.js'
import { ownedLockFs } from '../lock.js'
import { errnoOf, invalid, unavailable } from './errors.js'
import { writeFully } from './files.js'
import type { StreamPaths } from './layout.js'

export const DEFAULT_LOCK_STALE_MS = 10_000
/** `writer-state` is rewritten in place at this fixed size, so a full disk cannot refuse it at a stop. */
const STATE_BYTES = 512

/** Events a stop could not write: how many, and when the first and last of them came. */
export interface LostEvents { count: number, first: number, last: number }

/**
 * Takes the stream's writer lock, waiting (bounded) until a dead writer's lock is stale; returns
 * its release. `onCompromised` is called when the lock is lost while held.
 */
export async function takeWriterLock (paths: StreamPaths, stream: string, staleMs: number, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  const path = paths.writerLock
  const update = Math.max(1000, Math.floor(staleMs / 2))
  let release: () => Promise<void>
  try {
    release = await lockfile.lock(paths.root, {
      lockfilePath: path,
      realpath: false,
      fs: ownedLockFs(path, staleMs),
      stale: staleMs,
      update,
      // bounded: a dead writer's lock turns stale within `stale` of its last refresh (at once
      // when its owner record proves it dead: same host, boot and pid namespace, pid gone)
      retries: { retries: Math.ceil((staleMs + update) / 250), factor: 1, minTimeout: 250, maxTimeout: 250 },
      onCompromised,
    })
  } catch (err) {
    if (errnoOf(err) === 'ELOCKED') {
      throw unavailable(`audit stream ${stream} is locked by another running writer (${path} refreshed within the last ${staleMs} ms); one writer per stream`, { stream, lock: path })
    }
    throw unavailable(`cannot take the audit stream lock ${path}: ${(err as Error).message}`, { stream, file: path, errno: errnoOf(err) }, err)
  }
  // the pid file earlier versions locked with: a pid tells nothing across containers
  try { await unlink(paths.legacyLock) } catch { /* none */ }
  return release
}

/**
 * `writer-state` as the last writer left it: unclean (missing, or `open`: it did not finish a
 * stop) and the events it could not write at its stop. A damaged file counts as unclean.
 */
export async function readWriterState (file: string, stream: string, now: () => number, logger: Logger): Promise<{ unclean: boolean, lost?: LostEvents }> {
  let text: string
  try { text = await readFile(file, 'utf8') } catch (err) {
    if (errnoOf(err) === 'ENOENT') return { unclean: true }
    throw err
  }
  let v: { state?: unknown, lost?: { count?: unknown, first_at?: unknown, last_at?: unknown } }
  try { v = JSON.parse(text) as typeof v } catch {
    logger.warn({ stream, file }, 'audit writer-state is not JSON: treated as an unclean stop')
    return { unclean: true }
  }
  const l = v.lost
  const count = typeof l?.count === 'number' && Number.isSafeInteger(l.count) && l.count > 0 ? l.count : 0
  const first = typeof l?.first_at === 'string' ? Date.parse(l.first_at) : NaN
  const last = typeof l?.last_at === 'string' ? Date.parse(l.last_at) : NaN
  const lost = count > 0 ? { count, first: Number.isFinite(first) ? first : now(), last: Number.isFinite(last) ? last : now() } : undefined
  return { unclean: v.state !== 'closed', ...(lost !== undefined ? { lost } : {}) }
}

/**
 * Rewrites `writer-state` (open as `fh`) in place at its fixed size (space-padded JSON) and
 * fdatasyncs it: an overwrite of allocated blocks, which a full disk does not refuse.
 */
export async function writeWriterState (fh: FileHandle, state: 'open' | 'closed', lost: LostEvents | undefined, at: number): Promise<void> {
  const text = JSON.stringify({ state, pid: process.pid, host: hostname(), at: new Date(at).toISOString(), ...(lost !== undefined ? { lost: { count: lost.count, first_at: new Date(lost.first).toISOString(), last_at: new Date(lost.last).toISOString() } } : {}) })
  if (text.length + 1 > STATE_BYTES) throw invalid('audit writer-state does not fit its fixed size')
  await writeFully(fh, Buffer.from(text.padEnd(STATE_BYTES - 1, ' ') + '\n'), 0)
  await fh.datasync()
}
