/**
 * Worker processes (node:cluster). The primary forks N workers that share the listening
 * socket; each worker has its own engine and bundle watcher and reloads bundles itself.
 * The primary serves as the group's switchboard: /metrics in any worker returns the
 * aggregate of all workers (prom-client AggregatorRegistry), and a cache flush reaches every
 * worker. Crashed workers are replaced (with backoff) in their slot (PORTCULLIS_WORKER_SLOT, the
 * worker's audit stream); SIGTERM/SIGINT shut the group down
 * gracefully and the primary exits 0 once every worker has. Large data images (a bundle's
 * data of 1 MiB or more) are built one worker at a time: each build takes a core for about a
 * second per 40 MB, and N workers building at once after a bundle change would take every
 * core from the decisions being answered meanwhile (issue 12, p99 during a hot reload) and
 * from the first worker's start.
 */
import cluster, { type Worker } from 'node:cluster'
import { randomUUID } from 'node:crypto'
import { AggregatorRegistry } from 'prom-client'
import type { Logger as PinoLogger } from 'pino'
import type { Runtime, RuntimeHooks } from './runtime.js'
import { LocalJobRegistry, type JobRegistry, type JobView } from '../console/jobs.js'

type Msg =
  | { t: 'portcullis:metrics', id: string }
  | { t: 'portcullis:metrics:reply', id: string, text: string }
  | { t: 'portcullis:flush', id: string }
  | { t: 'portcullis:flush:do', id: string }
  | { t: 'portcullis:flush:done', id: string, n: number }
  | { t: 'portcullis:flush:reply', id: string, n: number }
  | { t: 'portcullis:ready', url: string }
  // console jobs (src/console/jobs.ts): the primary holds their state for the whole group
  | { t: 'portcullis:job:claim', id: string, kind: string, job: string, view: JobView }
  | { t: 'portcullis:job:claim:reply', id: string, ok: boolean, running?: string }
  | { t: 'portcullis:job:update', kind: string, job: string, view: JobView }
  | { t: 'portcullis:job:get', id: string, kind: string, job: string }
  | { t: 'portcullis:job:get:reply', id: string, view: JobView | null }
  // the group's one build slot for large data images (policy/data-loader.ts setBuildSlot)
  | { t: 'portcullis:build:claim', id: string }
  | { t: 'portcullis:build:grant', id: string }
  | { t: 'portcullis:build:release', id: string }

const isMsg = (m: unknown): m is Msg => typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string' && (m as { t: string }).t.startsWith('portcullis:')

export interface PrimaryOptions {
  workers: number
  logger: PinoLogger
  shutdownGraceMs: number
}

/** Runs the primary: forks workers and keeps the group going. Resolves when the group has shut down. */
export function runPrimary (opts: PrimaryOptions): Promise<void> {
  const aggregator = new AggregatorRegistry()
  const log = opts.logger
  let stopping = false
  let restarts = 0
  const pendingFlush = new Map<string, { from: Worker, left: number, n: number }>()
  const jobs = new LocalJobRegistry()
  const jobOwners = new Map<number, Array<{ kind: string, job: string }>>() // worker id -> jobs it claimed
  const builds = new BuildSlot((w, id) => { log.info({ worker: w.id, slot: slots.get(w.id), claim: id }, 'data image build slot granted') })

  // Each worker has a stable slot 1..N (PORTCULLIS_WORKER_SLOT): its audit stream is `w<slot>`,
  // and a replacement for a crashed worker takes over its slot, so it continues that stream.
  const slots = new Map<number, number>() // worker id -> slot
  const fork = (slot: number): void => {
    const w = cluster.fork({ PORTCULLIS_WORKER_SLOT: String(slot) })
    slots.set(w.id, slot)
    w.on('message', (m: unknown) => { void onMessage(w, m) })
  }

  const onMessage = async (w: Worker, m: unknown): Promise<void> => {
    if (!isMsg(m)) return
    switch (m.t) {
      case 'portcullis:ready':
        log.info({ worker: w.id, slot: slots.get(w.id), pid: w.process.pid, url: m.url }, 'worker listening')
        return
      case 'portcullis:metrics': {
        let text = ''
        try {
          text = await (await aggregator.clusterMetrics() as unknown as Promise<string>)
        } catch (err) {
          text = `# aggregation failed: ${(err as Error).message}\n`
        }
        w.send({ t: 'portcullis:metrics:reply', id: m.id, text })
        return
      }
      case 'portcullis:flush': {
        const live = Object.values(cluster.workers ?? {}).filter((x): x is Worker => x !== undefined && x.isConnected())
        pendingFlush.set(m.id, { from: w, left: live.length, n: 0 })
        for (const x of live) x.send({ t: 'portcullis:flush:do', id: m.id })
        return
      }
      case 'portcullis:job:claim': {
        const r = await jobs.claim(m.kind, m.job, m.view)
        if (r.ok) jobOwners.set(w.id, [...(jobOwners.get(w.id) ?? []).filter((j) => j.kind !== m.kind), { kind: m.kind, job: m.job }])
        w.send({ t: 'portcullis:job:claim:reply', id: m.id, ok: r.ok, ...(r.ok ? {} : { running: r.running }) })
        return
      }
      case 'portcullis:build:claim':
        builds.claim(w, m.id)
        return
      case 'portcullis:build:release':
        if (builds.holder === m.id) log.info({ worker: w.id, slot: slots.get(w.id), claim: m.id }, 'data image build slot released')
        builds.release(m.id)
        return
      case 'portcullis:job:update':
        jobs.update(m.kind, m.job, m.view)
        return
      case 'portcullis:job:get':
        w.send({ t: 'portcullis:job:get:reply', id: m.id, view: (await jobs.get(m.kind, m.job)) ?? null })
        return
      case 'portcullis:flush:done': {
        const p = pendingFlush.get(m.id)
        if (p === undefined) return
        p.n += m.n
        if (--p.left <= 0) {
          pendingFlush.delete(m.id)
          p.from.send({ t: 'portcullis:flush:reply', id: m.id, n: p.n })
        }
      }
    }
  }

  for (let slot = 1; slot <= opts.workers; slot++) fork(slot)

  return new Promise((resolve) => {
    cluster.on('exit', (w, code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve()
        return
      }
      builds.forget(w)
      for (const j of jobOwners.get(w.id) ?? []) jobs.abandon(j.kind, j.job)
      jobOwners.delete(w.id)
      const slot = slots.get(w.id) ?? 1
      slots.delete(w.id)
      log.error({ worker: w.id, slot, code, signal }, 'worker exited; starting a replacement')
      restarts++
      setTimeout(() => { fork(slot) }, Math.min(10_000, 100 * 2 ** Math.min(restarts, 7))).unref()
    })
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'shutting down workers')
      const workers = Object.values(cluster.workers ?? {}).filter((x): x is Worker => x !== undefined)
      if (workers.length === 0) resolve()
      for (const w of workers) w.process.kill('SIGTERM')
      // Workers that outlive the grace period are killed.
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL')
      }, opts.shutdownGraceMs + 2000).unref()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}

/**
 * The primary's build slot: claims are granted one at a time in arrival order; a release (or
 * the holder's exit) grants the next. A release of a claim still waiting withdraws it.
 */
type SlotWorker = Pick<Worker, 'id' | 'send' | 'isConnected'>

export class BuildSlot {
  readonly #queue: Array<{ w: SlotWorker, id: string }> = []
  #holder: { w: SlotWorker, id: string } | undefined

  constructor (private readonly onGrant?: (w: SlotWorker, id: string) => void) {}

  claim (w: SlotWorker, id: string): void {
    this.#queue.push({ w, id })
    this.#grant()
  }

  release (id: string): void {
    if (this.#holder?.id === id) this.#holder = undefined
    else {
      const i = this.#queue.findIndex((c) => c.id === id)
      if (i >= 0) this.#queue.splice(i, 1)
    }
    this.#grant()
  }

  /** A worker that exited: its slot and its waiting claims are dropped. */
  forget (w: SlotWorker): void {
    if (this.#holder?.w === w) this.#holder = undefined
    for (let i = this.#queue.length - 1; i >= 0; i--) if (this.#queue[i]?.w === w) this.#queue.splice(i, 1)
    this.#grant()
  }

  /** The claim holding the slot, if any (for tests and status). */
  get holder (): string | undefined { return this.#holder?.id }

  #grant (): void {
    while (this.#holder === undefined && this.#queue.length > 0) {
      const next = this.#queue.shift() as { w: SlotWorker, id: string }
      if (!next.w.isConnected()) continue
      this.#holder = next
      this.onGrant?.(next.w, next.id)
      next.w.send({ t: 'portcullis:build:grant', id: next.id })
    }
  }
}

/**
 * How long a worker waits for the build slot before it builds anyway: the slot only spreads
 * CPU, so a primary that does not answer (or a long queue) must never hold a bundle back.
 */
const BUILD_SLOT_WAIT_MS = 30_000

export interface WorkerHooks extends RuntimeHooks {
  /** Tells the hooks how this worker empties its own cache (the runtime exists after the hooks). */
  bindLocalFlush: (fn: () => number) => void
  /** Waits for the group's build slot; resolves to its release (policy/data-loader.ts setBuildSlot). */
  buildSlot: () => Promise<() => void>
}

/** In a worker: hooks that reach the whole group through the primary. */
export function workerHooks (): WorkerHooks {
  const pending = new Map<string, (v: unknown) => void>()
  let flushLocal: (() => number) | undefined
  process.on('message', (m: unknown) => {
    if (!isMsg(m)) return
    if (m.t === 'portcullis:metrics:reply') pending.get(m.id)?.(m.text)
    else if (m.t === 'portcullis:flush:reply') pending.get(m.id)?.(m.n)
    else if (m.t === 'portcullis:job:claim:reply') pending.get(m.id)?.(m)
    else if (m.t === 'portcullis:job:get:reply') pending.get(m.id)?.(m.view)
    else if (m.t === 'portcullis:build:grant') pending.get(m.id)?.(true)
    else if (m.t === 'portcullis:flush:do') process.send?.({ t: 'portcullis:flush:done', id: m.id, n: flushLocal?.() ?? 0 })
  })
  const ask = <T>(msg: Msg & { id: string }, timeoutMs = 5000): Promise<T> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { pending.delete(msg.id); reject(new Error('the primary did not answer')) }, timeoutMs)
    pending.set(msg.id, (v) => { clearTimeout(timer); pending.delete(msg.id); resolve(v as T) })
    process.send?.(msg)
  })
  const consoleJobs: JobRegistry = {
    claim: async (kind, job, view) => {
      let r: { ok: boolean, running?: string }
      try {
        r = await ask<{ ok: boolean, running?: string }>({ t: 'portcullis:job:claim', id: randomUUID(), kind, job, view })
      } catch (err) {
        // the primary may still register the claim after this worker gave up waiting: mark the
        // job failed behind it (messages arrive in order), or the slot stays claimed for good
        process.send?.({ t: 'portcullis:job:update', kind, job, view: { ...view, state: 'failed', error: { code: 'PORTCULLIS_INTERNAL', message: 'the primary did not confirm the claim in time' } } })
        throw err
      }
      return r.ok ? { ok: true } : { ok: false, running: r.running ?? '' }
    },
    update: (kind, job, view) => { process.send?.({ t: 'portcullis:job:update', kind, job, view }) },
    get: async (kind, job) => (await ask<JobView | null>({ t: 'portcullis:job:get', id: randomUUID(), kind, job })) ?? undefined,
  }
  return {
    consoleJobs,
    metricsText: () => ask<string>({ t: 'portcullis:metrics', id: randomUUID() }),
    flushCache: () => ask<number>({ t: 'portcullis:flush', id: randomUUID() }),
    bindLocalFlush: (fn: () => number) => { flushLocal = fn },
    buildSlot: () => new Promise((resolve) => {
      const id = randomUUID()
      let released = false
      // Sent once, granted or not: it frees the slot, or withdraws a claim still waiting.
      const release = (): void => {
        if (released) return
        released = true
        process.send?.({ t: 'portcullis:build:release', id })
      }
      const timer = setTimeout(() => { pending.delete(id); resolve(release) }, BUILD_SLOT_WAIT_MS)
      timer.unref()
      pending.set(id, () => { clearTimeout(timer); pending.delete(id); resolve(release) })
      process.send?.({ t: 'portcullis:build:claim', id })
    }),
  }
}

/** In a worker: expose this worker's registry to the primary's aggregator and report readiness. */
export function announceWorker (runtime: Runtime, url: string): void {
  // Constructing an AggregatorRegistry in a worker installs prom-client's reply listener.
  void new AggregatorRegistry()
  AggregatorRegistry.setRegistries([runtime.metrics.registry])
  process.send?.({ t: 'portcullis:ready', url })
}
