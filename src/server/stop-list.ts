/**
 * The stops of a process's started parts, on one list: a failed start unwinds it and stop()
 * runs it, both newest first, so what a part needs is still running while it stops (the
 * listeners stop before the app they decide through, the app drains before the audit trail
 * closes). A part is registered where its place in the shutdown order is: as it opens, or
 * before it opens when it must stop after parts opened before it (its stop then does nothing
 * when it never opened).
 */

/** What a stop may read: the process's grace period and what is left of it. */
export interface StopContext {
  /** server.shutdown_grace_ms; undefined while unwinding a failed start (nothing was serving, nothing to wait for). */
  readonly graceMs: number | undefined
  /** What is left of the grace period since stop() began (0 once spent or while unwinding). */
  remainingMs: () => number
}

export type Stop = (ctx: StopContext) => unknown

export class StopList {
  readonly #stops: Stop[] = []

  /** Registers a stop: it runs before every stop registered earlier. */
  add (stop: Stop): void {
    this.#stops.push(stop)
  }

  /**
   * One start step: runs `open`; when it throws, everything registered so far is unwound and the
   * error rethrown. `stop` (for a defined result) joins the list once `open` succeeded.
   */
  async step<T> (open: () => Promise<T> | T, stop?: (value: NonNullable<T>, ctx: StopContext) => unknown): Promise<T> {
    let value: T
    try {
      value = await open()
    } catch (err) {
      await this.unwind()
      throw err
    }
    if (value !== undefined && value !== null && stop !== undefined) {
      const v = value
      this.add((ctx) => stop(v, ctx))
    }
    return value
  }

  /**
   * Unwinds a failed start: every stop, newest first; a stop that fails does not keep the rest
   * from running (the start's own error is the one to report).
   */
  async unwind (): Promise<void> {
    const ctx: StopContext = { graceMs: undefined, remainingMs: () => 0 }
    for (const stop of this.#stops.splice(0).reverse()) {
      try { await stop(ctx) } catch { /* closing what failed to start */ }
    }
  }

  /**
   * Stops a started process: every stop, newest first, each awaited before the next. A stop
   * that fails does not keep the rest from running — a listener that fails to close must not
   * leave the audit trail unflushed, its lock held or the shipper's last upload unsent — and
   * the first failure is rethrown once all have run.
   */
  async stop (graceMs: number): Promise<void> {
    const startedAt = Date.now()
    const ctx: StopContext = { graceMs, remainingMs: () => Math.max(0, graceMs - (Date.now() - startedAt)) }
    let failure: { err: unknown } | undefined
    for (const stop of this.#stops.splice(0).reverse()) {
      try { await stop(ctx) } catch (err) { failure ??= { err } }
    }
    if (failure !== undefined) throw failure.err
  }
}
