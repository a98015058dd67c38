/**
 * Deployment configuration the host builtins read: what `opa.runtime()` reports, and the
 * settings of the builtins that reach outside the process (behind deny-by-default switches,
 * see BuiltinSpec.requiresSwitch and builtinAvailability's `switches`).
 */
export interface BuiltinConfig {
  /** What opa.runtime() returns besides env/version: typically `{ config: {...} }` without secrets. */
  runtime?: Record<string, unknown>
  /** Environment variables exposed through opa.runtime().env (OPA exposes the whole environment; Portcullis only those listed). */
  env?: Record<string, string>
  http?: {
    /** Default and maximum timeout for one http.send call in milliseconds (OPA default: 5s). */
    timeoutMs?: number
    /** Hosts http.send may reach; empty or absent means any. */
    allowedHosts?: string[]
  }
}

let config: BuiltinConfig = {}

/** Sets the builtin configuration for this process (the server calls it once at startup). */
export function configureBuiltins (c: BuiltinConfig): void {
  config = structuredClone(c)
}

export function builtinConfig (): BuiltinConfig {
  return config
}
