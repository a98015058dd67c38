/**
 * Portcullis public entry: the pieces an embedding program needs.
 *
 * @example
 *   import { BundleManager, watchBundles, DecisionService, build } from 'portcullis'
 *   const manager = new BundleManager()
 *   await watchBundles('bundles', manager).ready
 *   const app = build({ decisions: new DecisionService({ manager }), manager })
 *   await app.listen({ host: '127.0.0.1', port: 8181 })
 */
export * from './errors.js'
export { BundleManager, type BundleStatus, type ActivationEvent } from './bundles/activate.js'
export { loadBundle, type Bundle } from './bundles/load.js'
export { watchBundles, type BundleWatcher } from './bundles/watch.js'
export type { VerificationConfig, VerificationKey, SigningPolicy } from './bundles/verify.js'
export { PolicySnapshot, type Evaluation } from './policy/snapshot.js'
export { DecisionService, type Decision, type DecisionRequest } from './decision/decide.js'
export { build } from './server/app.js'
export { createIdentityVerifier, validateIdentityConfig, parseSpiffeId, type IdentityVerifier, type IdentityDocument, type IdentityConfig, type IdentityResult } from './identity/index.js'
export { loadConfig, type ResolvedConfig } from './config/load.js'
export { createRuntime, type Runtime, type ListenerFactory } from './server/runtime.js'
export { envoyExtAuthz } from './envoy/listeners.js'
export { DecisionCache } from './cache/decision-cache.js'
export { Metrics } from './metrics/index.js'
