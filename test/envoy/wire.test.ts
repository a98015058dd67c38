/**
 * proto/ against Envoy's own generated types (go-control-plane): scripts/envoy-wire-check.ts
 * decodes a Go-encoded CheckRequest with every field set through our .proto files and has Go
 * decode our CheckResponses. Needs Go (skipped outside CI without it; in CI a missing Go fails).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inCI } from '../helpers/opa.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const hasGo = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0

test('proto/ is wire-compatible with go-control-plane\'s envoy.service.auth.v3 types', { skip: !hasGo && !inCI ? 'Go not found (the wire check builds a Go program)' : false, timeout: 600_000 }, () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'envoy-wire-check.ts')], { cwd: root, encoding: 'utf8' })
  assert.equal(r.status, 0, `envoy-wire-check failed:\n${r.stdout}\n${r.stderr}`)
})
