import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MAX_DATA_DEPTH } from '../../src/policy/data-layout.js'
import { loadBundle } from '../../src/bundles/load.js'
import { needsOpa, runOpa, tempDir } from '../helpers/opa.js'
import { buildBundleDir, buildFixture, copyFixture } from '../helpers/bundles.js'
import { readTarGz } from '../../src/bundles/archive.js'
import { tarGz } from '../helpers/tar.js'

/** Re-packs a real bundle after `edit` changes its files (to make bundles opa build would refuse to write). */
async function repack (bundle: string, edit: (files: Map<string, Buffer>) => void, out: string): Promise<string> {
  const files = await readTarGz(readFileSync(bundle), bundle)
  edit(files)
  writeFileSync(out, await tarGz([...files].map(([name, content]) => ({ name: `/${name}`, content }))))
  return out
}

describe('loading bundles built by opa', needsOpa(), () => {
  test('a YAML anchor and its alias are separate documents once placed: another file merged under the alias changes only it, in any member order, as in OPA', async (t) => {
    const dir = tempDir(t)
    const yaml = 'cfg: &x {mode: strict}\nguest: *x\n'
    const guest = '{"admin_override": true}'
    mkdirSync(join(dir, 'src', 't', 'guest'), { recursive: true })
    writeFileSync(join(dir, 'src', 't', 'data.yaml'), yaml)
    writeFileSync(join(dir, 'src', 't', 'guest', 'data.json'), guest)
    const opa = JSON.parse(runOpa(['eval', '-f', 'json', '-d', join(dir, 'src'), 'data.t'])) as { result: Array<{ expressions: Array<{ value: unknown }> }> }
    const expected = opa.result[0]?.expressions[0]?.value
    assert.deepEqual(expected, { cfg: { mode: 'strict' }, guest: { admin_override: true, mode: 'strict' } })
    const manifest = { name: '/.manifest', content: '{"roots":["t"]}' }
    for (const order of [['yaml', 'json'], ['json', 'yaml']]) {
      const members = order.map((m) => m === 'yaml' ? { name: '/t/data.yaml', content: yaml } : { name: '/t/guest/data.json', content: guest })
      const out = join(dir, `order-${order.join('-')}.tar.gz`)
      writeFileSync(out, await tarGz([manifest, ...members]))
      assert.deepEqual((await loadBundle(out)).data, { t: expected }, order.join(' first, then '))
    }
  })

  test('a .tar.gz: manifest, wasm, data from data.json and a nested data.yaml merged by path', async (t) => {
    const dir = tempDir(t)
    const b = await loadBundle(buildFixture('basic', dir, { revision: 'rev-42' }))
    assert.equal(b.name, 'basic')
    assert.equal(b.manifest.revision, 'rev-42')
    assert.deepEqual(b.manifest.roots, ['basic'])
    assert.ok(b.manifest.wasm.some((w) => w.entrypoint === 'basic/allow' && w.module === 'policy.wasm'))
    assert.ok(b.wasmModules.has('policy.wasm'))
    assert.deepEqual(b.data, { basic: { admins: ['alice', 'bob'], flag: true, nested: { deeper: { level: 3, tags: ['a', 'b'] } } } })
    assert.deepEqual(b.signature, { state: 'unsigned' })
    assert.deepEqual(b.packages, ['basic'])
  })

  test('an unpacked directory gives the same bundle as its archive', async (t) => {
    const dir = tempDir(t)
    const archive = buildFixture('basic', dir)
    const unpacked = join(dir, 'basic')
    mkdirSync(unpacked)
    execFileSync('tar', ['xzf', archive, '-C', unpacked])
    const [a, d] = [await loadBundle(archive), await loadBundle(unpacked)]
    assert.equal(d.name, 'basic')
    assert.deepEqual(d.data, a.data)
    assert.deepEqual(d.manifest, a.manifest)
    assert.equal(d.digest, a.digest)
  })

  test('data outside the roots is rejected naming the file', async (t) => {
    const dir = tempDir(t)
    const src = copyFixture('basic', dir)
    mkdirSync(join(src, 'elsewhere'))
    writeFileSync(join(src, 'elsewhere', 'data.json'), '{"x": 1}')
    // opa build itself refuses this bundle; re-pack a good one to get it past the writer.
    const good = buildBundleDir(copyFixture('basic', dir), join(dir, 'good.tar.gz'))
    const bad = await repack(good, (f) => f.set('elsewhere/data.json', Buffer.from('{"x":1}')), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), (err: { code: string, details: { file: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS')
      assert.equal(err.details.file, 'elsewhere/data.json')
      return true
    })
  })

  test('data keys __proto__ and constructor are data: merging never reaches Object.prototype (prototype pollution)', async (t) => {
    const dir = tempDir(t)
    const good = buildBundleDir(copyFixture('basic', dir), join(dir, 'good.tar.gz'))
    const hostile = await repack(good, (f) => {
      f.set('basic/p1/data.json', Buffer.from('{"__proto__": {"skipVerification": true, "polluted": 1}, "constructor": {"prototype": {"polluted": 2}}}'))
      f.set('basic/p1/__proto__/more/data.json', Buffer.from('{"polluted": 3}'))
    }, join(dir, 'hostile.tar.gz'))
    const bundle = await loadBundle(hostile)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal(({} as Record<string, unknown>).skipVerification, undefined)
    const p1 = (bundle.data.basic as Record<string, unknown>).p1 as Record<string, unknown>
    const proto = Object.getOwnPropertyDescriptor(p1, '__proto__')?.value as Record<string, unknown>
    assert.deepEqual({ ...proto }, { skipVerification: true, polluted: 1, more: { polluted: 3 } })
    assert.deepEqual(Object.getOwnPropertyDescriptor(p1, 'constructor')?.value, { prototype: { polluted: 2 } })
  })

  test('root data.json with keys outside the roots is rejected', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    const bad = await repack(good, (f) => f.set('data.json', Buffer.from('{"basic": {"a": 1}, "intruder": {"b": 2}}')), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
  })

  test('roots are compared segment by segment: a data key holding "/" is not a path into a root', async (t) => {
    const dir = tempDir(t)
    const withRoots = (f: Map<string, Buffer>): void => {
      const m = JSON.parse((f.get('.manifest') as Buffer).toString()) as { roots: string[] }
      m.roots = [...m.roots, 'q/r']
      f.set('.manifest', Buffer.from(JSON.stringify(m)))
    }
    const good = buildFixture('basic', dir)
    // "r/s" is one key of q, beside the root q/r (OPA refuses it); joined it read as q/r/s
    const bad = await repack(good, (f) => { withRoots(f); f.set('q/data.json', Buffer.from('{"r/s": "outside the roots"}')) }, join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    const ok = await repack(good, (f) => { withRoots(f); f.set('q/r/data.json', Buffer.from('{"s/t": 1}')) }, join(dir, 'ok.tar.gz'))
    assert.deepEqual(((await loadBundle(ok)).data.q as Record<string, unknown>).r, { 's/t': 1 })
  })

  test('data nesting is counted from data\'s root: a file n directories down may nest n levels less; the root document is an object', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    const nested = (d: number): Buffer => Buffer.from('{"k":' + '['.repeat(d - 1) + ']'.repeat(d - 1) + '}')
    // basic/a/b/c/data.json sits 4 directories down: 508 levels fit, 509 do not
    const deep = await repack(good, (f) => f.set('basic/a/b/c/data.json', nested(MAX_DATA_DEPTH - 3)), join(dir, 'deep.tar.gz'))
    await assert.rejects(loadBundle(deep), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    const fits = await repack(good, (f) => f.set('basic/a/b/c/data.json', nested(MAX_DATA_DEPTH - 4)), join(dir, 'fits.tar.gz'))
    await loadBundle(fits)
    // a number too big for a double at the root is a number, not the root object
    const num = await repack(good, (f) => f.set('data.json', Buffer.from('12345678901234567890')), join(dir, 'num.tar.gz'))
    await assert.rejects(loadBundle(num), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })

  test('a wasm module named in the manifest but missing is rejected', async (t) => {
    const dir = tempDir(t)
    const bad = await repack(buildFixture('basic', dir), (f) => f.delete('policy.wasm'), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_WASM_MISSING' })
  })

  test('an entrypoint outside the roots is rejected', async (t) => {
    const dir = tempDir(t)
    const bad = await repack(buildFixture('basic', dir), (f) => {
      const m = JSON.parse((f.get('.manifest') as Buffer).toString()) as { wasm: Array<{ entrypoint: string }> }
      m.wasm.push({ entrypoint: 'elsewhere/allow', module: '/policy.wasm' } as never)
      f.set('.manifest', Buffer.from(JSON.stringify(m)))
    }, join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_ENTRYPOINT_OUTSIDE_ROOTS' })
  })

  test('overlapping roots in the manifest are rejected', async (t) => {
    const dir = tempDir(t)
    const bad = await repack(buildFixture('basic', dir), (f) => {
      const m = JSON.parse((f.get('.manifest') as Buffer).toString()) as { roots: string[] }
      m.roots = ['basic', 'basic/nested']
      f.set('.manifest', Buffer.from(JSON.stringify(m)))
    }, join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_ROOTS_OVERLAP' })
  })

  test('a Rego package outside the roots is rejected', async (t) => {
    const dir = tempDir(t)
    const bad = await repack(buildFixture('basic', dir), (f) => f.set('x/evil.rego', Buffer.from('package evil\nallow := true\n')), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
  })

  test('invalid JSON and YAML data are rejected naming the file', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    for (const [file, content] of [['basic/data.json', '{"admins": ['], ['basic/nested/deeper/data.yaml', 'a: [1, 2'], ['basic/x/data.yaml', 'a: 1\na: 2\n']] as const) {
      const bad = await repack(good, (f) => f.set(file, Buffer.from(content)), join(dir, 'bad.tar.gz'))
      await assert.rejects(loadBundle(bad), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_INVALID')
        assert.equal(err.details.file, file)
        return true
      }, file)
    }
  })

  test('two data files that set the same path differently are rejected', async (t) => {
    const dir = tempDir(t)
    const bad = await repack(buildFixture('basic', dir), (f) => f.set('basic/flag/data.json', Buffer.from('{"x": 1}')), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })

  test('small data files: invalid UTF-8 and nesting deeper than 512 are refused as large ones are (DATA_INVALID at load, not at activation)', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    const cases: Array<[string, Buffer]> = [
      ['basic/u/data.json', Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')])],
      ['basic/u/data.yaml', Buffer.concat([Buffer.from('name: '), Buffer.from([0xc3, 0x28])])],
      ['basic/deep/data.json', Buffer.from('['.repeat(600) + ']'.repeat(600))],
      ['basic/deep/data.yaml', Buffer.from('a: ' + '['.repeat(600) + ']'.repeat(600))],
    ]
    for (const [file, content] of cases) {
      const bad = await repack(good, (f) => f.set(file, content), join(dir, 'bad.tar.gz'))
      await assert.rejects(loadBundle(bad), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_INVALID')
        assert.equal(err.details.file, file)
        return true
      }, file)
    }
    // 512 levels are data
    const ok = await repack(good, (f) => f.set('basic/deep/data.json', Buffer.from('['.repeat(510) + ']'.repeat(510))), join(dir, 'ok.tar.gz'))
    assert.ok((await loadBundle(ok)).data)
  })

  test('data at an entrypoint\'s path (or a non-object above it) is refused, as OPA refuses a conflicting rule', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    for (const [file, content] of [['basic/allow/data.json', '{"x":true}'], ['basic/data.json', '{"allow": true}']] as const) {
      const bad = await repack(good, (f) => f.set(file, Buffer.from(content)), join(dir, 'bad.tar.gz'))
      await assert.rejects(loadBundle(bad), (err: { code: string, details: { entrypoint?: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_INVALID')
        assert.equal(err.details.entrypoint, 'basic/allow')
        return true
      }, file)
    }
  })

  test('data.yaml reads as OPA reads it (go-yaml numbers, 1.2 booleans, merge keys, exact big integers): compared with the real opa', async (t) => {
    const dir = tempDir(t)
    const yaml = [
      'octal: 0755', 'under: 1_000', 'bin: 0b101', 'big: 12345678901234567890', 'yes_: yes', 'on_: on', 'date: 2001-12-14',
      'hex: 0x1_F', 'base: &b {role: x}', 'merged:', '  <<: *b', '  k: 1', 'float: 1.0', 'exp: 1e3', 'nul: ~', 'o17: 0o17',
      'sexa: 1:20', 'plus: +12', 'neg_octal: -0755', 'eight: 08', 'huge: 123456789012345678901234567890', 'over: 1e400',
      'quoted: "0755"', 'dot: .5', 'keys: {1: a, 0x10: b}', 'min: -9223372036854775808', 'bare_b: 0b', 'lead: _1',
    ].join('\n') + '\n'
    mkdirSync(join(dir, 'src', 'y'), { recursive: true })
    writeFileSync(join(dir, 'src', 'y', 'data.yaml'), yaml)
    const opa = runOpa(['eval', '-f', 'raw', '-d', join(dir, 'src'), 'json.marshal(data.y)']).trim()
    const out = join(dir, 'y.tar.gz')
    writeFileSync(out, await tarGz([{ name: '/.manifest', content: '{"roots":["y"]}' }, { name: '/y/data.yaml', content: yaml }]))
    const { goCanonicalJson } = await import('../../src/canonical-json.js')
    assert.equal(goCanonicalJson((await loadBundle(out)).data.y, { escapeHtml: false }), opa)
  })

  test('YAML aliases that expand a small file into a huge one are refused before they expand; .inf (no JSON for it) too', async (t) => {
    const dir = tempDir(t)
    const good = buildFixture('basic', dir)
    const anchor = `a: &a ${JSON.stringify('x'.repeat(200_000))}\n`
    const cases = [anchor + Array.from({ length: 99 }, (_, i) => `b${i}: *a`).join('\n'), 'a: &a [1, *a]\n', 'x: .inf\n']
    for (const content of cases) {
      const bad = await repack(good, (f) => f.set('basic/amp/data.yaml', Buffer.from(content)), join(dir, 'bad.tar.gz'))
      await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' }, content.slice(0, 20))
    }
    // aliases within bounds are data
    const ok = await repack(good, (f) => f.set('basic/amp/data.yaml', Buffer.from('base: &b {role: x, level: 2}\nalice: *b\nbob: {<<: *b, level: 3}\n')), join(dir, 'ok.tar.gz'))
    assert.deepEqual((await loadBundle(ok)).data.basic, { ...(await loadBundle(good)).data.basic as object, amp: { base: { role: 'x', level: 2 }, alice: { role: 'x', level: 2 }, bob: { role: 'x', level: 3 } } })
  })

  test('YAML alias bombs are refused', async (t) => {
    const dir = tempDir(t)
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`)
    const bad = await repack(buildFixture('basic', dir), (f) => f.set('basic/bomb/data.yaml', Buffer.from(lines.join('\n'))), join(dir, 'bad.tar.gz'))
    await assert.rejects(loadBundle(bad), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })

  test('Rego without wasm cannot be served and is rejected', async (t) => {
    const dir = tempDir(t)
    const src = copyFixture('basic', dir)
    rmSync(join(src, 'basic', 'nested'), { recursive: true })
    const out = join(dir, 'rego-only.tar.gz')
    execFileSync('tar', ['czf', out, '-C', src, '.'])
    await assert.rejects(loadBundle(out), { code: 'PORTCULLIS_BUNDLE_NO_WASM' })
  })

  test('a missing bundle path is PORTCULLIS_BUNDLE_NOT_FOUND', async (t) => {
    await assert.rejects(loadBundle(join(tempDir(t), 'nope.tar.gz')), { code: 'PORTCULLIS_BUNDLE_NOT_FOUND' })
  })
})
