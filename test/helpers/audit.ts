/**
 * Audit-log test helpers: options for a real log in a temp directory, metric readers, the events
 * of a directory.
 */
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { auditLogDefaults, type AuditLogOptions } from '../../src/audit/log/writer.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import type { Metrics } from '../../src/metrics/index.js'
import type { Logger } from '../../src/log.js'

export function tempAuditDir (): { dir: string, cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function logOptions (dir: string, over: Partial<AuditLogOptions> = {}): AuditLogOptions {
  // the shortest lock staleness: a reopen after a killed writer waits about 2 s, not 10
  return { ...auditLogDefaults, dir, stream: 'main', checkpoint: { everyEvents: 1000, everyMs: 600_000 }, lockStaleMs: 2000, ...over }
}

/** A logger that records what it was told (tests assert on the fields, not the text). */
export function recordingLogger (): Logger & { lines: Array<{ level: string, obj: Record<string, unknown>, msg?: string }> } {
  const lines: Array<{ level: string, obj: Record<string, unknown>, msg?: string }> = []
  const at = (level: string) => (obj: object, msg?: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, info: at('info'), warn: at('warn'), error: at('error') }
}

/** Sum of a counter (all label sets) or the _count/_sum of a histogram. */
export async function metricValue (m: Metrics, name: keyof Metrics, suffix = '', labels: Record<string, string> = {}): Promise<number> {
  const metric = m[name] as unknown as { get: () => Promise<{ values: Array<{ value: number, labels: Record<string, string | number>, metricName?: string }> }> }
  const { values } = await metric.get()
  let sum = 0
  for (const v of values) {
    if (suffix !== '' && v.metricName?.endsWith(suffix) !== true) continue
    if (suffix === '' && v.metricName !== undefined && /_(bucket|sum|count)$/.test(v.metricName)) continue
    if (Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)) sum += v.value
  }
  return sum
}

export function event (i: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ decision_id: `d-${i}`, path: 'authz/allow', result: i % 2 === 0, ...extra })
}

/** An audit event as a test reads it back. */
export type AuditEventRecord = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every event of an audit directory (all streams) by decision_id. */
export async function eventsById (dir: string): Promise<Map<string, AuditEventRecord>> {
  const reader = await AuditDirReader.open(dir)
  const out = new Map<string, AuditEventRecord>()
  try {
    for (const id of reader.streams()) {
      for await (const { bytes } of reader.stream(id).records(0)) {
        const e = JSON.parse(bytes.toString('utf8')) as AuditEventRecord
        if (typeof e.decision_id === 'string') out.set(e.decision_id, e)
      }
    }
  } finally { reader.close() }
  return out
}

/** This process as the lock module records an owner, with `over` changed. */
export function ownerRecord (over: Record<string, unknown> = {}): string {
  const stat = readFileSync('/proc/self/stat', 'latin1')
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  return JSON.stringify({
    v: 1,
    host: hostname(),
    boot: readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim(),
    pidns: readlinkSync('/proc/self/ns/pid'),
    pid: process.pid,
    start,
    ...over,
  })
}

/** A lock directory as a holder leaves it: fresh mtime, the given owner record (or none). */
export function plantLock (lockDir: string, record: string | undefined): void {
  mkdirSync(lockDir, { recursive: true })
  if (record !== undefined) writeFileSync(join(lockDir, 'owner.json'), record)
  const now = new Date()
  utimesSync(lockDir, now, now)
}
