/**
 * Long console work (verify, replay) as jobs: one at a time per kind (a second start while one
 * runs is refused with 409 PORTCULLIS_CONSOLE_BUSY), progress readable while it runs, and the
 * last job's result kept until the next one starts — bounded memory, no queue to grow. The slot
 * can be claimed before the work is known (JobLease): the replay upload claims it before it
 * reads its body, so concurrent uploads never buffer and compile a candidate each.
 *
 * The job runs in the process that accepted it, but its state lives in a JobRegistry: in one
 * process a map; in a worker group the primary (server/workers.ts), so that any worker answers
 * `GET …/<id>` and "one at a time" holds for the whole group.
 */
import { randomUUID } from 'node:crypto'
import { PortcullisError, toPortcullisError } from '../errors.js'

export interface JobView<P = unknown> { state: 'running' | 'done' | 'failed', progress: P, report?: unknown, error?: { code: string, message: string } }

export interface JobRegistry {
  /** Registers job `id` of `kind` unless one of that kind runs (then: the running job's id). */
  claim: (kind: string, id: string, view: JobView) => Promise<{ ok: true } | { ok: false, running: string }>
  update: (kind: string, id: string, view: JobView) => void
  get: (kind: string, id: string) => Promise<JobView | undefined>
}

/** The registry of one process. */
export class LocalJobRegistry implements JobRegistry {
  private readonly jobs = new Map<string, { id: string, view: JobView }>()

  async claim (kind: string, id: string, view: JobView): Promise<{ ok: true } | { ok: false, running: string }> {
    const cur = this.jobs.get(kind)
    if (cur?.view.state === 'running') return { ok: false, running: cur.id }
    this.jobs.set(kind, { id, view })
    return { ok: true }
  }

  update (kind: string, id: string, view: JobView): void {
    if (this.jobs.get(kind)?.id === id) this.jobs.set(kind, { id, view })
  }

  async get (kind: string, id: string): Promise<JobView | undefined> {
    const cur = this.jobs.get(kind)
    return cur?.id === id ? cur.view : undefined
  }

  /** A worker that ran `id` is gone: a job it left running has failed. */
  abandon (kind: string, id: string): void {
    const cur = this.jobs.get(kind)
    if (cur?.id === id && cur.view.state === 'running') {
      cur.view = { ...cur.view, state: 'failed', error: { code: 'PORTCULLIS_INTERNAL', message: 'the worker process running the job exited' } }
    }
  }
}

/**
 * A claimed slot before its work starts: the replay upload claims the slot before its body is
 * read (so a second upload is refused before it buffers anything), then either starts the job
 * or releases the slot. Releasing marks the claimed job failed with the error that stopped it;
 * a registry only refuses a claim while a job of the kind is `running`, so the slot is free
 * again for the whole group. Both are idempotent and a lease is used once.
 */
export class JobLease<P> {
  #state: 'held' | 'started' | 'released' = 'held'
  constructor (readonly id: string, private readonly kind: string, private readonly registry: JobRegistry, private readonly view: JobView<P>) {}

  /** True until start() or release(). */
  get held (): boolean {
    return this.#state === 'held'
  }

  /** Runs the work as this job; throws PORTCULLIS_CONSOLE_BUSY if the lease was released meanwhile. */
  start (run: (progress: (p: P) => void) => Promise<unknown>): string {
    if (this.#state !== 'held') throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', `the ${this.kind} slot was released before the job started`, { job: this.id })
    this.#state = 'started'
    const { id, kind, registry, view } = this
    void (async () => {
      try {
        const report = await run((p) => { view.progress = p; registry.update(kind, id, view) })
        view.report = report
        view.state = 'done'
      } catch (err) {
        const e = toPortcullisError(err)
        view.error = { code: e.code, message: e.message }
        view.state = 'failed'
      }
      registry.update(kind, id, view)
    })()
    return id
  }

  /** Frees the slot if the job never started: the claimed job is recorded as failed with `error`'s code. */
  release (error: unknown = new PortcullisError('PORTCULLIS_CONSOLE_BUSY', `the ${this.kind} request ended before its job started`)): void {
    if (this.#state !== 'held') return
    this.#state = 'released'
    const e = toPortcullisError(error)
    this.view.error = { code: e.code, message: e.message }
    this.view.state = 'failed'
    this.registry.update(this.kind, this.id, this.view)
  }
}

export class JobSlot<P> {
  constructor (private readonly kind: string, private readonly registry: JobRegistry = new LocalJobRegistry()) {}

  /** Claims the slot without starting work; throws PORTCULLIS_CONSOLE_BUSY (409) while a job of this kind runs or is claimed anywhere in the group. */
  async claim (initial: P): Promise<JobLease<P>> {
    const id = randomUUID()
    const view: JobView<P> = { state: 'running', progress: initial }
    const claimed = await this.registry.claim(this.kind, id, view)
    if (!claimed.ok) throw new PortcullisError('PORTCULLIS_CONSOLE_BUSY', `a ${this.kind} job is already running`, { job: claimed.running })
    return new JobLease(id, this.kind, this.registry, view)
  }

  /** Starts work in this process; throws PORTCULLIS_CONSOLE_BUSY (409) while a job of this kind runs anywhere in the group. */
  async start (initial: P, run: (progress: (p: P) => void) => Promise<unknown>): Promise<string> {
    return (await this.claim(initial)).start(run)
  }

  async get (id: string): Promise<JobView<P> | undefined> {
    return await this.registry.get(this.kind, id) as JobView<P> | undefined
  }
}
