/**
 * File primitives of the audit log writer: positional writes that finish or fail, directory
 * fsync, segments opened for positional writes (optionally O_DSYNC), reading the last lines of
 * a segment backwards.
 */
import { constants as fsConstants, existsSync } from 'node:fs'
import { mkdir, open, writeFile, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { invalid } from './errors.js'

export async function fsyncDir (path: string): Promise<void> {
  const fh = await open(path, fsConstants.O_RDONLY)
  try { await fh.sync() } finally { await fh.close() }
}

export async function writeFully (fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off)
    if (bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' })
    off += bytesWritten
  }
}

export function isJson (b: Buffer): boolean {
  try { JSON.parse(b.toString('utf8')); return true } catch { return false }
}

export async function openRw (path: string, dsync = false): Promise<FileHandle> {
  if (!existsSync(path)) await writeFile(path, '', { flag: 'a' })
  return await open(path, dsync ? fsConstants.O_RDWR | fsConstants.O_DSYNC : 'r+')
}

/** A new (or empty leftover) segment file opened for positional writes. */
export async function openSegment (path: string, dsync: boolean): Promise<FileHandle> {
  await mkdir(dirname(path), { recursive: true })
  const fh = await openRw(path, dsync)
  if ((await fh.stat()).size !== 0) {
    await fh.close()
    throw invalid(`audit segment ${path} already exists and is not empty`)
  }
  return fh
}

/** The last line (and the one before) ending at `end`, read backwards in growing windows. */
export async function readLastLines (fh: FileHandle, end: number): Promise<{ last: { bytes: Buffer, offset: number }, prev?: { bytes: Buffer, offset: number }, endsWithNewline: boolean }> {
  let window = Math.min(end, 64 * 1024)
  for (;;) {
    const buf = Buffer.alloc(window)
    await fh.read(buf, 0, window, end - window)
    const base = end - window
    const endsWithNewline = buf[window - 1] === 10
    const body = endsWithNewline ? window - 1 : window
    const nl1 = buf.lastIndexOf(10, body - 1)
    const nl0 = nl1 > 0 ? buf.lastIndexOf(10, nl1 - 1) : -1
    const enough = window === end || nl0 >= 0
    if (enough) {
      const lastStart = nl1 + 1
      const last = { bytes: buf.subarray(lastStart, body), offset: base + lastStart }
      if (nl1 < 0) return { last, endsWithNewline }
      const prevStart = nl0 + 1
      return { last, prev: { bytes: buf.subarray(prevStart, nl1), offset: base + prevStart }, endsWithNewline }
    }
    window = Math.min(end, window * 4)
  }
}

/** The first and the last record of a closed segment (both whole lines), or undefined when it has none or ends mid-record. */
export async function segmentEnds (path: string, size: number): Promise<{ first: Buffer, last: Buffer } | undefined> {
  if (size === 0) return undefined
  const fh = await open(path, 'r')
  try {
    const { last, endsWithNewline } = await readLastLines(fh, size)
    if (!endsWithNewline) return undefined
    let first: Buffer | undefined
    for (let window = Math.min(size, 64 * 1024); first === undefined; window = Math.min(size, window * 4)) {
      const buf = Buffer.alloc(window)
      const { bytesRead } = await fh.read(buf, 0, window, 0)
      const nl = buf.subarray(0, bytesRead).indexOf(10)
      if (nl >= 0) first = Buffer.from(buf.subarray(0, nl))
      else if (window === size) return undefined
    }
    return { first, last: Buffer.from(last.bytes) }
  } finally { await fh.close() }
}
