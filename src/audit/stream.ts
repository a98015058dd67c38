/**
 * The audit stream a process writes: its own file of the audit directory. A module of its own
 * (no imports) so the runtime can name the stream without loading the audit log when audit is
 * off.
 */

/** The audit stream of this process: `w<slot>` in a worker (PORTCULLIS_WORKER_SLOT, server/workers.ts), else `main`. */
export function auditStream (env: NodeJS.ProcessEnv = process.env): string {
  const slot = env.PORTCULLIS_WORKER_SLOT
  return slot !== undefined && /^[1-9][0-9]{0,5}$/.test(slot) ? `w${slot}` : 'main'
}
