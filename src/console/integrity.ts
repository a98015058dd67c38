/**
 * Integrity of the log as the console shows it (docs/console.md "API"): per stream the latest
 * checkpoint, whether its signature verifies with the checkpoint key, whether it is consistent
 * with the checkpoint before it (an RFC 9162 consistency proof from the stored hashes, verified
 * here as an auditor would), gaps (from the segment summaries), ranges removed by retention, and
 * events not yet covered by a checkpoint. The full check is a verify job (jobs.ts).
 */
import { createPublicKey } from 'node:crypto'
import { AuditDirReader } from '../audit/log/reader.js'
import { signedByAny } from '../audit/log/checkpoint.js'
import { readRetentionLog, streamPaths } from '../audit/log/layout.js'
import { verifyConsistency } from '../audit/log/tree.js'
import { checkpointPublicKey, previousPublicKeyPems } from './decisions.js'
import { streamSegments, summaryOf } from './segments.js'

export async function integrity (dir: string, keyFile: string | undefined, previousKeyFiles: readonly string[] = []): Promise<Record<string, unknown>> {
  const key = await checkpointPublicKey(dir, keyFile)
  // after a key rotation a stream not written since still ends in a checkpoint of a previous key
  const keyObjects = key === undefined ? [] : [key.pem, ...(key.source === 'configured' ? await previousPublicKeyPems(previousKeyFiles) : [])].map((pem) => createPublicKey(pem))
  const reader = await AuditDirReader.open(dir)
  try {
    const streams = []
    for (const id of reader.streams()) {
      const s = reader.stream(id)
      const events = await s.treeSize()
      const cps = await s.checkpoints()
      const cp = cps[cps.length - 1]
      let consistent: boolean | null = null
      if (cp !== undefined) {
        const prev = [...cps].reverse().find((c) => c.size < cp.size)
        if (prev !== undefined) {
          try {
            const proof = await s.consistencyProof(prev.size, cp.size)
            consistent = verifyConsistency(prev.size, cp.size, prev.root, cp.root, proof)
          } catch { consistent = false }
        } else if (cps.length > 1) {
          consistent = cps.every((c) => c.size === cp.size && c.root.equals(cp.root))
        }
      }
      const gaps = []
      const { segments } = await streamSegments(dir, id)
      for (let i = 0; i < segments.length; i++) {
        const sum = await summaryOf(dir, id, segments[i] as (typeof segments)[number], i < segments.length - 1)
        for (const g of sum.gaps) gaps.push({ first_seq: g.seq, shed: g.shed, first_shed_at: g.first_shed_at, last_shed_at: g.last_shed_at })
      }
      const retained = (await readRetentionLog(streamPaths(dir, id).retention)).entries.map((r) => ({ first_seq: r.first_seq, last_seq: r.last_seq }))
      streams.push({
        stream: id,
        events,
        checkpoint: cp !== undefined ? { size: cp.size, root: cp.root.toString('base64'), origin: cp.origin } : null,
        signature: cp === undefined || keyObjects.length === 0 ? 'unverified' : signedByAny(cp.note, keyObjects) ? 'valid' : 'invalid',
        key_source: key === undefined ? 'none' : key.source,
        consistent_with_previous: consistent,
        gaps,
        retained,
        unsealed_events: Math.max(0, events - (cp?.size ?? 0)),
      })
    }
    return { streams }
  } finally { reader.close() }
}
