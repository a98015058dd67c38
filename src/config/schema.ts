/**
 * The configuration schema: the source of both the TypeScript types and the validation.
 * Every key is documented in docs/configuration.md; unknown keys are rejected.
 *
 * Each section lives in its own file under schema/ (shared building blocks in
 * schema/common.ts); this file composes them into the whole and re-exports them, so the rest
 * of the code imports every schema and type from here. The precompiled validator
 * (scripts/build-config-validator.mjs) is generated from ConfigSchema below.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Str, strict } from './schema/common.js'
import { AdminSchema, ConsoleSchema, LoggingSchema, ServerSchema } from './schema/server.js'
import { CacheSchema, PolicySchema } from './schema/policy.js'
import { BundlesSchema, ServiceSchema, VerificationKeySchema } from './schema/bundles.js'
import { IdentitySchema, WorkloadApiSchema } from './schema/identity.js'
import { EnvoyExtAuthzSchema } from './schema/envoy.js'
import { AuditSchema, DecisionLogsSchema } from './schema/audit.js'

export * from './schema/server.js'
export * from './schema/policy.js'
export * from './schema/bundles.js'
export * from './schema/identity.js'
export * from './schema/envoy.js'
export * from './schema/audit.js'

export const ConfigSchema = Type.Object({
  server: ServerSchema,
  bundles: BundlesSchema,
  policy: PolicySchema,
  cache: CacheSchema,
  admin: AdminSchema,
  console: ConsoleSchema,
  logging: LoggingSchema,
  identity: Type.Optional(IdentitySchema),
  envoy_ext_authz: EnvoyExtAuthzSchema,
  // OPA's top-level keys for bundle servers (config/bundle-service.ts normalizes the list form of services).
  services: Type.Record(Type.String({ minLength: 1 }), ServiceSchema, { description: 'bundle servers by name (OPA services; a list with name is accepted too)' }),
  keys: Type.Record(Type.String({ minLength: 1 }), VerificationKeySchema, { description: 'bundle verification keys by key id (OPA keys), beside bundles.signing.keys' }),
  persistence_directory: Str('where persisted bundles are kept (<dir>/bundles/<name>/bundle.tar.gz); OPA default .opa, ours .portcullis'),
  audit: AuditSchema,
  decision_logs: DecisionLogsSchema,
  workload_api: WorkloadApiSchema,
}, strict)

export type Config = Static<typeof ConfigSchema>
