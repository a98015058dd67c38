/**
 * Loads one bundle from a `.tar.gz` file or an unpacked directory: read (with archive-safety
 * limits) -> verify the signature -> parse the manifest -> parse and place data files ->
 * check OPA's bundle rules. The result is a plain, immutable description; turning it into a
 * running policy is the engine's job (src/policy/engine.ts).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { createHash } from 'node:crypto'
import { parseDataYaml } from './yaml-data.js'
import { BundleError } from '../errors.js'
import { ExactNumber } from '../canonical-json.js'
import { parseExact } from '../policy/builtins/exact-json.js'
import { DEFAULT_ARCHIVE_LIMITS, readBundleDir, readTarGz, type ArchiveLimits, type BundleFiles } from './archive.js'
import { dataMember, isAncestorOfSegments, rootContains, rootOwnsSegments, rootSegments, setDataMember, type PolicyBundle } from '../policy/bundle.js'
import { parseManifest, type Manifest } from './manifest.js'
import { excludeMatcher, excludedButUsed, verifyBundleSignature, type SignatureStatus, type SigningPolicy } from './verify.js'
import { DATA_FILE } from '../bundle-files.js'
import { MAX_DATA_DEPTH } from '../policy/data-layout.js'

/** A loaded, verified and validated bundle: what the engine needs (PolicyBundle) and what status and inspection report. */
export interface Bundle extends PolicyBundle {
  manifest: Manifest
  /** Rego source files carried in the bundle (informational: Portcullis evaluates the wasm). */
  regoFiles: string[]
  /** Package paths (`a/b`) declared by the Rego files, where they could be parsed. */
  packages: string[]
  signature: SignatureStatus
  /** SHA-256 over the bundle's file names and contents, for status and change detection. */
  digest: string
}

export interface LoadOptions extends SigningPolicy {
  limits?: Partial<ArchiveLimits>
  /** Bundle name; defaults to the source's base name. */
  name?: string
  /**
   * JSON data files of at least this many bytes are not parsed into JavaScript objects here:
   * their exact bytes are handed to the engine, which parses them straight into wasm memory
   * and checks roots and conflicts there (src/policy/data-loader.ts). Default 1 MiB.
   */
  largeDataBytes?: number
}

export const DEFAULT_LARGE_DATA_BYTES = 1 << 20
const DIGEST_SLICE = 1 << 20

export function bundleNameOf (source: string): string {
  return basename(source).replace(/\.tar\.gz$|\.tgz$/, '')
}

/** Reads a bundle's files from a path: a `.tar.gz`/`.tgz` file or a directory. */
export async function readBundleFiles (source: string, limits: ArchiveLimits): Promise<BundleFiles> {
  let st
  try {
    st = await stat(source)
  } catch (err) {
    throw new BundleError('PORTCULLIS_BUNDLE_NOT_FOUND', `${source}: bundle not found`, { source }, { cause: err })
  }
  if (st.isDirectory()) return readBundleDir(source, limits)
  if (st.size > limits.maxBytes) {
    throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${source}: archive is larger than the limit of ${limits.maxBytes} bytes`, { source, limit: limits.maxBytes })
  }
  return readTarGz(await readFile(source), source, limits)
}

/** Loads, verifies and validates a bundle. Throws a BundleError naming the file and the rule. */
export async function loadBundle (source: string, opts: LoadOptions = {}): Promise<Bundle> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits }
  const files = await readBundleFiles(source, limits)
  return bundleFromFiles(files, source, opts)
}

/**
 * Loads a bundle from the bytes of a `.tar.gz` archive (a download, a persisted download):
 * the same limits, verification and rules as a file. `source` names it in errors and status.
 */
export async function loadBundleArchive (bytes: Buffer, source: string, opts: LoadOptions = {}): Promise<Bundle> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits }
  if (bytes.length > limits.maxBytes) {
    throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${source}: archive is larger than the limit of ${limits.maxBytes} bytes`, { source, limit: limits.maxBytes })
  }
  return bundleFromFiles(await readTarGz(bytes, source, limits), source, opts)
}

export async function bundleFromFiles (files: BundleFiles, source: string, opts: LoadOptions = {}): Promise<Bundle> {
  // Signature first: nothing of an unverified bundle is interpreted beyond what hashing needs.
  const signature = await verifyBundleSignature(files, source, opts)
  const manifest = parseManifest(files.get('.manifest'), source)
  const excluded = excludeMatcher(opts.excludeFiles ?? [])

  const data: Record<string, unknown> = {}
  const largeData: NonNullable<PolicyBundle['largeData']> = []
  const largeDataBytes = opts.largeDataBytes ?? DEFAULT_LARGE_DATA_BYTES
  const wasmModules = new Map<string, Buffer>()
  const regoFiles: string[] = []
  const packages = new Set<string>()

  for (const [name, bytes] of files) {
    const m = DATA_FILE.exec(name)
    if (m !== null) {
      const dir = name.slice(0, m.index)
      const path = dir === '' ? [] : dir.split('/')
      if (name.endsWith('.json') && bytes.length >= largeDataBytes) {
        largeData.push({ path, file: name, json: bytes })
        continue
      }
      const value = parseDataFile(name, bytes, source, path.length)
      if (path.length === 0 && !isPlainObject(value)) {
        throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${name}: the root data document must be an object`, { source, file: name })
      }
      checkDataInRoots(value, path, manifest.roots, source, name)
      mergeAt(data, path, value, source, name)
    } else if (name.endsWith('.rego')) {
      regoFiles.push(name)
      const pkg = regoPackagePath(bytes.toString('utf8'))
      if (pkg !== undefined) {
        if (!manifest.roots.some((r) => rootContains(r, pkg))) {
          throw new BundleError('PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS',
            `${source}: ${name} declares package ${pkg.replaceAll('/', '.')} which is outside the bundle roots ${JSON.stringify(manifest.roots)}`,
            { source, file: name, path: pkg, roots: manifest.roots })
        }
        packages.add(pkg)
      }
    }
  }

  for (const w of manifest.wasm) {
    const bytes = files.get(w.module)
    if (bytes === undefined) {
      throw new BundleError('PORTCULLIS_BUNDLE_WASM_MISSING',
        `${source}: .manifest names wasm module ${JSON.stringify(w.module)} for entrypoint ${JSON.stringify(w.entrypoint)} but the bundle has no such file`,
        { source, file: w.module, entrypoint: w.entrypoint })
    }
    // A module named by the manifest is used whatever its file name; it must be signed.
    if (signature.state === 'verified' && excluded(w.module)) throw excludedButUsed(source, w.module)
    wasmModules.set(w.module, bytes)
  }
  // OPA refuses data that defines a value where a rule is ("conflicting rule for data path …"):
  // the entrypoints are the rules known here (a large data file's content is not read yet).
  for (const w of manifest.wasm) {
    const at = dataAtRule(data, w.entrypoint)
    if (at !== undefined) {
      throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: data defines ${JSON.stringify(at)}, where entrypoint ${JSON.stringify(w.entrypoint)} is a rule (conflicting rule for data path ${w.entrypoint})`, { source, path: at, entrypoint: w.entrypoint })
    }
  }
  if (manifest.wasm.length === 0 && regoFiles.length > 0) {
    throw new BundleError('PORTCULLIS_BUNDLE_NO_WASM',
      `${source}: bundle has Rego policies but no wasm modules; build it with "opa build -t wasm -e <entrypoint>"`, { source, files: regoFiles })
  }

  const digest = createHash('sha256')
  for (const name of [...files.keys()].sort()) {
    const bytes = files.get(name) as Buffer
    digest.update(name).update('\0')
    // Tens of megabytes are hashed in slices between event-loop turns, so that a bundle
    // activated under load does not hold up the decisions being answered meanwhile.
    for (let at = 0; at < bytes.length; at += DIGEST_SLICE) {
      digest.update(bytes.subarray(at, at + DIGEST_SLICE))
      if (bytes.length > DIGEST_SLICE) await new Promise((resolve) => setImmediate(resolve))
    }
    digest.update('\0')
  }

  return {
    name: opts.name ?? bundleNameOf(source),
    source,
    manifest,
    data,
    ...(largeData.length > 0 ? { largeData } : {}),
    wasmModules,
    regoFiles,
    packages: [...packages].sort(),
    signature,
    digest: digest.digest('hex'),
  }
}

/**
 * The data path that collides with the rule at `entrypoint` (slash-separated), if any: a value
 * at the rule's path or below it, or a non-object value at a path above it.
 */
function dataAtRule (data: Record<string, unknown>, entrypoint: string): string | undefined {
  let v: unknown = data
  const segments = entrypoint.split('/').filter((x) => x !== '')
  for (const [i, seg] of segments.entries()) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof ExactNumber) return segments.slice(0, i).join('/')
    v = dataMember(v as Record<string, unknown>, seg)
    if (v === undefined) return undefined
  }
  return segments.join('/')
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Whether a parsed data value nests containers deeper than `limit` (iterative: any depth is safe to ask). */
function nestsDeeper (value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number]
    if (v === null || typeof v !== 'object' || v instanceof ExactNumber) continue
    if (depth > limit) return true
    for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1])
  }
  return false
}

/** A data file's value; `below` is how many directories down it sits (its depth counts from data's root). */
function parseDataFile (name: string, bytes: Buffer, source: string, below: number): unknown {
  // Invalid UTF-8 is refused at every size (large files are refused by the data loader; the
  // signed-bundle hash refuses it too), never silently read as U+FFFD.
  let text: string
  try { text = UTF8.decode(bytes) } catch {
    throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${name} is not valid UTF-8`, { source, file: name })
  }
  const value = parseDataText(name, text, source)
  // the same bound as large data (data-layout.ts), counted from data's root as every later
  // walk counts it (the activation serialises the merged tree): deeper values would overflow
  // the stack of whatever walks them, as a wrong error or worse
  const limit = MAX_DATA_DEPTH - below
  if (nestsDeeper(value, limit)) throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${name} nests deeper than ${limit} levels (${MAX_DATA_DEPTH} from data's root, the file ${below} directories down)`, { source, file: name, limit })
  return value
}

function parseDataText (name: string, text: string, source: string): unknown {
  try {
    // numbers a double cannot hold, or written as floats (100.0, 1e3), keep their text as OPA keeps them
    if (name.endsWith('.json')) return parseExact(text)
    // YAML as OPA reads it: one document, go-yaml's numbers, bounded alias expansion (yaml-data.ts)
    return parseDataYaml(text)
  } catch (err) {
    throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${name} is not valid ${name.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message})`, { source, file: name }, { cause: err })
  }
}

/**
 * OPA: every data value must sit under one of the bundle's roots. Walk down from the file's
 * place; objects above a root are descended into, anything else above or beside the roots is rejected.
 */
function checkDataInRoots (value: unknown, path: string[], roots: string[], source: string, file: string): void {
  const p = path.join('/')
  // segment by segment: a key holding `/` ({"a": {"b/c": 1}}) is not the path a/b/c
  const rs = roots.map(rootSegments)
  if (rs.some((r) => rootOwnsSegments(r, path))) return
  if (rs.some((r) => isAncestorOfSegments(path, r)) && isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkDataInRoots(v, [...path, k], roots, source, file)
    return
  }
  throw new BundleError('PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS',
    `${source}: ${file} puts data at /${p} which is outside the bundle roots ${JSON.stringify(roots)}`, { source, file, path: p, roots })
}

/*
 * Merging writes only into objects it owns: the root and shallow copies it made on the way.
 * A parsed file's objects are placed by reference and copied before anything is merged into
 * them, because one object can stand at several places: a YAML anchor and its aliases parse to
 * one shared object, and merging another file into it in place would change every alias — and
 * which one changed would depend on the archive's member order, which no signature covers.
 */
function ownedCopy (node: Record<string, unknown>, key: string, existing: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...existing } // spread defines own keys, `__proto__` included
  setDataMember(node, key, copy)
  return copy
}

function mergeAt (target: Record<string, unknown>, path: string[], value: unknown, source: string, file: string): void {
  if (path.length === 0) {
    deepMerge(target, value as Record<string, unknown>, [], source, file)
    return
  }
  let node = target
  for (const [i, key] of path.entries()) {
    const last = i === path.length - 1
    const existing = dataMember(node, key)
    if (last) {
      if (existing === undefined) setDataMember(node, key, value)
      else if (isPlainObject(existing) && isPlainObject(value)) deepMerge(ownedCopy(node, key, existing), value, path, source, file)
      else conflict(path, source, file)
      return
    }
    if (existing === undefined) {
      const child: Record<string, unknown> = {}
      setDataMember(node, key, child)
      node = child
    } else if (isPlainObject(existing)) node = ownedCopy(node, key, existing)
    else conflict(path.slice(0, i + 1), source, file)
  }
}

function deepMerge (target: Record<string, unknown>, src: Record<string, unknown>, at: string[], source: string, file: string): void {
  for (const [k, v] of Object.entries(src)) {
    const existing = dataMember(target, k)
    if (existing === undefined) setDataMember(target, k, v)
    else if (isPlainObject(existing) && isPlainObject(v)) deepMerge(ownedCopy(target, k, existing), v, [...at, k], source, file)
    else conflict([...at, k], source, file)
  }
}

function conflict (path: string[], source: string, file: string): never {
  throw new BundleError('PORTCULLIS_BUNDLE_DATA_INVALID', `${source}: ${file}: data at /${path.join('/')} conflicts with another data file`, { source, file, path: path.join('/') })
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof ExactNumber)
}

/** The package path (`a/b/c`) of a Rego module: handles `package a.b` and `package a["b-c"]`. */
export function regoPackagePath (text: string): string | undefined {
  const m = /^\s*package\s+([^\s#]+)/m.exec(text)
  if (m === null) return undefined
  const segments: string[] = []
  const ref = m[1] as string
  const re = /(?:^|\.)([A-Za-z_][A-Za-z0-9_]*)|\[\s*"((?:[^"\\]|\\.)*)"\s*\]/gy
  let match: RegExpExecArray | null
  let consumed = 0
  while ((match = re.exec(ref)) !== null) {
    segments.push(match[1] ?? JSON.parse(`"${match[2] ?? ''}"`) as string)
    consumed = re.lastIndex
  }
  if (consumed !== ref.length || segments.length === 0) return undefined
  return segments.join('/')
}
