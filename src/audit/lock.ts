/**
 * The audit directory's process locks (the stream writer's `writer.lock`, the shipper's
 * `.ship.lock`): proper-lockfile locks — a directory whose mtime the holder refreshes — that
 * also name their holder, so that a holder that is provably dead does not hold its lock until
 * the staleness runs out.
 *
 * Why both: no pid alone decides a lock shared across containers (every container's first
 * process is pid 1, and a pid can be reused), so the mtime heartbeat stays the rule. But after a
 * crash on the same machine — kill -9, an OOM kill, a restart by systemd — the next process
 * would wait up to `stale` (10 s) before it may write, and a fail-closed service answers nothing
 * meanwhile. So the lock directory holds `owner.json`: the holder's pid, the start time the
 * kernel gives that pid (`/proc/<pid>/stat`), its pid namespace, the boot id and the host name.
 * A contender takes a lock over at once only when that record proves the holder gone: same host,
 * same boot, same pid namespace (so the pid means the same process to both), and the pid is gone,
 * a zombie, or now another process (another start time). Anything else — another host or
 * container, no record (a holder that died between its mkdir and the record, or an older
 * version), an unreadable or foreign record, no /proc — falls back to the mtime rule.
 *
 * The record lives inside the lock directory, so it belongs to that directory: a new holder's
 * fresh directory never carries an old holder's record. Removing a lock removes its record
 * first, and only a record that is ours or proven dead, or of a lock stale by its mtime; a live
 * holder's fresh directory is then not empty and its removal fails (a contender that judged it
 * on an outdated look retries and finds it held).
 */
import * as fs from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

const OWNER_FILE = 'owner.json'

/** Who holds a lock, as recorded in it. */
interface Owner {
  v: 1
  host: string
  boot: string
  pidns: string
  pid: number
  /** The process's start time in clock ticks since boot, as the kernel reports it (field 22 of /proc/<pid>/stat). */
  start: string
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses): [state, ppid, …]. */
function statFields (text: string): string[] | undefined {
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  return text.slice(close + 2).trim().split(' ')
}

let self: Owner | null | undefined

/** This process as a lock owner, or null where /proc cannot tell (not Linux, /proc of another pid namespace). */
function selfOwner (): Owner | null {
  if (self !== undefined) return self
  self = null
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'latin1')
    // /proc mounted for another pid namespace would name another process "self"'s pid
    if (Number.parseInt(stat, 10) !== process.pid) return self
    const start = statFields(stat)?.[19]
    if (start === undefined || !/^\d+$/.test(start)) return self
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim()
    const pidns = fs.readlinkSync('/proc/self/ns/pid')
    if (boot === '' || pidns === '') return self
    self = { v: 1, host: hostname(), boot, pidns, pid: process.pid, start }
  } catch { /* no /proc: the mtime rule alone */ }
  return self
}

function parseOwner (text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>
    if (o.v !== 1 || typeof o.host !== 'string' || typeof o.boot !== 'string' || typeof o.pidns !== 'string' || typeof o.start !== 'string') return undefined
    if (typeof o.pid !== 'number' || !Number.isSafeInteger(o.pid) || o.pid <= 0) return undefined
    return o as Owner
  } catch {
    return undefined
  }
}

/** What the record in a lock directory says of its holder. */
type Holder = 'none' | 'self' | 'dead' | 'unknown'

/**
 * Whether the owner record proves its holder gone. Only a record of this host, this boot and
 * this pid namespace can: then its pid names the same process for both of us.
 */
function judge (owner: Owner | undefined, procStat: string | undefined | null): Holder {
  const me = selfOwner()
  if (owner === undefined || me === null) return 'unknown'
  if (owner.host !== me.host || owner.boot !== me.boot || owner.pidns !== me.pidns) return 'unknown'
  if (owner.pid === me.pid && owner.start === me.start) return 'self'
  if (procStat === null) return 'dead' // no such pid
  if (procStat === undefined) return 'unknown'
  const f = statFields(procStat)
  if (f === undefined) return 'unknown'
  if (f[19] !== owner.start) return 'dead' // the pid now names another process
  return f[0] === 'Z' || f[0] === 'X' ? 'dead' : 'unknown' // a zombie holds nothing
}

/** /proc/<pid>/stat's text; null when there is no such process; undefined when it cannot be read. */
function readProcStat (pid: number, cb: (text: string | undefined | null) => void): void {
  fs.readFile(`/proc/${pid}/stat`, 'latin1', (err, text) => {
    if (err === null) cb(text)
    else cb(err.code === 'ENOENT' || err.code === 'ESRCH' ? null : undefined)
  })
}

function holderOf (lockDir: string, cb: (holder: Holder) => void): void {
  fs.readFile(join(lockDir, OWNER_FILE), 'utf8', (err, text) => {
    if (err !== null) return cb(err.code === 'ENOENT' ? 'none' : 'unknown')
    const owner = parseOwner(text)
    if (owner === undefined || selfOwner() === null) return cb('unknown')
    readProcStat(owner.pid, (stat) => cb(judge(owner, stat)))
  })
}

function holderOfSync (lockDir: string): Holder {
  let text: string
  try { text = fs.readFileSync(join(lockDir, OWNER_FILE), 'utf8') } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'unknown'
  }
  const owner = parseOwner(text)
  if (owner === undefined || selfOwner() === null) return 'unknown'
  let stat: string | undefined | null
  try { stat = fs.readFileSync(`/proc/${owner.pid}/stat`, 'latin1') } catch (err) {
    stat = (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : undefined
  }
  return judge(owner, stat)
}

type Cb<T = void> = (err: NodeJS.ErrnoException | null, value?: T) => void

/**
 * The `fs` option for proper-lockfile on the lock at `lockDir` (staleness `staleMs`, as given to
 * proper-lockfile): its mkdir records this process as the owner, its stat reports a provably
 * dead owner's lock as stale (an mtime of 0), and its rmdir removes the record before the
 * directory when the record is this process's, a proven-dead holder's, or the lock is stale by
 * its mtime. Every other path and call is node:fs's.
 */
export function ownedLockFs (lockDir: string, staleMs: number): Record<string, unknown> {
  /**
   * Whether a lock's record may go with it: ours (a release), a proven-dead holder's, or any
   * once the lock is stale by its mtime. A fresh lock of a live or unknown holder keeps its
   * record, so that its directory is not empty and a contender racing on an outdated judgment
   * cannot remove it.
   */
  const removable = (holder: Holder, mtimeMs: number): boolean => holder === 'self' || holder === 'dead' || holder === 'none' || mtimeMs < Date.now() - staleMs
  return {
    ...fs,
    mkdir (path: string, cb: Cb) {
      fs.mkdir(path, (err) => {
        const me = selfOwner()
        if (err !== null || path !== lockDir || me === null) { cb(err); return }
        // Best effort: without a record a contender waits for the mtime rule, as before.
        fs.writeFile(join(path, OWNER_FILE), JSON.stringify(me), { flag: 'wx', mode: 0o644 }, () => { cb(null) })
      })
    },
    stat (path: string, cb: Cb<fs.Stats>) {
      fs.stat(path, (err, st) => {
        if (err !== null || path !== lockDir) { cb(err, st); return }
        holderOf(path, (holder) => {
          // proper-lockfile compares mtime with its staleness: an mtime of 0 is stale at once
          // (proper-lockfile reads nothing else of this stat)
          if (holder === 'dead') cb(null, { ...st, mtime: new Date(0) } as fs.Stats)
          else cb(null, st)
        })
      })
    },
    rmdir (path: string, cb: Cb) {
      if (path !== lockDir) { fs.rmdir(path, cb); return }
      fs.stat(path, (err, st) => {
        if (err !== null) { cb(err); return }
        holderOf(path, (holder) => {
          if (!removable(holder, st.mtimeMs)) { fs.rmdir(path, cb); return }
          fs.unlink(join(path, OWNER_FILE), () => { fs.rmdir(path, cb) })
        })
      })
    },
    rmdirSync (path: string) {
      if (path === lockDir) {
        try {
          if (removable(holderOfSync(path), fs.statSync(path).mtimeMs)) fs.unlinkSync(join(path, OWNER_FILE))
        } catch { /* gone */ }
      }
      fs.rmdirSync(path)
    },
  }
}
