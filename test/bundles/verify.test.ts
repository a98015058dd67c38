import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { loadBundle } from '../../src/bundles/load.js'
import type { SigningPolicy } from '../../src/bundles/verify.js'
import { readTarGz } from '../../src/bundles/archive.js'
import { needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'
import { tarGz } from '../helpers/tar.js'

// Keys are generated here (node:crypto); bundles are signed by the real `opa build --signing-key`.
function pemPair (type: 'ec' | 'rsa'): { priv: string, pub: string } {
  const { privateKey, publicKey } = type === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { priv: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, pub: publicKey.export({ type: 'spki', format: 'pem' }) as string }
}

describe('bundle signatures (opa build --signing-key)', needsOpa(), () => {
  let dir: string
  const ec = pemPair('ec')
  const ec2 = pemPair('ec')
  const rsa = pemPair('rsa')
  let signedEs256: string
  let signedRs256: string
  let signedByOther: string
  let signedHs256: string
  let signedScoped: string
  let unsigned: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-sig-'))
    const write = (name: string, content: string): string => {
      const f = join(dir, name)
      writeFileSync(f, content)
      return f
    }
    signedEs256 = buildFixture('basic', dir, { out: 'es256.tar.gz', signingKey: write('ec.key', ec.priv), signingAlg: 'ES256' })
    signedByOther = buildFixture('basic', dir, { out: 'other.tar.gz', signingKey: write('ec2.key', ec2.priv), signingAlg: 'ES256' })
    signedRs256 = buildFixture('basic', dir, { out: 'rs256.tar.gz', revision: 'rev-rsa', signingKey: write('rsa.key', rsa.priv), keyId: 'rsa-1' })
    signedHs256 = buildFixture('basic', dir, { out: 'hs256.tar.gz', signingKey: 'shared-secret-for-tests', signingAlg: 'HS256' })
    signedScoped = buildFixture('basic', dir, { out: 'scoped.tar.gz', signingKey: join(dir, 'ec.key'), signingAlg: 'ES256', claimsFile: write('claims.json', '{"scope": "write"}') })
    unsigned = buildFixture('basic', dir, { out: 'unsigned.tar.gz' })
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const es256: SigningPolicy = { verification: { keys: { default: { key: ec.pub, algorithm: 'ES256' } } } }

  async function repack (src: string, edit: (f: Map<string, Buffer>) => void): Promise<string> {
    const files = await readTarGz(readFileSync(src), src)
    edit(files)
    const out = join(dir, `tampered-${Math.random().toString(36).slice(2)}.tar.gz`)
    writeFileSync(out, await tarGz([...files].map(([name, content]) => ({ name: `/${name}`, content }))))
    return out
  }

  test('ES256 bundle verifies with its public key', async () => {
    const b = await loadBundle(signedEs256, es256)
    assert.deepEqual(b.signature, { state: 'verified', keyId: 'default', algorithm: 'ES256' })
  })

  test('RS256 bundle verifies by the kid in its header', async () => {
    const b = await loadBundle(signedRs256, { verification: { keys: { 'rsa-1': { key: rsa.pub, algorithm: 'RS256' } } } })
    assert.equal(b.signature.state, 'verified')
  })

  test('RS256 is the default algorithm of a configured key', async () => {
    const b = await loadBundle(signedRs256, { verification: { keys: { 'rsa-1': { key: rsa.pub } } } })
    assert.equal(b.signature.state, 'verified')
  })

  test('HS256 bundle verifies with the shared secret', async () => {
    const b = await loadBundle(signedHs256, { verification: { keys: { default: { key: 'shared-secret-for-tests', algorithm: 'HS256' } } } })
    assert.equal(b.signature.state, 'verified')
    await assert.rejects(loadBundle(signedHs256, { verification: { keys: { default: { key: 'wrong', algorithm: 'HS256' } } } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' })
  })

  test('the configured key id takes precedence over the JWS kid (OPA order)', async () => {
    const b = await loadBundle(signedRs256, { verification: { keyId: 'mine', keys: { mine: { key: rsa.pub } } } })
    assert.equal(b.signature.state, 'verified')
  })

  test('tampered: a data value changed', async () => {
    const bad = await repack(signedEs256, (f) => f.set('data.json', Buffer.from((f.get('data.json') as Buffer).toString().replace('alice', 'mallory'))))
    await assert.rejects(loadBundle(bad, es256), (err: { code: string, details: { file: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH')
      assert.equal(err.details.file, 'data.json')
      return true
    })
  })

  test('tampered: the wasm module changed', async () => {
    const bad = await repack(signedEs256, (f) => {
      const wasm = Buffer.from(f.get('policy.wasm') as Buffer)
      wasm.writeUInt8((wasm.at(-1) as number) ^ 1, wasm.length - 1)
      f.set('policy.wasm', wasm)
    })
    await assert.rejects(loadBundle(bad, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH' })
  })

  test('tampered: a file added', async () => {
    const bad = await repack(signedEs256, (f) => f.set('basic/extra/data.json', Buffer.from('{"admin": true}')))
    await assert.rejects(loadBundle(bad, es256), (err: { code: string, details: { file: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH')
      assert.equal(err.details.file, 'basic/extra/data.json')
      return true
    })
  })

  test('tampered: a file removed', async () => {
    const bad = await repack(signedEs256, (f) => f.delete('data.json'))
    await assert.rejects(loadBundle(bad, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH' })
  })

  test('tampered: the signature from another key', async () => {
    await assert.rejects(loadBundle(signedByOther, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' })
  })

  test('tampered: another bundle\'s signature file transplanted', async () => {
    const otherSig = (await readTarGz(readFileSync(signedRs256), 'x')).get('.signatures.json') as Buffer
    const bad = await repack(signedEs256, (f) => f.set('.signatures.json', otherSig))
    await assert.rejects(loadBundle(bad, { verification: { keys: { 'rsa-1': { key: rsa.pub } } } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH' })
  })

  test('tampered: payload swapped under the original signature', async () => {
    const bad = await repack(signedEs256, (f) => {
      const token = (JSON.parse((f.get('.signatures.json') as Buffer).toString()) as { signatures: string[] }).signatures[0] as string
      const [h, p, s] = token.split('.') as [string, string, string]
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { files: unknown[] }
      payload.files = payload.files.slice(1)
      f.set('.signatures.json', Buffer.from(JSON.stringify({ signatures: [`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`] })))
    })
    await assert.rejects(loadBundle(bad, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' })
  })

  test('a JWS whose payload or header is JSON but not an object (null, an array) is SIGNATURE_INVALID, named', async () => {
    for (const [header, payload] of [[{ alg: 'ES256' }, null], [{ alg: 'ES256' }, [1]], [{ alg: 'ES256', kid: 'ec-1' }, 'files']] as const) {
      const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
      const bad = await repack(signedEs256, (f) => { f.set('.signatures.json', Buffer.from(JSON.stringify({ signatures: [`${b64(header)}.${b64(payload)}.c2ln`] }))) })
      await assert.rejects(loadBundle(bad, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' }, JSON.stringify(payload))
    }
  })

  test('reformatted JSON (whitespace, key order) still verifies: JSON is hashed in canonical form', async () => {
    const bad = await repack(signedEs256, (f) => {
      const data = JSON.parse((f.get('data.json') as Buffer).toString()) as { basic: Record<string, unknown> }
      const reordered = { basic: Object.fromEntries(Object.entries(data.basic).reverse()) }
      f.set('data.json', Buffer.from(JSON.stringify(reordered, null, 4)))
    })
    assert.equal((await loadBundle(bad, es256)).signature.state, 'verified')
  })

  test('the algorithm must be the configured one', async () => {
    await assert.rejects(loadBundle(signedEs256, { verification: { keys: { default: { key: ec.pub, algorithm: 'ES384' } } } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' })
    await assert.rejects(loadBundle(signedEs256, { verification: { keys: { default: { key: ec.pub, algorithm: 'HS256' } } } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' })
  })

  test('an unknown key id is rejected', async () => {
    await assert.rejects(loadBundle(signedEs256, { verification: { keys: { other: { key: ec.pub, algorithm: 'ES256' } } } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN' })
  })

  test('a signed bundle with no keys configured is rejected, not silently trusted', async () => {
    await assert.rejects(loadBundle(signedEs256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN' })
  })

  test('unsigned bundles load unless signatures are required', async () => {
    assert.deepEqual((await loadBundle(unsigned, es256)).signature, { state: 'unsigned' })
    await assert.rejects(loadBundle(unsigned, { ...es256, requireSignature: true }), { code: 'PORTCULLIS_BUNDLE_UNSIGNED' })
  })

  test('scope: must equal the configured scope (and absent means empty)', async () => {
    // With --claims-file, opa writes no kid: the configured key id selects the key (OPA order).
    const keys = { default: { key: ec.pub, algorithm: 'ES256' } }
    const b = await loadBundle(signedScoped, { verification: { keyId: 'default', scope: 'write', keys } })
    assert.deepEqual(b.signature, { state: 'verified', keyId: 'default', algorithm: 'ES256', scope: 'write' })
    await assert.rejects(loadBundle(signedScoped, { verification: { keyId: 'default', scope: 'read', keys } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_SCOPE_MISMATCH' })
    await assert.rejects(loadBundle(signedScoped, { verification: { keyId: 'default', keys } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_SCOPE_MISMATCH' })
    await assert.rejects(loadBundle(signedEs256, { verification: { scope: 'write', keys } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_SCOPE_MISMATCH' })
    // a key's own scope applies when no bundle-wide scope is set
    assert.equal((await loadBundle(signedScoped, { verification: { keyId: 'default', keys: { default: { ...keys.default, scope: 'write' } } } })).signature.state, 'verified')
    // and without a kid in the JWS or a configured key id there is no key to use
    await assert.rejects(loadBundle(signedScoped, { verification: { scope: 'write', keys } }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_KEY_UNKNOWN' })
  })

  test('.signatures.json must hold exactly one JWT', async () => {
    for (const content of ['{"signatures": []}', '{"signatures": ["a", "b"]}', 'nope', '{"signatures": ["not-a-jws"]}']) {
      const bad = await repack(signedEs256, (f) => f.set('.signatures.json', Buffer.from(content)))
      await assert.rejects(loadBundle(bad, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_INVALID' }, content)
    }
  })

  // Regression: exclude_files let an excluded file skip the hash check yet still be loaded, so
  // a pattern such as `*` let an old .signatures.json be replayed over attacker policy.
  test('exclude_files: an excluded data file is refused, not loaded unverified (opa build --exclude-files-verify)', async () => {
    const src = buildFixture('basic', dir, { out: 'excl-data.tar.gz', signingKey: join(dir, 'ec.key'), signingAlg: 'ES256', extraArgs: ['--exclude-files-verify', 'data.json'] })
    const bad = await repack(src, (f) => f.set('data.json', Buffer.from((f.get('data.json') as Buffer).toString().replace('alice', 'mallory'))))
    await assert.rejects(loadBundle(bad, { ...es256, excludeFiles: ['data.json'] }), (err: { code: string, details: { file: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH')
      assert.equal(err.details.file, 'data.json')
      return true
    })
  })

  test('exclude_files "*": an old signature replayed over a tampered wasm module or manifest is refused', async () => {
    const wasmSwapped = await repack(signedEs256, (f) => {
      const wasm = Buffer.from(f.get('policy.wasm') as Buffer)
      wasm.writeUInt8((wasm.at(-1) as number) ^ 1, wasm.length - 1)
      f.set('policy.wasm', wasm)
    })
    const manifestSwapped = await repack(signedEs256, (f) => f.set('.manifest', Buffer.from((f.get('.manifest') as Buffer).toString().replace('test-rev-1', 'evil'))))
    for (const [bad, patterns] of [[wasmSwapped, ['*']], [wasmSwapped, ['*.wasm']], [manifestSwapped, ['*']], [manifestSwapped, ['.manifest']]] as const) {
      await assert.rejects(loadBundle(bad, { ...es256, excludeFiles: [...patterns] }), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH' }, patterns.join())
    }
  })

  test('exclude_files: every kind of file that decides the outcome is refused when excluded (class of bug)', async () => {
    // Files added after signing, each excluded by a pattern that matches exactly it.
    for (const name of ['basic/extra/data.json', 'basic/extra/data.yaml', 'extra.rego', 'other.wasm', 'x/.manifest']) {
      const bad = await repack(signedEs256, (f) => f.set(name, Buffer.from(name.endsWith('.json') ? '{}' : 'x: 1')))
      await assert.rejects(loadBundle(bad, { ...es256, excludeFiles: [name] }), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH', name)
        assert.equal(err.details.file, name)
        return true
      })
    }
  })

  test('exclude_files: a file Portcullis does not read may still be excluded and changed', async () => {
    const withNotes = await repack(signedEs256, (f) => f.set('NOTES.md', Buffer.from('changed after signing')))
    const b = await loadBundle(withNotes, { ...es256, excludeFiles: ['*.md'] })
    assert.equal(b.signature.state, 'verified')
    await assert.rejects(loadBundle(withNotes, es256), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_FILES_MISMATCH' })
  })

  test('skipVerification reports the signature as not verified', async () => {
    assert.equal((await loadBundle(signedEs256, { skipVerification: true })).signature.state, 'not_verified')
  })
})
