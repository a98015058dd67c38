/**
 * npm run build:policies — compiles every policy package under policies/ into
 * bundles/<name>.tar.gz with `opa build -t wasm` (entrypoints from `entrypoint: true`
 * annotations; revision derived from the sources).
 */
import { join } from 'node:path'
import { bundlesDir, buildPolicy, policyPackages } from './lib/policies.js'
import { requireOpa } from './lib/opa.js'

const opa = requireOpa()
for (const pkg of policyPackages()) {
  const out = join(bundlesDir, `${pkg.name}.tar.gz`)
  const revision = buildPolicy(pkg, out, opa)
  console.log(`built ${out} (revision ${revision})`)
}
