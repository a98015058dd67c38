/**
 * Reads a bundle's files from a gzip tar archive or an unpacked directory into memory,
 * rejecting hostile input whole: nothing is written to disk and nothing is returned unless
 * every member passed. Member names are normalized to bundle-relative form without the
 * leading slash `opa build` writes (`/data.json` -> `data.json`).
 */
import { createGunzip } from 'node:zlib'
import { Readable } from 'node:stream'
import { lstat, readdir, readFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import * as tarStream from 'tar-stream'
import { BundleError } from '../errors.js'

export interface ArchiveLimits {
  /** Largest total size of all decompressed files, in bytes (gzip-bomb guard). */
  maxBytes: number
  /** Largest number of members. */
  maxFiles: number
  /**
   * Largest decompressed size of any one file, in bytes (OPA `size_limit_bytes`, which the
   * bundle reader applies per file); absent: only the total `maxBytes` applies.
   */
  maxFileBytes?: number
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxBytes: 256 * 1024 * 1024,
  maxFiles: 10_000,
}

/** Bundle-relative file name -> contents, in archive order. */
export type BundleFiles = Map<string, Buffer>

/**
 * Normalizes a member name to bundle-relative form, or throws PORTCULLIS_BUNDLE_UNSAFE_PATH.
 * The one leading `/` (or `./`) that bundle writers emit marks the bundle root and is accepted;
 * anything else that could point elsewhere is rejected: `..` segments, a second leading slash,
 * drive letters, backslashes, NUL, empty or `.` segments.
 */
export function normalizeMemberName (raw: string, source: string): string {
  let name = raw
  if (name.startsWith('./')) name = name.slice(2)
  else if (name.startsWith('/')) name = name.slice(1)
  if (name.endsWith('/')) name = name.slice(0, -1)
  const unsafe = (rule: string): never => {
    throw new BundleError('PORTCULLIS_BUNDLE_UNSAFE_PATH', `${source}: member ${JSON.stringify(raw)} ${rule}`, { file: raw, source, rule })
  }
  if (name === '') unsafe('has an empty name')
  if (name.includes('\0')) unsafe('contains a NUL byte')
  if (name.includes('\\')) unsafe('contains a backslash')
  if (name.startsWith('/')) unsafe('is an absolute path')
  if (/^[A-Za-z]:/.test(name)) unsafe('is an absolute (drive-letter) path')
  for (const segment of name.split('/')) {
    if (segment === '..') unsafe('escapes the bundle root with ".."')
    if (segment === '' || segment === '.') unsafe('has an empty or "." path segment')
  }
  return name
}

/** Reads a `.tar.gz` bundle from bytes. */
export async function readTarGz (bytes: Buffer, source: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<BundleFiles> {
  const files: BundleFiles = new Map()
  const extract = tarStream.extract()
  // 128 KiB output chunks: an eighth of the callbacks and buffers of the 16 KiB default for a
  // large bundle (less garbage while decisions are being answered), each still well under a ms
  const gunzip = createGunzip({ chunkSize: 128 * 1024 })
  let total = 0

  // Decompressed bytes are counted as they stream out of gunzip, so a bomb is stopped
  // after `maxBytes`, never inflated in full.
  gunzip.on('data', (chunk: Buffer) => {
    total += chunk.length
    if (total > limits.maxBytes) {
      const err = new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE',
        `${source}: decompressed size exceeds the limit of ${limits.maxBytes} bytes`, { source, limit: limits.maxBytes })
      gunzip.destroy(err)
    }
  })

  const done = new Promise<void>((resolve, reject) => {
    let settled = false
    const fail = (err: unknown): void => {
      if (settled) return
      settled = true
      extract.destroy()
      gunzip.destroy()
      reject(toArchiveError(err, source))
    }
    gunzip.on('error', fail)
    extract.on('error', fail)
    extract.on('finish', () => {
      if (settled) return
      settled = true
      resolve()
    })
    extract.on('entry', (header, stream, next) => {
      try {
        // The archive's own root directory entry (`tar -C dir .` writes "./").
        if (header.type === 'directory' && ['.', './', '/'].includes(header.name)) {
          stream.resume()
          stream.on('end', next)
          return
        }
        const name = normalizeMemberName(header.name, source)
        switch (header.type) {
          case 'directory':
            stream.resume()
            stream.on('end', next)
            return
          case 'file':
          case 'contiguous-file':
            break
          case 'symlink':
          case 'link':
            throw new BundleError('PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED',
              `${source}: member ${JSON.stringify(header.name)} is a ${header.type === 'link' ? 'hard link' : 'symbolic link'}; bundles may contain regular files only`,
              { source, file: header.name, type: header.type })
          default:
            throw new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID',
              `${source}: member ${JSON.stringify(header.name)} has unsupported type ${String(header.type)}; bundles may contain regular files only`,
              { source, file: header.name, type: header.type })
        }
        if (files.has(name)) {
          throw new BundleError('PORTCULLIS_BUNDLE_DUPLICATE_FILE', `${source}: member ${JSON.stringify(name)} appears more than once`, { source, file: name })
        }
        if (files.size >= limits.maxFiles) {
          throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${source}: more than ${limits.maxFiles} members`, { source, limit: limits.maxFiles })
        }
        if (limits.maxFileBytes !== undefined && header.size !== undefined && header.size > limits.maxFileBytes) {
          throw fileTooLarge(source, name, limits.maxFileBytes)
        }
        stream.on('error', fail)
        // A member whose size the header gives (and the limit allows) is copied into its own
        // buffer chunk by chunk as it streams: one Buffer.concat of a 40 MB data.json at the end
        // held the event loop for tens of milliseconds while decisions waited (issue 12, hot
        // reload). tar-stream delivers exactly `size` bytes or fails the archive; a short or
        // long member is refused here as well.
        const size = header.size ?? 0
        if (size > 0 && total + size <= limits.maxBytes) {
          const body = Buffer.allocUnsafe(size)
          let at = 0
          stream.on('data', (c: unknown) => {
            const chunk = c as Buffer
            if (at + chunk.length > size) { fail(sizeMismatch(source, header.name)); return }
            chunk.copy(body, at)
            at += chunk.length
          })
          stream.on('end', () => {
            if (at !== size) { fail(sizeMismatch(source, header.name)); return }
            files.set(name, body)
            next()
          })
          return
        }
        const chunks: Buffer[] = []
        stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
        stream.on('end', () => {
          files.set(name, Buffer.concat(chunks))
          next()
        })
      } catch (err) {
        stream.resume()
        fail(err)
      }
    })
  })

  Readable.from([bytes]).on('error', (err) => gunzip.destroy(err)).pipe(gunzip).pipe(extract)
  await done
  return files
}

function sizeMismatch (source: string, member: string): BundleError {
  return new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID', `${source}: member ${JSON.stringify(member)} does not hold the number of bytes its header gives`, { source, file: member })
}

function fileTooLarge (source: string, name: string, limit: number): BundleError {
  return new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${source}: file ${name} is larger than the per-file limit of ${limit} bytes (size_limit_bytes)`, { source, file: name, limit })
}

function toArchiveError (err: unknown, source: string): BundleError {
  if (err instanceof BundleError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID', `${source}: not a valid gzip tar archive (${message})`, { source }, { cause: err })
}

/** Reads an unpacked bundle directory. Symbolic links are rejected; only regular files are read. */
export async function readBundleDir (dir: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<BundleFiles> {
  const files: BundleFiles = new Map()
  let total = 0
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true })
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const entry of entries) {
      const full = join(current, entry.name)
      const rel = relative(dir, full).split(sep).join('/')
      const st = await lstat(full)
      if (st.isSymbolicLink()) {
        throw new BundleError('PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED', `${dir}: ${rel} is a symbolic link; bundles may contain regular files only`, { source: dir, file: rel })
      }
      if (st.isDirectory()) {
        await walk(full)
        continue
      }
      if (!st.isFile()) {
        throw new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID', `${dir}: ${rel} is not a regular file`, { source: dir, file: rel })
      }
      const name = normalizeMemberName(rel, dir)
      if (limits.maxFileBytes !== undefined && st.size > limits.maxFileBytes) throw fileTooLarge(dir, name, limits.maxFileBytes)
      total += st.size
      if (total > limits.maxBytes) {
        throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${dir}: total size exceeds the limit of ${limits.maxBytes} bytes`, { source: dir, limit: limits.maxBytes })
      }
      if (files.size >= limits.maxFiles) {
        throw new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE', `${dir}: more than ${limits.maxFiles} files`, { source: dir, limit: limits.maxFiles })
      }
      files.set(name, await readFile(full))
    }
  }
  try {
    await walk(dir)
  } catch (err) {
    if (err instanceof BundleError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new BundleError('PORTCULLIS_BUNDLE_NOT_FOUND', `${dir}: bundle directory not found`, { source: dir }, { cause: err })
    throw new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID', `${dir}: cannot read bundle directory (${(err as Error).message})`, { source: dir }, { cause: err })
  }
  return files
}
