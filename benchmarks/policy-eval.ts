/**
 * Evaluations per second of the SPIFFE service-to-service example policy (policies/authz),
 * in-process in Portcullis (opa-wasm) vs `opa bench` (OPA's Go evaluator) on the same query
 * and input, on this machine. Bounded: ~3 s per side.
 *
 *   node --import tsx benchmarks/policy-eval.ts
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BundleManager } from '../src/bundles/activate.js'
import { fmt, machine, opaBench, opsPerSecond } from './lib.js'
import { repoRoot } from '../scripts/lib/opa.js'

const input = { identity: { spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' }, service: 'orders', method: 'GET', path: '/orders/42' }

const manager = new BundleManager()
if (!(await manager.load(join(repoRoot, 'bundles', 'authz.tar.gz')))) throw new Error('cannot load bundles/authz.tar.gz')
const snapshot = manager.snapshot
if (snapshot.evaluate('authz/allow', input).result !== true) throw new Error('unexpected decision')

const ours = opsPerSecond(() => { snapshot.evaluate('authz/allow', input) })

const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
writeFileSync(join(dir, 'input.json'), JSON.stringify(input))
const theirs = opaBench(['-b', join(repoRoot, 'policies', 'authz'), '--ignore', '*_test.rego', '-i', join(dir, 'input.json'), 'data.authz.allow'])
rmSync(dir, { recursive: true, force: true })

console.log(`machine: ${machine()}`)
console.log('policy: policies/authz, query data.authz.allow, one fixed input')
console.log(`portcullis (opa-wasm, in-process): ${fmt(ours.ops)} eval/s  (${fmt(ours.nsPerOp)} ns/op, n=${ours.n})`)
if (theirs === undefined) {
  console.log('opa bench: skipped (opa not installed: npm run install:opa)')
} else {
  console.log(`opa bench (Go, rego target):       ${fmt(theirs.ops)} eval/s  (${fmt(theirs.nsPerOp)} ns/op)`)
  console.log(`ratio portcullis / opa: ${(ours.ops / theirs.ops).toFixed(2)}x`)
}
