/**
 * The last good download of a remote bundle, kept on disk (OPA `persist: true`): the exact
 * archive bytes at `<persistence_directory>/bundles/<name>/bundle.tar.gz` (OPA's layout), and
 * beside it `etag.json` with the ETag and the archive's SHA-256. Each file is written to a temp
 * file in the same directory, flushed, and renamed into place, so a crash leaves the old file or
 * the new one, never half of one.
 *
 * What is read back is never trusted more than a download: it goes through the same load →
 * verify → activate transaction, so a corrupt or tampered file is refused and reported. The
 * ETag is used only when the SHA-256 matches the archive it was saved with; otherwise the first
 * request downloads the bundle again.
 */
import { randomBytes, createHash } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

export const PERSISTED_ARCHIVE = 'bundle.tar.gz'
export const PERSISTED_META = 'etag.json'

export interface PersistedBundle {
  archive: Buffer
  file: string
  /** The ETag saved with this exact archive, if it is still the one saved with it. */
  etag?: string
}

/** `<persistence_directory>/bundles/<name>`. */
export function persistDirOf (persistenceDirectory: string, name: string): string {
  return join(persistenceDirectory, 'bundles', name)
}

async function writeAtomically (dir: string, name: string, bytes: Buffer | string): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', 0o600)
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, join(dir, name))
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Saves a downloaded archive that has just been activated, with its ETag. */
export async function savePersisted (dir: string, archive: Buffer, meta: { etag?: string, revision?: string }): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeAtomically(dir, PERSISTED_ARCHIVE, archive)
  await writeAtomically(dir, PERSISTED_META, JSON.stringify({ etag: meta.etag ?? '', sha256: sha256(archive), revision: meta.revision ?? '', saved_at: new Date().toISOString() }))
}

/** Reads the persisted archive, or undefined when there is none. */
export async function readPersisted (dir: string): Promise<PersistedBundle | undefined> {
  const file = join(dir, PERSISTED_ARCHIVE)
  let archive: Buffer
  try {
    archive = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  let etag: string | undefined
  try {
    const meta = JSON.parse(await readFile(join(dir, PERSISTED_META), 'utf8')) as { etag?: unknown, sha256?: unknown }
    if (typeof meta.etag === 'string' && meta.etag !== '' && meta.sha256 === sha256(archive)) etag = meta.etag
  } catch {
    // No usable ETag: the first request downloads the bundle again.
  }
  return { archive, file, ...(etag !== undefined ? { etag } : {}) }
}
