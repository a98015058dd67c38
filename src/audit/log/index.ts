/**
 * The durable, tamper-evident audit log (docs/audit.md): writer, reader, tree, checkpoints, verify.
 */
export type { AuditSink, Durability } from './contract.js'
export { AuditLog, auditLogDefaults, loadCheckpointKey, type AuditLogOptions } from './writer.js'
export { AuditDirReader, type StreamReader } from './reader.js'
export { formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint, generateCheckpointKey, keyHash, type Checkpoint } from './checkpoint.js'
export {
  leafHash, nodeHash, rootFromLeaves, treeRoot, inclusionProof, consistencyProof, verifyInclusion, verifyConsistency,
  storedHashIndex, storedHashCount, treeSizeForStoredCount, CompactRange, EMPTY_ROOT, HASH_SIZE, type HashReader,
} from './tree.js'
export { verifyAuditDir, type VerifyReport, type StreamReport, type VerifyProblem, type VerifyProblemCode } from './verify.js'
export { recordSeq, recordText, segmentName, type RetentionEntry } from './layout.js'
