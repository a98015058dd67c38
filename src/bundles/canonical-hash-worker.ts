/**
 * Worker-thread entry for verify.ts hashFilesOffThread: hashes the JSON files of a signed bundle
 * that are 1 MiB or more (OPA's canonical form, canonical-hash.ts) and sends back each hash, or
 * why the file cannot be hashed. One worker per bundle verification; the parent terminates it
 * after the reply.
 *
 * Why a thread: hashing is two synchronous passes over the bytes (tens of megabytes take a
 * fraction of a second; hostile files up to the archive limits, seconds), and the decision path
 * must keep answering on the main thread while a new signed bundle verifies.
 */
import { parentPort } from 'node:worker_threads'
import { hashBundleFile } from './verify.js'

export interface HashJob { name: string, bytes: Uint8Array, algorithm: string }
export type HashResult = { hash: string } | { error: string, syntax: boolean }

parentPort?.once('message', (msg: { jobs: HashJob[] }) => {
  const results: HashResult[] = msg.jobs.map((job) => {
    try {
      const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength)
      return { hash: hashBundleFile(job.name, bytes, job.algorithm) }
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err), syntax: err instanceof SyntaxError }
    }
  })
  parentPort?.postMessage({ results })
})
