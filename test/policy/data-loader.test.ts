import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { ExactNumber } from '../../src/canonical-json.js'
import { parseJsonInput } from '../../src/json-input.js'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBundle } from '../../src/bundles/load.js'
import { BundleManager } from '../../src/bundles/activate.js'
import { compileBundle, memoryDescriptor, type CompiledModule } from '../../src/policy/engine.js'
import { instantiatePolicy } from '../../src/policy/wasm-host.js'
import { PolicySnapshot } from '../../src/policy/snapshot.js'
import { buildDataImage, buildDataImageOffThread, imageBase, OFF_THREAD_MIN_BYTES, type DataDocument } from '../../src/policy/data-loader.js'
import { MAX_DATA_DEPTH } from '../../src/policy/data-layout.js'
import { readTarGz } from '../../src/bundles/archive.js'
import { needsOpa, runOpa } from '../helpers/opa.js'
import { tarGz } from '../helpers/tar.js'
import { buildBundleDir, buildFixture, copyFixture } from '../helpers/bundles.js'

/** Every JSON type, unicode keys and values, escapes, big and exotic numbers, repeated keys, empty containers. */
const SAMPLE = {
  null: null,
  t: true,
  f: false,
  int: 42,
  neg: -7,
  float: 3.25,
  exp: 1.5e-7,
  big: 123456789012345678901234567890,
  zero: 0,
  str: 'plain',
  escaped: 'line\nbreak "quoted" \\ tab\t \u0001',
  unicode: 'ünïcødé 日本語 🎉',
  'ключ': 'значение',
  '🔑': ['emoji key'],
  empty_obj: {},
  empty_arr: [],
  nested: { a: [1, [2, [3, { b: null }]]], c: { d: { e: 'deep' } } },
  many: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])),
  list: Array.from({ length: 300 }, (_, i) => ({ id: i, tag: i % 2 === 0 ? 'even' : 'odd' })),
}

function usersDoc (n: number): { users: Record<string, { roles: string[], attributes: Record<string, unknown> }> } {
  const users: Record<string, { roles: string[], attributes: Record<string, unknown> }> = {}
  for (let i = 0; i < n; i++) users[`user${i}`] = { roles: i % 3 === 0 ? ['admin', 'viewer'] : ['viewer'], attributes: { level: i % 10, active: i % 2 === 0 } }
  return { users }
}

interface OpaExports {
  opa_malloc: (n: number) => number
  opa_json_parse: (a: number, n: number) => number
  opa_json_dump: (a: number) => number
  opa_heap_ptr_get: () => number
}

function cString (mem: WebAssembly.Memory, addr: number): string {
  const u8 = new Uint8Array(mem.buffer)
  return new TextDecoder().decode(u8.subarray(addr, u8.indexOf(0, addr)))
}

describe('data documents written straight into wasm memory', needsOpa(), () => {
  let dir: string
  let module: CompiledModule

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-dataload-'))
    module = compileBundle(await loadBundle(buildFixture('basic', dir))).modules[0] as CompiledModule
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const doc = (json: string | Uint8Array, path: string[] = [], roots?: string[]): DataDocument =>
    ({ path, json: typeof json === 'string' ? new TextEncoder().encode(json) : json, file: 'data.json', source: 'test', ...(roots !== undefined ? { roots } : {}) })
  const build = (docs: DataDocument[], maxPages = 8192): ReturnType<typeof buildDataImage> => buildDataImage(docs, { base: imageBase([module.heapPtr]), maxPages })

  /** opa_json_dump of the image's root inside a real instance, and of the same text parsed by opa_json_parse. */
  function dumpBoth (text: string): { ours: string, opa: string } {
    const image = build([doc(text)])
    const { policy } = instantiatePolicy(module.module, image.memoryFor(memoryDescriptor({})), {})
    image.attach(policy)
    const p = policy as unknown as { wasmInstance: { exports: OpaExports }, mem: WebAssembly.Memory }
    const ours = cString(p.mem, p.wasmInstance.exports.opa_json_dump(image.root))
    const ref = instantiatePolicy(module.module, memoryDescriptor({}), {}).policy as unknown as { wasmInstance: { exports: OpaExports }, mem: WebAssembly.Memory }
    const bytes = new TextEncoder().encode(text)
    const addr = ref.wasmInstance.exports.opa_malloc(bytes.length)
    new Uint8Array(ref.mem.buffer).set(bytes, addr)
    const parsed = ref.wasmInstance.exports.opa_json_parse(addr, bytes.length)
    assert.notEqual(parsed, 0)
    return { ours, opa: cString(ref.mem, ref.wasmInstance.exports.opa_json_dump(parsed)) }
  }

  test('the layout is the one opa_json_parse builds: dumps are byte-identical (bucket order included)', () => {
    for (const value of [SAMPLE, usersDoc(2000), { a: { a: { a: {} } } }, { dup: 1, other: 2 }]) {
      const text = JSON.stringify(value)
      const { ours, opa } = dumpBoth(text)
      assert.equal(ours, opa)
    }
  })

  test('a repeated key keeps its last value, as JSON.parse does', () => {
    const image = build([doc('{"a": 1, "b": {"x": 1, "x": 2}, "a": 3}')])
    assert.deepEqual(image.read([]), { a: 3, b: { x: 2 } })
  })

  test('reads give back every JSON type, unicode and escapes intact; numbers as written (ExactNumber where a double would change them)', () => {
    const image = build([doc(JSON.stringify(SAMPLE))])
    // JSON.stringify wrote SAMPLE.big as 1.2345678901234568e+29: an integral value in exponent form, kept as written
    assert.deepEqual(image.read([]), { ...JSON.parse(JSON.stringify(SAMPLE)), big: new ExactNumber('1.2345678901234568e+29') })
    const exact = build([doc('{"big": 12345678901234567890, "f": 100.0, "e": 1e3, "neg": -0.0, "small": 0.1, "int": 42}')])
    assert.deepEqual(exact.read([]), { big: new ExactNumber('12345678901234567890'), f: new ExactNumber('100.0'), e: new ExactNumber('1e3'), neg: new ExactNumber('-0.0'), small: 0.1, int: 42 })
    assert.equal(image.read(['ключ']), 'значение')
    assert.deepEqual(image.read(['🔑']), ['emoji key'])
    assert.equal(image.read(['nested', 'c', 'd', 'e']), 'deep')
    assert.equal(image.read(['missing']), undefined)
    assert.equal(image.read(['str', 'below-a-string']), undefined)
  })

  test('documents at nested paths merge deeply; a collision of non-objects is a conflict', () => {
    const image = build([doc('{"a": {"b": {"x": 1}}}'), doc('{"b": {"y": 2}, "c": 3}', ['a']), doc('[1, 2]', ['a', 'd']), doc('"s"', ['e', 'f'])])
    assert.deepEqual(image.read([]), { a: { b: { x: 1, y: 2 }, c: 3, d: [1, 2] }, e: { f: 's' } })
    assert.throws(() => build([doc('{"a": {"b": 1}}'), doc('{"b": 2}', ['a'])]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    assert.throws(() => build([doc('{"a": 1}'), doc('{"b": 2}', ['a'])]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    assert.throws(() => build([doc('{"a": 1}', ['x']), doc('{"a": 2}', ['x'])]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })

  test('data outside the bundle roots is rejected; data above them must be objects holding only rooted data', () => {
    assert.deepEqual(build([doc('{"app": {"users": {"u": 1}}}', [], ['app/users'])]).read(['app', 'users', 'u']), 1)
    assert.throws(() => build([doc('{"app": {"users": {}, "other": 1}}', [], ['app/users'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    assert.throws(() => build([doc('{"elsewhere": {}}', [], ['app'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    assert.throws(() => build([doc('{"app": [1]}', [], ['app/users'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    assert.throws(() => build([doc('{"x": 1}', ['other'], ['app'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
  })

  test('invalid JSON of every kind is rejected with a code, never loaded half-way', () => {
    const bad = ['', ' ', '{', '{"a"}', '{"a":}', '{"a":1,}', '[1,]', '{"a":1} x', '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":-}', '{"a":1e}',
      '{"a":tru}', '{"a":nul}', "{'a':1}", '{a:1}', '{"a":"\x01"}', '{"a":"\\x"}', '{"a":"unterminated}', '{1: 2}', '{"s": {1, 2}}',
      '{"a":NaN}', '{"a":Infinity}', '{"a":+1}', '\ufeff{"a":1}', '[1]', '"root string"', 'null']
    for (const text of bad) {
      assert.throws(() => build([doc(text)]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' }, JSON.stringify(text))
    }
    assert.throws(() => build([doc(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]))]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })

  // TextDecoder's default strips a leading U+FEFF: "\ufeffblocked" was read as "blocked" and
  // merged with it (a deny list emptied), in keys of merges and in reads back
  test('a key starting with U+FEFF is its own key, as in OPA: in the layout, in merges and in reads', () => {
    for (const bom of ['\\ufeff', '\ufeff']) {
      const text = `{"${bom}blocked": [], "blocked": ["mallory"], "a": {"${bom}k": "bom"}}`
      const image = build([doc(text), doc('{"j": 1}', ['a'])])
      assert.deepEqual(image.read(['blocked']), ['mallory'], bom)
      assert.deepEqual(image.read(['\ufeffblocked']), [], bom)
      assert.deepEqual(image.read(['a']), { '\ufeffk': 'bom', j: 1 }, bom)
      const { ours, opa } = dumpBoth(text)
      assert.equal(ours, opa)
    }
  })

  test('roots are compared segment by segment: a key holding "/" is one segment, never a path into a root', () => {
    // {"a": {"b/c": ...}} under roots ["a/b"]: the key "b/c" of a is outside a/b (OPA refuses it)
    assert.throws(() => build([doc('{"a": {"b/c": "outside the roots"}}', [], ['a/b', 'q'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    assert.throws(() => build([doc('{"b/c": 1}', ['a'], ['a/b'])]), { code: 'PORTCULLIS_BUNDLE_DATA_OUTSIDE_ROOTS' })
    assert.deepEqual(build([doc('{"a": {"b": {"c/d": 1}}}', [], ['a/b'])]).read(['a', 'b', 'c/d']), 1)
  })

  test('nesting is counted from data\'s root: a document n directories down may nest n levels less (it must read back)', () => {
    const nested = (d: number): string => '['.repeat(d) + ']'.repeat(d)
    const path = ['a', 'b', 'c']
    assert.throws(() => build([doc(nested(MAX_DATA_DEPTH), path)]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    const fits = build([doc(nested(MAX_DATA_DEPTH - path.length), path)])
    // what was accepted reads back whole, from the root and from its own place
    assert.ok(fits.read([]) !== undefined)
    assert.ok(fits.jsonAt([]) !== undefined)
  })

  test('hostile data: nesting beyond the limit is rejected with a code; huge strings load; too much data for the memory limit is TOO_LARGE', () => {
    const deep = (d: number): string => '{"a":' + '['.repeat(d) + ']'.repeat(d) + '}'
    assert.deepEqual(build([doc(deep(MAX_DATA_DEPTH - 2))]).read([]) !== undefined, true)
    for (const d of [MAX_DATA_DEPTH + 1, 200_000]) assert.throws(() => build([doc(deep(d))]), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    const huge = 'x'.repeat(8 * 1024 * 1024)
    assert.equal((build([doc(JSON.stringify({ huge }))]).read(['huge']) as string).length, huge.length)
    assert.throws(() => build([doc(JSON.stringify({ huge }))], 64), { code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
  })
})

describe('policies over large data documents', needsOpa(), () => {
  let dir: string

  before(() => { dir = mkdtempSync(join(tmpdir(), 'portcullis-bigdata-')) })
  after(() => rmSync(dir, { recursive: true, force: true }))

  /** Builds the bigdata fixture with `files` (bundle-relative path -> JSON text) added. */
  function bigBundle (files: Record<string, string>, revision = 'r1'): string {
    const src = copyFixture('bigdata', dir)
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(src, name, '..'), { recursive: true })
      writeFileSync(join(src, name), text)
    }
    return buildBundleDir(src, join(src, '..', `bigdata-${revision}-${Math.random().toString(36).slice(2, 8)}.tar.gz`), { revision })
  }

  const files = {
    'bigdata/users/data.json': JSON.stringify(usersDoc(5000).users),
    // (the exact big number is written as text: a JS number literal could not hold it)
    'bigdata/values/data.json': JSON.stringify({ ...SAMPLE, big: 0 }).replace('"big":0', '"big":123456789012345678901234567890'),
    'bigdata/data.json': JSON.stringify({ meta: { source: 'hr' } }),
  }

  test('decisions and Data API reads over data parsed from the exact bytes equal those over the JS path', async () => {
    const path = bigBundle(files)
    const viaWasm = new PolicySnapshot(1, [{ compiled: compileBundle(await loadBundle(path, { largeDataBytes: 0 })), activatedAt: new Date() }])
    const viaJs = new PolicySnapshot(1, [{ compiled: compileBundle(await loadBundle(path, { largeDataBytes: Infinity })), activatedAt: new Date() }])
    for (const s of [viaWasm, viaJs]) {
      assert.equal(s.evaluate('bigdata/allow', { user: 'user3', role: 'admin' }).result, true)
      assert.equal(s.evaluate('bigdata/allow', { user: 'user4', role: 'admin' }).result, false)
      assert.equal(s.evaluate('bigdata/allow', { user: 'nobody', role: 'viewer' }).result, false)
      assert.equal(s.evaluate('bigdata/user_count', {}).result, 5000)
    }
    // Numbers keep their exact text on both paths, as OPA keeps them: the small-document path
    // parses data files keeping numbers a double cannot hold (bundles/load.ts).
    for (const s of [viaWasm, viaJs]) assert.equal(s.evaluate('bigdata/big_is_exact', {}).result, true)
    for (const key of Object.keys(SAMPLE)) {
      assert.deepEqual(viaWasm.evaluate('bigdata/value', { key }), viaJs.evaluate('bigdata/value', { key }), key)
    }
    // The decision result carries it exactly too (resultJson, what the Data API writes), as OPA answers it.
    for (const s of [viaWasm, viaJs]) {
      const big = s.evaluate('bigdata/value', { key: 'big' })
      assert.equal(big.resultJson, '123456789012345678901234567890')
      assert.equal(big.result, 123456789012345678901234567890)
      // and a read of the data itself (no rule): the number as written, here and inside its object
      const read = s.evaluate('bigdata/values/big', undefined)
      assert.equal(read.resultJson, '123456789012345678901234567890')
      assert.equal(read.result, 123456789012345678901234567890)
      assert.match(s.evaluate('bigdata/values', undefined).resultJson ?? '', /"big":123456789012345678901234567890[,}]/)
      // an input number is compared with the data digit for digit, as OPA compares them (caller JSON parsed as the Data API parses it)
      assert.equal(s.evaluate('bigdata/input_matches', parseJsonInput('{"id":123456789012345678901234567890}', 64)).result, true)
      assert.equal(s.evaluate('bigdata/input_matches', parseJsonInput('{"id":123456789012345678901234567891}', 64)).result, false)
    }
    for (const p of ['bigdata/values/unicode', 'bigdata/values/ключ', 'bigdata/users/user7', 'bigdata/meta', 'bigdata/values/nested/a']) {
      assert.deepEqual(viaWasm.evaluate(p, undefined).result, viaJs.evaluate(p, undefined).result, p)
    }
    // A data read is made from the image each time, not pinned as a JS copy of a large subtree.
    const users = viaWasm.evaluate('bigdata/users', undefined).result
    assert.equal(Object.keys(users as object).length, 5000)
    assert.notEqual(viaWasm.evaluate('bigdata/users', undefined).result, users)
  })

  test('several bundles: each policy sees the merged data of all, big or small', async () => {
    const compiled = [
      { compiled: compileBundle(await loadBundle(bigBundle(files), { largeDataBytes: 0 })), activatedAt: new Date() },
      { compiled: compileBundle(await loadBundle(buildFixture('basic', dir))), activatedAt: new Date() },
    ]
    const s = new PolicySnapshot(2, compiled)
    assert.equal(s.evaluate('bigdata/allow', { user: 'user0', role: 'admin' }).result, true)
    assert.equal(s.evaluate('basic/allow', { user: 'alice' }).result, true)
    assert.deepEqual(s.evaluate('basic/admins', undefined).result, ['alice', 'bob'])
    assert.equal(s.evaluate('bigdata/values/int', undefined).result, 42)
  })

  test('a bundle with invalid large data is rejected at activation and the last known good keeps serving', async () => {
    const manager = new BundleManager({ load: { largeDataBytes: 0 } })
    const target = join(dir, 'live.tar.gz')
    const good = bigBundle(files, 'good')
    const goodFiles = await readTarGz(readFileSync(good), good)
    // opa build refuses invalid data (and merges data files into one data.json), so the bad
    // revisions are the good archive with a data file replaced or added.
    const swap = async (replace?: { name: string, text: string }): Promise<boolean> => {
      const members = [...goodFiles].map(([name, content]) => ({ name, content: name === replace?.name ? replace.text : content }))
      if (replace !== undefined && !goodFiles.has(replace.name)) members.push({ name: replace.name, content: replace.text })
      writeFileSync(target, await tarGz(members))
      return manager.load(target, 'bigdata')
    }
    assert.equal(await swap(), true)
    const deep = '{"bigdata":' + '['.repeat(MAX_DATA_DEPTH + 5) + ']'.repeat(MAX_DATA_DEPTH + 5) + '}'
    const bad = [
      ['data.json', '{"bigdata": {"users": {"user0": {"roles": ["admin"]}}'], // truncated
      ['data.json', deep],
      ['bigdata/users/user3/data.json', '{"roles": ["viewer"]}'], // conflicts with data.json's user3
      ['bigdata/meta/data.json', '7'], // conflicts with data.json's object at bigdata/meta
    ] as const
    for (const [name, text] of bad) {
      assert.equal(await swap({ name, text }), false, name)
      assert.equal(manager.status()[0]?.last_error?.code, 'PORTCULLIS_BUNDLE_DATA_INVALID')
      assert.equal(manager.snapshot.evaluate('bigdata/allow', { user: 'user3', role: 'admin' }).result, true)
      assert.equal(manager.snapshot.revisions().bigdata?.revision, 'good')
    }
  })

  test('once served, large data lives only in the image: other bundles come and go and it stays exact', async () => {
    const manager = new BundleManager({ load: { largeDataBytes: 0 } })
    const big = join(dir, 'big.tar.gz')
    writeFileSync(big, readFileSync(bigBundle(files)))
    assert.equal(await manager.load(big, 'bigdata'), true)
    const active = [...manager.snapshot.bundles.values()][0]?.compiled.bundle
    assert.equal(active?.largeData, undefined) // released
    const check = (): void => {
      assert.equal(manager.snapshot.evaluate('bigdata/allow', { user: 'user3', role: 'admin' }).result, true)
      assert.equal(manager.snapshot.evaluate('bigdata/user_count', {}).result, 5000)
      assert.equal(manager.snapshot.evaluate('bigdata/big_is_exact', {}).result, true)
      assert.equal(manager.snapshot.evaluate('bigdata/values/ключ', undefined).result, 'значение')
      assert.deepEqual(manager.snapshot.evaluate('bigdata/meta', undefined).result, { source: 'hr' })
    }
    check()
    const basic = buildFixture('basic', dir)
    assert.equal(await manager.load(basic, 'basic'), true)
    check()
    assert.equal(manager.snapshot.evaluate('basic/allow', { user: 'alice' }).result, true)
    assert.equal(await manager.load(basic, 'basic'), true)
    assert.equal(await manager.remove('basic'), true)
    check()
    assert.equal(manager.snapshot.evaluate('basic/allow', { user: 'alice' }).defined, false)
  })

  test('after a wasm trap the replacement instance gets the same data (copied, not re-parsed)', async () => {
    const compiled = compileBundle(await loadBundle(bigBundle(files), { largeDataBytes: 0 }), { memory: { maxPages: 200 } })
    const s = new PolicySnapshot(1, [{ compiled, activatedAt: new Date() }])
    assert.throws(() => s.evaluate('bigdata/allow', { user: 'x'.repeat(16 * 1024 * 1024), role: 'admin' }), { code: 'PORTCULLIS_POLICY_EVAL_FAILED' })
    assert.equal(s.evaluate('bigdata/allow', { user: 'user6', role: 'admin' }).result, true)
    assert.equal(s.evaluate('bigdata/user_count', {}).result, 5000)
  })
})

describe('data images built on a worker thread', () => {
  const doc = (text: string): DataDocument => ({ path: [], json: new TextEncoder().encode(text), file: 'data.json', source: 'test', roots: [''] })
  const opts = { base: 1 << 20, maxPages: 8192 }

  test('the image is the one built in place', async () => {
    const text = JSON.stringify(usersDoc(30_000))
    assert.ok(text.length >= OFF_THREAD_MIN_BYTES)
    const off = await buildDataImageOffThread([doc(text)], opts)
    const inPlace = buildDataImage([doc(text)], opts)
    assert.deepEqual([off.base, off.end, off.root], [inPlace.base, inPlace.end, inPlace.root])
    assert.deepEqual(Buffer.from(off.segment()), Buffer.from(inPlace.segment()))
    assert.deepEqual(off.read(['users', 'user29999']), { roles: ['viewer'], attributes: { level: 9, active: false } })
  })

  test('errors come back as the same BundleError codes', async () => {
    const text = JSON.stringify(usersDoc(30_000))
    await assert.rejects(buildDataImageOffThread([doc(text.slice(0, -1))], opts), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    await assert.rejects(buildDataImageOffThread([doc(text)], { ...opts, maxPages: 40 }), { code: 'PORTCULLIS_BUNDLE_TOO_LARGE' })
  })
})

// A key repeated within one object of an (unsigned) data document: OPA keeps the last value
// (Go's decoder); so does the small-document path (JSON.parse). The large-document path must
// give the same data or refuse the document, never a third reading (the security review's F1:
// it merged both occurrences where an earlier document had put an object).
describe('a key repeated in one object of a data document: the data opa eval -d gives, or refused', needsOpa(), () => {
  let dir: string
  let base: Map<string, Buffer>
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-dupkeys-'))
    const built = buildBundleDir(copyFixture('bigdata', dir), join(dir, 'base.tar.gz'))
    base = await readTarGz(readFileSync(built), built)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  const PAD = 'x'.repeat(4000)
  let n = 0
  /** The bigdata bundle with raw data files added as written (no opa build: it would rewrite them). */
  async function bundleWith (files: Record<string, string>): Promise<string> {
    const out = join(dir, `b${n++}.tar.gz`)
    const members = [...base].filter(([name]) => name !== 'data.json').map(([name, content]) => ({ name: `/${name}`, content }))
    for (const [name, text] of Object.entries(files)) members.push({ name: `/${name}`, content: Buffer.from(text) })
    writeFileSync(out, await tarGz(members))
    return out
  }
  /** What OPA makes of the same files: `opa eval -d` over them as a directory tree. */
  function opaData (files: Record<string, string>): unknown {
    const d = join(dir, `opa${n++}`)
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(d, name, '..'), { recursive: true })
      writeFileSync(join(d, name), text)
    }
    const out = JSON.parse(runOpa(['eval', '-f', 'json', '-d', d, 'data.bigdata.t'])) as { result: Array<{ expressions: Array<{ value: unknown }> }> }
    return out.result[0]?.expressions[0]?.value
  }
  /** data.bigdata.t as Portcullis loads it with `largeDataBytes`, or the refusal's code. */
  async function portcullisData (path: string, largeDataBytes: number): Promise<unknown> {
    try {
      const b = await loadBundle(path, { largeDataBytes })
      const s = new PolicySnapshot(1, [{ compiled: compileBundle(b), activatedAt: new Date() }])
      return s.evaluate('bigdata/t', undefined).result
    } catch (err) {
      return { refused: (err as { code?: string }).code }
    }
  }

  test('a repeated key where no other document put anything: last wins on both paths, as in OPA', async () => {
    const files = { 'bigdata/t/data.json': `{"pad":"${PAD}","cfg":{"admin_override":true},"n":1,"cfg":{"mode":"strict"},"n":{"x":1},"list":[1],"o":{"k":1,"k":2,"k":{"z":true},"k":{"y":null}},"list":[2]}` }
    const want = opaData(files)
    assert.deepEqual((want as { cfg: unknown }).cfg, { mode: 'strict' })
    const path = await bundleWith(files)
    for (const large of [0, 1000, Infinity]) assert.deepEqual(await portcullisData(path, large), want, `largeDataBytes ${large}`)
  })

  test('a repeated key whose place another document already filled with an object: the small path as OPA, the large path refuses (no merge of both)', async () => {
    const files = {
      'bigdata/t/data.json': `{"pad":"${PAD}","cfg":{"admin_override":true},"cfg":{"mode":"strict"}}`,
      'bigdata/t/cfg/meta/data.json': '{"owner":"team-a"}',
    }
    const want = opaData(files)
    assert.deepEqual((want as { cfg: unknown }).cfg, { mode: 'strict', meta: { owner: 'team-a' } })
    const path = await bundleWith(files)
    assert.deepEqual(await portcullisData(path, Infinity), want)
    // the small document is placed first, then the large one merges into cfg and repeats it
    assert.deepEqual(await portcullisData(path, 1000), { refused: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    // both large: OPA's data if placed in file order with the large one first, else refused
    const both = await portcullisData(path, 0)
    assert.ok(isDeepStrictEqual(both, want) || isDeepStrictEqual(both, { refused: 'PORTCULLIS_BUNDLE_DATA_INVALID' }), JSON.stringify(both))
    // deeper: the repeated key one level down in the merged object
    const deeper = {
      'bigdata/t/data.json': `{"pad":"${PAD}","cfg":{"sub":{"admin":true},"sub":{"mode":"strict"}}}`,
      'bigdata/t/cfg/sub/meta/data.json': '{"owner":"team-a"}',
    }
    assert.deepEqual((opaData(deeper) as { cfg: unknown }).cfg, { sub: { mode: 'strict', meta: { owner: 'team-a' } } })
    const deeperPath = await bundleWith(deeper)
    assert.deepEqual(await portcullisData(deeperPath, Infinity), opaData(deeper))
    assert.deepEqual(await portcullisData(deeperPath, 1000), { refused: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })
})
