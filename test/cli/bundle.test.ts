import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/cli/main.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'
import { captureIo } from '../helpers/io.js'

describe('portcullis bundle inspect / verify', needsOpa(), () => {
  let dir: string
  let unsigned: string
  let signed: string
  let pub: string
  let otherPub: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-bundle-'))
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const k2 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    writeFileSync(join(dir, 'key.pem'), k.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    pub = join(dir, 'pub.pem')
    writeFileSync(pub, k.publicKey.export({ type: 'spki', format: 'pem' }))
    otherPub = join(dir, 'other.pem')
    writeFileSync(otherPub, k2.publicKey.export({ type: 'spki', format: 'pem' }))
    unsigned = buildFixture('basic', dir, { revision: 'r-unsigned' })
    signed = buildFixture('basic', dir, { out: 'signed.tar.gz', revision: 'r-signed', signingKey: join(dir, 'key.pem'), signingAlg: 'ES256' })
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('inspect --json reports revision, roots, entrypoints, builtins and signature', async () => {
    const io = captureIo()
    assert.equal(await main(['bundle', 'inspect', unsigned, '--json'], io), 0)
    const r = JSON.parse(io.out()) as Record<string, unknown>
    assert.equal(r.revision, 'r-unsigned')
    assert.deepEqual(r.roots, ['basic'])
    assert.ok((r.entrypoints as Array<{ entrypoint: string }>).some((e) => e.entrypoint === 'basic/allow'))
    assert.equal((r.builtins as Record<string, string>)['time.now_ns'], 'host')
    assert.deepEqual(r.signature, { state: 'unsigned' })
  })

  test('inspect shows a signature without verifying it, or verifies it with --key', async () => {
    let io = captureIo()
    assert.equal(await main(['bundle', 'inspect', signed, '--json'], io), 0)
    assert.equal((JSON.parse(io.out()) as { signature: { state: string, alg: string } }).signature.state, 'signed_not_verified')
    io = captureIo()
    assert.equal(await main(['bundle', 'inspect', signed, '--json', '--key', pub, '--alg', 'ES256'], io), 0)
    assert.equal((JSON.parse(io.out()) as { signature: { state: string } }).signature.state, 'verified')
    io = captureIo()
    assert.equal(await main(['bundle', 'inspect', signed], io), 0)
    assert.match(io.out(), /Revision:\s+r-signed/)
  })

  test('verify exits 0 with the right key, 1 with the wrong key or an unsigned bundle', async () => {
    let io = captureIo()
    assert.equal(await main(['bundle', 'verify', signed, '--key', pub, '--alg', 'ES256'], io), 0)
    assert.equal((JSON.parse(io.out()) as { signature: { state: string } }).signature.state, 'verified')
    io = captureIo()
    assert.equal(await main(['bundle', 'verify', signed, '--key', otherPub, '--alg', 'ES256'], io), 1)
    assert.match(io.err(), /^PORTCULLIS_BUNDLE_SIGNATURE_INVALID:/)
    io = captureIo()
    assert.equal(await main(['bundle', 'verify', unsigned, '--key', pub, '--alg', 'ES256'], io), 1)
    assert.match(io.err(), /^PORTCULLIS_BUNDLE_UNSIGNED:/)
    assert.equal(await main(['bundle', 'verify', signed], captureIo()), 2)
  })

  test('eval refuses a signed bundle it cannot verify, and accepts it with --key', async () => {
    let io = captureIo('{"user":"alice"}')
    assert.equal(await main(['eval', '--bundle', signed, '--path', 'basic/allow', '--input', '-'], io), 2)
    assert.match(io.err(), /^PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN:/)
    io = captureIo('{"user":"alice"}')
    assert.equal(await main(['eval', '--bundle', signed, '--key', pub, '--alg', 'ES256', '--path', 'basic/allow', '--input', '-'], io), 0)
    assert.equal(io.out().trim(), 'true')
  })
})
