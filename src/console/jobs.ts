/**
 * Long console work (verify, replay) as jobs: one at a time per kind (a second start while one
 * runs is refused with 409), progress readable while it runs, and the last job's result kept
 * until the next one starts — bounded memory, no queue to grow.
 */
import { randomUUID } from 'node:crypto'
import { PortcullisError, toPortcullisError } from '../errors.js'

export interface JobView<P> { state: 'running' | 'done' | 'failed', progress: P, report?: unknown, error?: { code: string, message: string } }

export class JobSlot<P> {
  private job: { id: string, view: JobView<P> } | undefined

  constructor (private readonly kind: string) {}

  /** Starts work; throws PORTCULLIS_CONSOLE_BUSY (409) when one runs. */
  start (initial: P, run: (progress: (p: P) => void) => Promise<unknown>): string {
    if (this.job?.view.state === 'running') throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', `a ${this.kind} job is already running`, { job: this.job.id })
    const id = randomUUID()
    const view: JobView<P> = { state: 'running', progress: initial }
    this.job = { id, view }
    void (async () => {
      try {
        view.report = await run((p) => { view.progress = p })
        view.state = 'done'
      } catch (err) {
        const e = toPortcullisError(err)
        view.error = { code: e.code, message: e.message }
        view.state = 'failed'
      }
    })()
    return id
  }

  get (id: string): JobView<P> | undefined {
    return this.job?.id === id ? this.job.view : undefined
  }

}
