/**
 * The console tests' common setting (test/server/console-*.test.ts): a temp directory with the
 * served bundles (the committed authz bundle, and the console-system policy that admits only the
 * frontend workload, built by the real opa), an empty audit directory with a checkpoint key,
 * and the authz policy's sources for building replay candidates.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { buildFixture } from './bundles.js'

export interface ConsoleSetting {
  work: string
  /** The bundles directory to serve. */
  bundles: string
  auditDir: string
  /** The `audit` configuration section: on, sync, checkpoints every 4 events with the key above. */
  audit: Record<string, unknown>
  /** The authz policy's sources (without its tests, whose package is outside the roots): build candidates from it. */
  candidateSrc: string
  cleanup: () => void
}

export function consoleSetting (prefix: string): ConsoleSetting {
  const work = mkdtempSync(join(tmpdir(), prefix))
  const bundles = join(work, 'bundles')
  mkdirSync(bundles)
  cpSync(join(process.cwd(), 'bundles', 'authz.tar.gz'), join(bundles, 'authz.tar.gz'))
  buildFixture('console-system', work, { out: join('bundles', 'system.tar.gz'), revision: 'console-system' })
  const auditDir = join(work, 'audit')
  mkdirSync(auditDir)
  const { privateKeyPem } = generateCheckpointKey()
  writeFileSync(join(work, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
  const candidateSrc = join(work, 'authz-src')
  cpSync(join(process.cwd(), 'policies', 'authz'), candidateSrc, { recursive: true })
  rmSync(join(candidateSrc, 'authz', 'policy_test.rego'))
  return {
    work,
    bundles,
    auditDir,
    audit: { enabled: true, dir: auditDir, durability: 'sync', checkpoint: { every_events: 4, every_seconds: 3600, key_file: join(work, 'checkpoint.pem') } },
    candidateSrc,
    cleanup: () => { rmSync(work, { recursive: true, force: true }) },
  }
}
