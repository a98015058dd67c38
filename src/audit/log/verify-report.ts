/**
 * What `verifyAuditDir` (verify.ts) reports and takes: the problem codes (stable, docs/audit.md
 * "Verify"), the per-stream and whole-directory reports that `portcullis audit verify`, the
 * audit routes and the console print, and the verifier's options.
 */
import { maxUnsealedTail } from './contract.js'

export type VerifyProblemCode =
  | 'EVENT_MODIFIED' // a record's leaf hash differs from the stored leaf hash at its seq
  | 'EVENT_DELETED' // a seq is missing inside a segment
  | 'EVENT_INSERTED' // a duplicate or earlier seq, or a segment overlapping the previous one
  | 'EVENT_REORDERED' // seq i+1 stands before seq i
  | 'SEGMENT_MISSING' // a seq range between segments that retention.log does not explain
  | 'RETENTION_INVALID' // a malformed retention.log line, entries that are not one run from seq 0, or leaf hashes that differ from the hashes file
  | 'RETENTION_UNAUTHENTICATED' // records removed beyond what the latest signed checkpoint's `retained` line covers
  | 'TAIL_TRUNCATED' // fewer records than the hashes file or the latest checkpoint covers
  | 'HASHES_TAMPERED' // a stored interior hash differs from its recomputation
  | 'RECORD_MALFORMED' // a line that does not start with {"seq":N
  | 'CHECKPOINT_MALFORMED'
  | 'CHECKPOINT_SIGNATURE_INVALID'
  | 'CHECKPOINT_ROOT_MISMATCH' // a checkpoint's root differs from the recomputed root of its size
  | 'CHECKPOINTS_INCONSISTENT' // a later checkpoint does not extend an earlier one
  | 'CHECKPOINT_ORIGIN_MISMATCH' // a checkpoint names another log (origin) than the stream's other checkpoints, or an origin not ending in /<stream> (checkpoints of another stream)
  | 'ORIGIN_UNEXPECTED' // the stream's checkpoints name another origin than the auditor expects (--origin): another replica's log
  | 'KEPT_CHECKPOINT_UNMATCHED' // a kept checkpoint (--checkpoint) whose origin no stream's checkpoints carry: the stream was deleted, or replaced by another log
  | 'TAIL_UNSEALED' // records but no checkpoint, or more records past the latest checkpoint than allowed (maxUnsealed)
  | 'KEPT_CHECKPOINT_INCONSISTENT' // a checkpoint the auditor kept (--checkpoint) is not signed, or the log is not an extension of it
  | 'STREAM_UNREADABLE'

export interface VerifyProblem {
  code: VerifyProblemCode
  message: string
  seq?: number
  segment?: string
  /** Byte offset of the record in its segment. */
  offset?: number
  /** 0-based index of the checkpoint in the stream's checkpoints file. */
  checkpoint?: number
  /** Index of a stored hash in the hashes file (HASHES_TAMPERED). */
  hashIndex?: number
}

export interface StreamReport {
  stream: string
  /** The origin the stream's checkpoints sign (`<prefix>/<stream>`); absent without checkpoints. */
  origin?: string
  /** Tree size: records proven by the verified tree (present or removed by retention). */
  events: number
  /** Records read from segments. */
  records: number
  segments: number
  checkpoints: number
  /** Whose key checked the checkpoint signatures. */
  signatures: 'pinned' | 'directory' | 'unverified'
  retained: Array<{ first_seq: number, last_seq: number, segment: string, removed_at: string }>
  /** Whole records past the hashed tree (a live writer, or a crash the writer repairs on open). */
  unhashedRecords: number
  problem?: VerifyProblem
}

export interface VerifyReport {
  ok: boolean
  /** `keys`: how many were pinned, when more than one (a log signed by several keys, after a rotation). */
  key: { source: 'pinned' | 'directory' | 'none', file?: string, keys?: number }
  streams: StreamReport[]
  /** Problems of the directory as a whole (a kept checkpoint of no stream here); `stream` unset. */
  problems: VerifyProblem[]
  warnings: string[]
}

export interface VerifyOptions {
  /**
   * The auditor's pinned checkpoint public key (PEM), or several (after a key rotation): each
   * checkpoint must carry a valid signature by one of them.
   */
  publicKeyPem?: string | string[]
  /**
   * Most records allowed past the latest checkpoint (not yet sealed by a signature); more, or
   * records with no checkpoint at all, is TAIL_UNSEALED. Default DEFAULT_MAX_UNSEALED.
   */
  maxUnsealed?: number
  /** Accept any unsealed tail (a live log before its first checkpoint). */
  allowUnsealedTail?: boolean
  /**
   * Checkpoint notes the auditor kept earlier: each is matched to the stream whose checkpoints
   * name its exact origin, must verify, and the log must extend it; one that matches no stream
   * is KEPT_CHECKPOINT_UNMATCHED.
   */
  keptCheckpoints?: string[]
  /**
   * The origin the auditor expects (`--origin`): every stream's checkpoints must name exactly
   * this origin, or one that starts with it followed by `/` (a prefix such as
   * `portcullis/portcullis-0` for all of one replica's streams); otherwise ORIGIN_UNEXPECTED.
   */
  expectedOrigin?: string
  /** Called as records are checked (about every 1000, and once per stream at its end): records checked so far, all streams. */
  onProgress?: (recordsChecked: number) => void
}

/**
 * The default of `maxUnsealed`: what a crash can leave unsealed with audit.checkpoint.every_events'
 * default (10000) — the same definition the writer refuses to reseal beyond (contract.ts).
 */
export const DEFAULT_MAX_UNSEALED = maxUnsealedTail(10_000)
