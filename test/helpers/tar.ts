/**
 * Writes tar.gz archives member by member with tar-stream, so tests can build hostile
 * archives (traversal names, links, duplicates) that no bundle writer would produce.
 */
import { gzipSync } from 'node:zlib'
import * as tarStream from 'tar-stream'

export interface Member {
  name: string
  content?: string | Buffer
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device'
  linkname?: string
}

export async function tarGz (members: Member[]): Promise<Buffer> {
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer) })
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve)
    pack.on('error', reject)
  })
  for (const m of members) {
    const type = m.type ?? 'file'
    if (type === 'file') {
      const body = Buffer.isBuffer(m.content) ? m.content : Buffer.from(m.content ?? '')
      pack.entry({ name: m.name, type, size: body.length, mode: 0o644 }, body)
    } else {
      pack.entry({ name: m.name, type, linkname: m.linkname, mode: 0o644 })
    }
  }
  pack.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}
