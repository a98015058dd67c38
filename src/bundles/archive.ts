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

/** Decodes a numeric header field as tar-stream does (octal, leading spaces and NULs; base-256 when the top bit is set). */
function headerNumber (field: Buffer): number {
  if (((field[0] as number) & 0x80) !== 0) {
    if (field[0] !== 0x80) return NaN // negative (0xFF) or malformed
    let sum = 0
    for (let i = 1; i < field.length; i++) sum = sum * 256 + (field[i] as number)
    return sum
  }
  let at = 0
  while (at < field.length && field[at] === 32) at++
  let end = field.indexOf(32, at)
  if (end < 0) end = field.length
  while (at < end && field[at] === 0) at++
  if (end === at) return 0
  return Number.parseInt(field.subarray(at, end).toString('latin1'), 8)
}

/** The `size` record of a PAX extended header, read as tar-stream's decodePax reads records. */
function paxSize (buf: Buffer): string | undefined {
  let size: string | undefined
  let rest = buf
  while (rest.length > 0) {
    let i = 0
    while (i < rest.length && rest[i] !== 32) i++
    const len = Number.parseInt(rest.subarray(0, i).toString(), 10)
    if (!(len > 0)) break
    const record = rest.subarray(i + 1, len - 1).toString()
    const eq = record.indexOf('=')
    if (eq < 0) break
    if (record.slice(0, eq) === 'size') size = record.slice(eq + 1)
    rest = rest.subarray(len)
  }
  return size
}

/**
 * Follows the decompressed tar block by block, finding header positions as tar-stream does, to
 * refuse anything after the end-of-archive marker. tar-stream skips a zero block where a header
 * belongs and reads on, so members appended after the marker (or a second gzip member holding a
 * second archive) would be loaded — files that GNU tar, `opa inspect` and OPA itself (Go's
 * archive/tar) never see, i.e. a bundle reviewed with the standard tools would not be the
 * bundle served. Here the first zero block at a header position ends the archive, and every
 * byte after it must be zero (the marker's second block and the record padding). Where the
 * walk meets a header it cannot follow (tar-stream refuses those anyway), it stops judging.
 */
class TarEnd {
  private header = Buffer.alloc(512)
  private headerFill = 0
  /** Bytes of member data (padding included) still to pass before the next header. */
  private skip = 0
  /** A PAX or GNU long header's content being collected (`kind`), `left` bytes of it to come. */
  private long: { kind: number, left: number, parts: Buffer[] } | undefined
  private paxGlobal: string | undefined
  /** A pending local PAX header: its effective `size` record (undefined: none). */
  private pax: { size: string | undefined } | undefined
  private ended = false
  private lost = false

  /** Feeds decompressed bytes; returns a message when something follows the end-of-archive marker. */
  feed (chunk: Buffer): string | undefined {
    let i = 0
    while (i < chunk.length && !this.lost) {
      if (this.ended) {
        for (let k = i; k < chunk.length; k++) if (chunk[k] !== 0) return 'holds data after its end-of-archive marker (a zero block where a header belongs): tar and OPA stop there, so nothing after it may be loaded'
        return undefined
      }
      if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - i)
        if (this.long !== undefined && this.long.left > 0) {
          const part = Math.min(this.long.left, take)
          this.long.parts.push(chunk.subarray(i, i + part))
          this.long.left -= part
        }
        this.skip -= take
        i += take
        if (this.skip === 0 && this.long !== undefined) this.endLong()
        continue
      }
      const take = Math.min(512 - this.headerFill, chunk.length - i)
      chunk.copy(this.header, this.headerFill, i, i + take)
      this.headerFill += take
      i += take
      if (this.headerFill === 512) {
        this.headerFill = 0
        this.onHeader()
      }
    }
    return undefined
  }

  private onHeader (): void {
    const h = this.header
    // tar-stream's null header: the checksum of a block with nothing but (any) checksum field
    let empty = true
    for (let k = 0; k < 512 && empty; k++) if ((k < 148 || k >= 156) && h[k] !== 0) empty = false
    if (empty) { this.ended = true; return }
    const type = h[156] === 0 ? 0 : (h[156] as number) - 48
    const size = headerNumber(h.subarray(124, 136))
    if (!(size >= 0)) { this.lost = true; return }
    // pax-header (x), pax-global-header (g), gnu-long-link-path (K), gnu-long-path (L)
    if (type === 72 || type === 55 || type === 27 || type === 28) {
      this.long = { kind: type, left: size, parts: [] }
      this.skip = size + ((512 - (size % 512)) % 512)
      if (this.skip === 0) this.endLong()
      return
    }
    let effective = size
    if (this.pax !== undefined) {
      if (this.pax.size !== undefined && this.pax.size !== '') effective = Number.parseInt(this.pax.size, 10)
      this.pax = undefined
    }
    if (!(effective >= 0)) { this.lost = true; return }
    this.skip = effective === 0 || type === 5 ? 0 : effective + ((512 - (effective % 512)) % 512)
  }

  private endLong (): void {
    const long = this.long as { kind: number, parts: Buffer[] }
    this.long = undefined
    if (long.kind === 72) {
      const local = paxSize(Buffer.concat(long.parts))
      this.pax = { size: local ?? this.paxGlobal }
    } else if (long.kind === 55) {
      this.paxGlobal = paxSize(Buffer.concat(long.parts))
    }
  }
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
  const end = new TarEnd()
  gunzip.on('data', (chunk: Buffer) => {
    total += chunk.length
    if (total > limits.maxBytes) {
      const err = new BundleError('PORTCULLIS_BUNDLE_TOO_LARGE',
        `${source}: decompressed size exceeds the limit of ${limits.maxBytes} bytes`, { source, limit: limits.maxBytes })
      gunzip.destroy(err)
      return
    }
    const after = end.feed(chunk)
    if (after !== undefined) gunzip.destroy(new BundleError('PORTCULLIS_BUNDLE_ARCHIVE_INVALID', `${source}: the archive ${after}`, { source }))
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
