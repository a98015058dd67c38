/**
 * One mapping from any error to OPA's error shape, for fastify's error handler and for the
 * framework-free decision route (fast-data.ts): `{code, message, errors?, portcullis_code}`
 * with the HTTP status of the error registry. Unknown errors become internal_error; nothing
 * here ever produces a decision.
 */
import { PortcullisError, isPortcullisError } from '../errors.js'

export interface ErrorResponse {
  error: PortcullisError
  body: Record<string, unknown>
}

export function errorResponse (err: unknown, bodyLimit: number, onUnknown?: (err: unknown) => void): ErrorResponse {
  let error: PortcullisError
  if (isPortcullisError(err)) {
    error = err
  } else {
    const e = err as { statusCode?: number, code?: string, message: string }
    if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
      error = new PortcullisError('PORTCULLIS_INPUT_INVALID', `request body does not match its content-encoding (${e.message})`, { header: 'content-encoding' })
    } else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      error = new PortcullisError('PORTCULLIS_INPUT_TOO_LARGE', `request body exceeds ${bodyLimit} bytes`, { limit: bodyLimit })
    } else if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      error = new PortcullisError('PORTCULLIS_INPUT_INVALID', e.message, { fastify_code: e.code })
    } else {
      onUnknown?.(err)
      error = new PortcullisError('PORTCULLIS_INTERNAL', 'internal error')
    }
  }
  const body: Record<string, unknown> = { code: error.opaCode, message: error.message, portcullis_code: error.code }
  const opaCode = error.details.opa_code
  if (typeof opaCode === 'string') body.errors = [{ code: opaCode, message: error.message }]
  return { error, body }
}
