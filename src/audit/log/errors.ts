/**
 * The audit log's errors, one definition for the writer, the reader and checkpoints:
 * PORTCULLIS_AUDIT_INVALID (the log, a checkpoint or a key is not what it must be) and
 * PORTCULLIS_AUDIT_UNAVAILABLE (it cannot be written now: the caller fails closed), and the
 * errno of a file-system error.
 */
import { PortcullisError } from '../../errors.js'

export function unavailable (msg: string, details: Record<string, unknown> = {}, cause?: unknown): PortcullisError {
  return new PortcullisError('PORTCULLIS_AUDIT_UNAVAILABLE', msg, details, cause === undefined ? undefined : { cause })
}

export function invalid (msg: string, details: Record<string, unknown> = {}): PortcullisError {
  return new PortcullisError('PORTCULLIS_AUDIT_INVALID', msg, details)
}

export function errnoOf (err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : 'EUNKNOWN'
}

/** A bad request to the audit or console API: PORTCULLIS_AUDIT_INVALID (400), naming the parameter when there is one. */
export function auditInvalid (msg: string, parameter?: string): PortcullisError {
  return invalid(msg, parameter !== undefined ? { parameter } : {})
}
