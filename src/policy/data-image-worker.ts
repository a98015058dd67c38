/**
 * Worker-thread entry for data-loader.ts buildDataImageOffThread: builds one data image and
 * sends back the buffer it was written into (transferred, not copied) or the BundleError's code, message and
 * details. One worker per build; the parent terminates it after the reply.
 */
import { readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { parentPort } from 'node:worker_threads'
import { buildDataImage, type BuildOptions, type DataDocument } from './data-loader.js'
import { PortcullisError } from '../errors.js'

/**
 * This thread builds at a lower scheduling priority than the server's threads (nice +10, this
 * thread only: on Linux setpriority(PRIO_PROCESS, tid) applies to one thread, and raising one's
 * own nice value needs no privilege). A build takes a core for about a second per 40 MB of data;
 * on a busy machine the decisions answered meanwhile win the CPU and the new revision arrives a
 * little later, instead of the reverse (issue 12, p99 during a hot reload). Elsewhere, or if
 * refused, the build runs at the server's priority.
 */
function lowerPriority (): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (!Number.isInteger(tid) || tid <= 0 || tid === process.pid) return // never the main thread
    setPriority(tid, Math.min(19, getPriority(tid) + 10))
  } catch { /* not Linux, or not permitted */ }
}

lowerPriority()

parentPort?.once('message', (msg: { docs: DataDocument[], opts: BuildOptions }) => {
  // (A second message only hands the segment back to be freed with this thread.)
  try {
    const image = buildDataImage(msg.docs, { ...msg.opts, plain: true })
    const buffer = image.buffer()
    parentPort?.postMessage({ ok: true, buffer, base: image.base, end: image.end, root: image.root }, [buffer])
  } catch (err) {
    if (err instanceof PortcullisError) parentPort?.postMessage({ ok: false, code: err.code, message: err.message, details: err.details })
    else parentPort?.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) })
  }
})
