/**
 * Worker threads on a module beside the caller (the data image build, the signed-bundle hash).
 * Under tsx (tests run the TypeScript sources) a worker's own entry is loaded before an
 * inherited --import takes effect, so such a worker registers tsx first and then imports its
 * entry; from the build it runs the compiled `.js` beside the caller.
 */
import { Worker } from 'node:worker_threads'

/** Starts a worker on `entry` (a file name without extension, in the caller's folder). */
export function startWorker (callerUrl: string, entry: string): Worker {
  const self = new URL(callerUrl)
  if (self.pathname.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx/esm/api')
    const url = new URL(`./${entry}.ts`, self).href
    return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url)}) })`, { eval: true })
  }
  return new Worker(new URL(`./${entry}.js`, self))
}
