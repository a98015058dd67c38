/**
 * Bundle signature verification, as OPA does it (v1/bundle/verify.go, reader.go):
 * `.signatures.json` holds exactly one compact JWS; the verification key is chosen by the
 * configured key id, else the JWS `kid`, else the payload's `keyid`; the JWS must verify with
 * that key's configured algorithm; the payload `scope` must equal the configured scope; the
 * signed file list must match the bundle's files exactly, and each file's hash must match
 * (data documents and `.manifest` hashed in canonical form, everything else as raw bytes).
 *
 * Stricter than OPA on purpose: a signed `data.json` (or `.manifest`) with a repeated key, a lone
 * surrogate escape or invalid UTF-8 in a string is refused as PORTCULLIS_BUNDLE_DATA_INVALID,
 * because Go reads those otherwise than the loaders that use the file (canonical-hash.ts,
 * docs/policies.md §5). Those of 1 MiB or more are hashed on a worker thread.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import { startWorker } from '../worker-thread.js'
import { BundleError } from '../errors.js'
import { goCanonicalJson } from '../canonical-json.js'
import { writeOpaCanonicalJson } from './canonical-hash.js'
import { parseDataYaml } from './yaml-data.js'
import type { BundleFiles } from './archive.js'
import { DATA_FILE, decidesOutcome, excludeMatcher, isYamlDataFile } from '../bundle-files.js'
import type { HashJob, HashResult } from './canonical-hash-worker.js'

export { decidesOutcome, excludeMatcher } from '../bundle-files.js'

export const SIGNATURES_FILE = '.signatures.json'

export interface VerificationKey {
  /** PEM public key or certificate; for HS256/384/512 the shared secret. */
  key: string
  /** JWS algorithm this key verifies; OPA's default is RS256. */
  algorithm?: string
  /** Scope the signature must carry when no bundle-wide scope is configured. */
  scope?: string
}

export interface VerificationConfig {
  /** Public keys by key id. */
  keys: Record<string, VerificationKey>
  /** Key id to use regardless of the JWS `kid` (OPA `verification.keyid`). */
  keyId?: string
  /** Scope the signature must carry (OPA `verification.scope`). */
  scope?: string
}

export interface SigningPolicy {
  verification?: VerificationConfig | undefined
  /** Reject bundles without `.signatures.json`. */
  requireSignature?: boolean
  /** Do not verify signatures at all (development and `portcullis eval` only). */
  skipVerification?: boolean
  /**
   * Files left out of verification (OPA `signing.exclude_files`): patterns in Go's
   * `filepath.Match` syntax, matched against the bundle-relative name.
   */
  excludeFiles?: string[]
}

export type SignatureStatus =
  | { state: 'verified', keyId: string, algorithm: string, scope?: string }
  | { state: 'unsigned' }
  | { state: 'not_verified', reason: string }

const HASHES: Record<string, string> = {
  'MD5': 'md5',
  'SHA-1': 'sha1',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
}

/**
 * OPA's IsStructuredDoc: by exact base name, case-sensitive — the data documents (`data.json`,
 * `data.yaml`, and `data.yml`, which OPA 1.22's `opa sign` hashes as structured too: the same
 * names the loader reads as data, bundle-files.ts DATA_FILE), the manifest and the signatures
 * file are hashed after parsing; every other file, including any other `.json` or `.yaml`
 * (fixtures, schemas), over its raw bytes.
 */
export function isStructuredFile (name: string): boolean {
  return DATA_FILE.test(name) || name === '.manifest' || name.endsWith('/.manifest') || name === SIGNATURES_FILE || name.endsWith(`/${SIGNATURES_FILE}`)
}

/**
 * Hash of one bundle file as OPA computes it for signatures. JSON files (and `.manifest`) are
 * canonicalized on their bytes and streamed into the hash (canonical-hash.ts: no JavaScript
 * values, so a 40 MB data.json costs a fraction of a second and little memory); YAML files,
 * rare and small, are parsed into values and written in the `go` dialect. Throws when a
 * structured file cannot be parsed (SyntaxError, or nesting deeper than the data limit).
 */
export function hashBundleFile (name: string, bytes: Buffer, algorithm: string): string {
  const nodeAlg = HASHES[algorithm]
  if (nodeAlg === undefined) throw new Error(`unsupported hashing algorithm ${algorithm}`)
  const h = createHash(nodeAlg)
  if (isYamlDataFile(name)) {
    const value: unknown = parseDataYaml(bytes.toString('utf8'))
    refuseAmbiguousYaml(value)
    h.update(goCanonicalJson(value, { escapeHtml: false }), 'utf8')
  } else if (isStructuredFile(name)) {
    writeOpaCanonicalJson(bytes, (chunk) => { h.update(chunk) })
  } else {
    h.update(bytes)
  }
  return h.digest('hex')
}

/**
 * A signed YAML data file may not hold what the canonical form writes the same as something
 * else — a string with an unpaired surrogate (written as U+FFFD) or a number that is not finite
 * (.inf, .nan: written as null) — as the JSON hash refuses unpaired surrogates
 * (canonical-hash.ts): the loader, which parses the text again, would see a different value
 * than the one the signature covers. Throws SyntaxError (the bundle is refused as invalid data).
 */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function refuseAmbiguousYaml (value: unknown): void {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (typeof v === 'string') {
      if (UNPAIRED_SURROGATE.test(v)) throw new SyntaxError('a signed YAML data file holds a string with an unpaired surrogate')
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new SyntaxError('a signed YAML data file holds a number that is not finite')
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (UNPAIRED_SURROGATE.test(k)) throw new SyntaxError('a signed YAML data file holds a key with an unpaired surrogate')
        stack.push(x)
      }
    }
  }
}

interface SignedFile { name: string, hash: string, algorithm: string }

/** JSON files of at least this many bytes are hashed on a worker thread (hashFilesOffThread). */
export const OFF_THREAD_HASH_BYTES = 1 << 20

/**
 * hashBundleFile for each job on one worker thread, so that the event loop keeps answering
 * decisions while a large signed bundle verifies (canonical-hash-worker.ts). The bytes are
 * copied to the worker (the bundle still needs them here). A file that cannot be parsed comes
 * back as a SyntaxError, anything else (the worker failing) as an Error: both refuse the bundle.
 */
export async function hashFilesOffThread (jobs: HashJob[]): Promise<Array<string | Error>> {
  if (jobs.length === 0) return []
  const worker = startWorker(import.meta.url, 'canonical-hash-worker')
  try {
    const reply = await new Promise<{ results: HashResult[] }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`hashing worker exited with code ${code}`)))
      worker.postMessage({ jobs })
    })
    return reply.results.map((r) => 'hash' in r ? r.hash : r.syntax ? new SyntaxError(r.error) : new Error(r.error))
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    return jobs.map(() => e)
  } finally {
    await worker.terminate()
  }
}

/** Verifies a bundle's signature per `policy`; returns its status or throws a BundleError. */
export async function verifyBundleSignature (files: BundleFiles, source: string, policy: SigningPolicy): Promise<SignatureStatus> {
  const sigFile = files.get(SIGNATURES_FILE)
  if (sigFile === undefined) {
    if (policy.requireSignature === true) {
      throw new BundleError('PORTCULLIS_BUNDLE_UNSIGNED', `${source}: bundle has no ${SIGNATURES_FILE} and signed bundles are required`, { source, file: SIGNATURES_FILE })
    }
    return { state: 'unsigned' }
  }
  if (policy.skipVerification === true) return { state: 'not_verified', reason: 'signature verification is switched off' }
  const verification = policy.verification
  if (verification === undefined || Object.keys(verification.keys).length === 0) {
    throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN',
      `${source}: bundle is signed but no verification keys are configured`, { source, file: SIGNATURES_FILE })
  }

  const invalid = (message: string, extra: Record<string, unknown> = {}, cause?: unknown): BundleError =>
    new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_INVALID', `${source}: ${SIGNATURES_FILE}: ${message}`, { source, file: SIGNATURES_FILE, ...extra }, { cause })

  let doc: unknown
  try {
    doc = JSON.parse(sigFile.toString('utf8'))
  } catch (err) {
    throw invalid('not valid JSON', {}, err)
  }
  const signatures = (doc as { signatures?: unknown } | null)?.signatures
  if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== 'string') {
    throw invalid('must hold exactly one JWT in "signatures"')
  }
  const token = signatures[0]
  // jose is loaded with the first signed bundle, not at every start
  let jose: typeof import('jose')
  try {
    jose = await import('jose')
  } catch (err) {
    // a broken install: the bundle is refused (never activated unverified), named for what failed
    throw new BundleError('PORTCULLIS_INTERNAL', `${source}: the signature verifier (jose) cannot be loaded: ${(err as Error).message}`, { source, file: SIGNATURES_FILE }, { cause: err })
  }
  const { compactVerify, decodeProtectedHeader } = jose

  let header: Record<string, unknown>
  let claimed: Record<string, unknown>
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>
    const payloadPart = token.split('.')[1] ?? ''
    claimed = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>
  } catch (err) {
    throw invalid('signature is not a compact JWS with a JSON payload', {}, err)
  }
  if (claimed === null || typeof claimed !== 'object' || Array.isArray(claimed)) throw invalid('signature payload is not a JSON object')
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw invalid('signature header is not a JSON object')

  const keyId = nonEmpty(verification.keyId) ?? nonEmpty(header.kid) ?? nonEmpty(claimed.keyid)
  if (keyId === undefined) {
    throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN', `${source}: signature names no key id and none is configured`, { source, file: SIGNATURES_FILE })
  }
  const keyConfig = Object.hasOwn(verification.keys, keyId) ? verification.keys[keyId] : undefined
  if (keyConfig === undefined) {
    throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN', `${source}: signature key id ${JSON.stringify(keyId)} is not a configured verification key`, { source, file: SIGNATURES_FILE, keyId })
  }
  const algorithm = keyConfig.algorithm ?? 'RS256'

  let payloadBytes: Uint8Array
  try {
    const result = await compactVerify(token, importVerificationKey(keyConfig.key, algorithm), { algorithms: [algorithm] })
    payloadBytes = result.payload
  } catch (err) {
    throw invalid(`signature does not verify with key ${JSON.stringify(keyId)} (${algorithm}): ${(err as Error).message}`, { keyId, algorithm }, err)
  }
  const payload = JSON.parse(Buffer.from(payloadBytes).toString('utf8')) as Record<string, unknown> | null
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw invalid('signed payload is not a JSON object')

  const wantScope = nonEmpty(verification.scope) ?? keyConfig.scope ?? ''
  const gotScope = typeof payload.scope === 'string' ? payload.scope : ''
  if (gotScope !== wantScope) {
    throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_SCOPE_MISMATCH',
      `${source}: signature scope ${JSON.stringify(gotScope)} does not match the required scope ${JSON.stringify(wantScope)}`, { source, file: SIGNATURES_FILE, scope: gotScope, expected: wantScope })
  }

  if (!Array.isArray(payload.files)) throw invalid('signed payload has no "files" list')
  const signed = new Map<string, SignedFile>()
  for (const f of payload.files as unknown[]) {
    const file = f as Partial<SignedFile> | null
    if (file === null || typeof file !== 'object' || typeof file.name !== 'string' || typeof file.hash !== 'string' || typeof file.algorithm !== 'string') {
      throw invalid('signed payload has a malformed "files" entry')
    }
    signed.set(file.name.replace(/^\/+/, ''), file as SignedFile)
  }

  const excluded = excludeMatcher(policy.excludeFiles ?? [])
  // Large JSON files are hashed first, off the main thread; everything else below, in order.
  const jobs: HashJob[] = []
  for (const [name, bytes] of files) {
    const entry = signed.get(name)
    if (bytes.length >= OFF_THREAD_HASH_BYTES && isStructuredFile(name) && !isYamlDataFile(name) && name !== SIGNATURES_FILE &&
      !excluded(name) && entry !== undefined && HASHES[entry.algorithm] !== undefined) jobs.push({ name, bytes, algorithm: entry.algorithm })
  }
  const offThread = new Map<string, string | Error>()
  for (const [k, r] of (await hashFilesOffThread(jobs)).entries()) offThread.set((jobs[k] as HashJob).name, r)

  for (const [name, bytes] of files) {
    if (name === SIGNATURES_FILE) continue
    if (excluded(name)) {
      // An excluded file is not covered by the signature, so it must not be able to change a
      // decision: otherwise an old `.signatures.json` could be replayed over attacker policy.
      if (decidesOutcome(name)) throw excludedButUsed(source, name)
      signed.delete(name)
      continue
    }
    const entry = signed.get(name)
    if (entry === undefined) {
      throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH', `${source}: file ${name} is not included in the bundle signature`, { source, file: name })
    }
    if (HASHES[entry.algorithm] === undefined) throw invalid(`unsupported hashing algorithm ${JSON.stringify(entry.algorithm)} for ${name}`, { file: name })
    let actual: string
    try {
      const done = offThread.get(name)
      if (done instanceof Error) throw done
      actual = done ?? hashBundleFile(name, bytes, entry.algorithm)
    } catch (err) {
      throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${name} cannot be parsed for hashing (${(err as Error).message})`, { source, file: name }, { cause: err })
    }
    if (actual !== entry.hash.toLowerCase()) {
      throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH', `${source}: ${name}: digest mismatch (signed ${entry.hash}, actual ${actual})`, { source, file: name })
    }
    signed.delete(name)
  }
  if (signed.size > 0) {
    const missing = [...signed.keys()].sort()
    throw new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH',
      `${source}: file(s) ${missing.join(', ')} are in the bundle signature but not in the bundle`, { source, files: missing })
  }
  const status: SignatureStatus = { state: 'verified', keyId, algorithm }
  if (gotScope !== '') status.scope = gotScope
  return status
}

/** The error for a file that `exclude_files` leaves unsigned although the bundle uses it. */
export function excludedButUsed (source: string, name: string): BundleError {
  return new BundleError('PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH',
    `${source}: file ${name} is excluded from signature verification (signing.exclude_files) but decides the outcome; only files Portcullis does not read may be excluded`,
    { source, file: name, rule: 'exclude_files' })
}

function nonEmpty (v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/** Turns a configured key into what jose verifies with: a KeyObject, or secret bytes for HS*. */
export function importVerificationKey (key: string, algorithm: string): KeyObject | Uint8Array {
  if (algorithm.startsWith('HS')) return new TextEncoder().encode(key)
  // createPublicKey accepts SPKI ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") and certificates;
  // a private key PEM yields its public half.
  return createPublicKey(key)
}
