import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { normalizeMemberName, readBundleDir, readTarGz } from '../../src/bundles/archive.js'
import { tarGz } from '../helpers/tar.js'
import { tempDir } from '../helpers/opa.js'

const manifest = { name: '/.manifest', content: '{"roots":["x"]}' }

async function rejects (members: Parameters<typeof tarGz>[0], code: string, limits?: { maxBytes: number, maxFiles: number }): Promise<void> {
  const bytes = await tarGz(members)
  await assert.rejects(readTarGz(bytes, 'hostile.tar.gz', limits), { code })
}

test('reads members written with a leading slash, as opa build writes them', async () => {
  const files = await readTarGz(await tarGz([manifest, { name: '/x/data.json', content: '{}' }, { name: '/x', type: 'directory' }]), 'b.tar.gz')
  assert.deepEqual([...files.keys()], ['.manifest', 'x/data.json'])
})

test('rejects ../ member paths', () => rejects([manifest, { name: '../../etc/cron.d/evil', content: 'x' }], 'PORTCULLIS_BUNDLE_UNSAFE_PATH'))
test('rejects .. inside a member path', () => rejects([{ name: 'x/../../data.json', content: '{}' }], 'PORTCULLIS_BUNDLE_UNSAFE_PATH'))
test('rejects absolute member paths beyond the bundle-root slash', () => rejects([{ name: '//etc/passwd', content: 'x' }], 'PORTCULLIS_BUNDLE_UNSAFE_PATH'))
test('rejects drive-letter paths', () => rejects([{ name: 'C:/windows/data.json', content: '{}' }], 'PORTCULLIS_BUNDLE_UNSAFE_PATH'))
test('rejects backslashes in member names', () => rejects([{ name: 'x\\..\\data.json', content: '{}' }], 'PORTCULLIS_BUNDLE_UNSAFE_PATH'))
test('rejects symbolic links', () => rejects([manifest, { name: '/x/data.json', type: 'symlink', linkname: '/etc/passwd' }], 'PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED'))
test('rejects hard links', () => rejects([manifest, { name: '/x/data.json', type: 'link', linkname: '.manifest' }], 'PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED'))
test('rejects device and fifo members', () => rejects([{ name: '/x/fifo', type: 'fifo' }], 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID'))
test('rejects duplicate members', () => rejects([manifest, { name: '/x/data.json', content: '{"a":1}' }, { name: 'x/data.json', content: '{"a":2}' }], 'PORTCULLIS_BUNDLE_DUPLICATE_FILE'))

test('rejects a gzip bomb once the decompressed size passes the limit', async () => {
  // 64 MiB of zeros compresses to ~64 KiB; the limit stops inflation at 1 MiB.
  const bomb = await tarGz([manifest, { name: '/x/big.bin', content: Buffer.alloc(64 * 1024 * 1024) }])
  assert.ok(bomb.length < 1024 * 1024)
  await assert.rejects(readTarGz(bomb, 'bomb.tar.gz', { maxBytes: 1024 * 1024, maxFiles: 100 }), { code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
})

test('rejects more members than the limit', () => rejects(
  Array.from({ length: 20 }, (_, i) => ({ name: `/x/f${i}`, content: 'a' })), 'PORTCULLIS_BUNDLE_TOO_LARGE', { maxBytes: 1 << 20, maxFiles: 10 }))

test('rejects a truncated archive', async () => {
  const whole = await tarGz([manifest, { name: '/x/data.json', content: JSON.stringify({ v: 'y'.repeat(5000) }) }])
  for (const cut of [10, Math.floor(whole.length / 2), whole.length - 9]) {
    await assert.rejects(readTarGz(whole.subarray(0, cut), 'cut.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' }, `cut at ${cut}`)
  }
})

test('rejects a tar whose gzip stream is complete but whose tar stream is cut', async () => {
  const { gunzipSync } = await import('node:zlib')
  const tar = gunzipSync(await tarGz([manifest, { name: '/x/data.json', content: 'z'.repeat(3000) }]))
  await assert.rejects(readTarGz(gzipSync(tar.subarray(0, 1000)), 'cut-tar.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' })
})

test('members after the end-of-archive marker (appended, or a second gzip member) are refused: tar and OPA stop at the marker', async () => {
  const { gunzipSync } = await import('node:zlib')
  const archive = gunzipSync(await tarGz([manifest, { name: '/x/data.json', content: '{"users":{"eve":{"admin":false}}}' }]))
  const hidden = gunzipSync(await tarGz([{ name: '/x/extra/data.json', content: '{"users":{"eve":{"admin":true}}}' }]))
  await assert.rejects(readTarGz(gzipSync(Buffer.concat([archive, hidden])), 'appended.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' })
  await assert.rejects(readTarGz(Buffer.concat([gzipSync(archive), gzipSync(hidden)]), 'two-members.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' })
  // one zero block where a header belongs, then a member (Go's archive/tar: an invalid header)
  const oneZero = Buffer.concat([archive.subarray(0, archive.length - 1024), Buffer.alloc(512), hidden])
  await assert.rejects(readTarGz(gzipSync(oneZero), 'one-zero.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' })
  // zero padding after the marker (tar pads to its record size) is the archive's end, not data
  const padded = await readTarGz(gzipSync(Buffer.concat([archive, Buffer.alloc(20 * 512)])), 'padded.tar.gz')
  assert.deepEqual([...padded.keys()].sort(), ['.manifest', 'x/data.json'])
  // long names (PAX and GNU headers) and empty members do not confuse where headers are
  const pack = (await import('tar-stream')).pack()
  const chunks: Buffer[] = []
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer) })
  const long = `/x/${'d'.repeat(120)}/data.json`
  pack.entry({ name: '/.manifest', size: manifest.content.length }, manifest.content)
  pack.entry({ name: long, size: 2, pax: { comment: 'z'.repeat(700) } }, '{}')
  pack.entry({ name: '/x/empty.json', size: 0 }, '')
  pack.entry({ name: '/x/dir', type: 'directory' })
  pack.entry({ name: '/x/data.json', size: 7 }, '{"a":1}')
  pack.finalize()
  await new Promise<void>((resolve) => pack.on('end', () => { resolve() }))
  const files = await readTarGz(gzipSync(Buffer.concat(chunks)), 'long.tar.gz')
  assert.deepEqual([...files.keys()].sort(), ['.manifest', long.slice(1), 'x/data.json', 'x/empty.json'].sort())
})

test('reads multi-chunk members byte for byte (copied into one buffer as they stream)', async () => {
  const { randomBytes } = await import('node:crypto')
  const big = randomBytes(3 * 1024 * 1024 + 17) // many gunzip and tar chunks, not a chunk multiple
  const small = Buffer.from('{"a":1}')
  const files = await readTarGz(await tarGz([manifest, { name: '/x/big.bin', content: big }, { name: '/x/data.json', content: small }, { name: '/x/empty', content: '' }]), 'b.tar.gz')
  assert.ok(files.get('x/big.bin')?.equals(big))
  assert.ok(files.get('x/data.json')?.equals(small))
  assert.equal(files.get('x/empty')?.length, 0)
})

test('a member whose header claims more than the limit is refused without reserving it', async () => {
  // The header says 200 MiB; the archive holds a few bytes. Nothing of that size is allocated:
  // the limit (1 MiB) is below the claim, so the member streams into chunks and the archive fails.
  const { gunzipSync } = await import('node:zlib')
  const tar = Buffer.from(gunzipSync(await tarGz([manifest, { name: '/x/data.json', content: 'z'.repeat(600) }])))
  let at = 0
  while (at < tar.length && !tar.subarray(at, at + 100).toString('latin1').includes('data.json')) at += 512
  const header = tar.subarray(at, at + 512) // the data member's header
  assert.ok(at < tar.length)
  header.write('00001440000000\0', 124, 'ascii') // size field (octal 1440000000 = 200 MiB)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i] as number
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
  await assert.rejects(readTarGz(gzipSync(tar), 'claims.tar.gz', { maxBytes: 1024 * 1024, maxFiles: 10 }), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' }) // tar-stream: unexpected end of data
})

test('rejects bytes that are not gzip', async () => {
  await assert.rejects(readTarGz(Buffer.from('{"not":"a tarball"}'), 'plain.tar.gz'), { code: 'PORTCULLIS_BUNDLE_ARCHIVE_INVALID' })
})

test('normalizeMemberName accepts bundle-root forms and rejects escapes', () => {
  assert.equal(normalizeMemberName('/a/b.json', 's'), 'a/b.json')
  assert.equal(normalizeMemberName('./a/b.json', 's'), 'a/b.json')
  assert.equal(normalizeMemberName('a/', 's'), 'a')
  for (const bad of ['', '/', 'a//b', 'a/./b', 'a/../b', '..', 'a\0b']) {
    assert.throws(() => normalizeMemberName(bad, 's'), { code: 'PORTCULLIS_BUNDLE_UNSAFE_PATH' }, JSON.stringify(bad))
  }
})

test('directory bundles: symlinks are rejected', (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'b', 'x'), { recursive: true })
  writeFileSync(join(dir, 'b', '.manifest'), '{"roots":["x"]}')
  symlinkSync('/etc/passwd', join(dir, 'b', 'x', 'data.json'))
  return assert.rejects(readBundleDir(join(dir, 'b')), { code: 'PORTCULLIS_BUNDLE_LINK_NOT_ALLOWED' })
})

test('directory bundles: size limit applies', (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'b'), { recursive: true })
  writeFileSync(join(dir, 'b', 'big.bin'), Buffer.alloc(4096))
  return assert.rejects(readBundleDir(join(dir, 'b'), { maxBytes: 1024, maxFiles: 10 }), { code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
})

test('directory bundles: a missing directory is PORTCULLIS_BUNDLE_NOT_FOUND', (t) => {
  const dir = tempDir(t)
  return assert.rejects(readBundleDir(join(dir, 'nope')), { code: 'PORTCULLIS_BUNDLE_NOT_FOUND' })
})

// OPA's size_limit_bytes is a per-file limit on the decompressed size (bundle reader), not a
// limit on the download: a small archive with one large file is refused naming that file.
test('maxFileBytes (size_limit_bytes) refuses one file above the per-file limit, naming it; smaller files pass', async () => {
  const bytes = await tarGz([manifest, { name: '/x/data.json', content: JSON.stringify({ pad: 'a'.repeat(5000) }) }, { name: '/x/small.txt', content: 'ok' }])
  assert.ok(bytes.length < 1000, 'the archive itself is small')
  await assert.rejects(readTarGz(bytes, 'b.tar.gz', { maxBytes: 1 << 20, maxFiles: 10, maxFileBytes: 4096 }), (err: { code: string, details: { file: string } }) => {
    assert.equal(err.code, 'PORTCULLIS_BUNDLE_TOO_LARGE')
    assert.equal(err.details.file, 'x/data.json')
    return true
  })
  assert.equal((await readTarGz(bytes, 'b.tar.gz', { maxBytes: 1 << 20, maxFiles: 10, maxFileBytes: 8192 })).size, 3)
})

test('maxFileBytes applies to unpacked bundle directories too', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'b', 'x'), { recursive: true })
  writeFileSync(join(dir, 'b', '.manifest'), '{"roots":["x"]}')
  writeFileSync(join(dir, 'b', 'x', 'data.json'), JSON.stringify({ pad: 'a'.repeat(5000) }))
  await assert.rejects(readBundleDir(join(dir, 'b'), { maxBytes: 1 << 20, maxFiles: 10, maxFileBytes: 4096 }), { code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
})
