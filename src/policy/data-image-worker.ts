/**
 * Worker-thread entry for data-loader.ts buildDataImageOffThread: builds one data image and
 * sends back the buffer it was written into (transferred, not copied) or the BundleError's code, message and
 * details. One worker per build; the parent terminates it after the reply.
 */
import { parentPort } from 'node:worker_threads'
import { buildDataImage, type BuildOptions, type DataDocument } from './data-loader.js'
import { PortcullisError } from '../errors.js'

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
