/** opa.runtime (OPA v1/topdown/runtime.go): configured, never the process environment wholesale. */
import type { BuiltinSpec } from './types.js'
import { builtinConfig } from './config.js'

export const runtimeBuiltins: BuiltinSpec[] = [
  {
    name: 'opa.runtime',
    impl: () => {
      const c = builtinConfig()
      return { ...(c.runtime ?? {}), env: { ...(c.env ?? {}) } }
    },
  },
]
