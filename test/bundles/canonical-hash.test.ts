import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { opaCanonicalJson, writeOpaCanonicalJson } from '../../src/bundles/canonical-hash.js'
import { hashBundleFile, hashFilesOffThread, OFF_THREAD_HASH_BYTES, type SigningPolicy } from '../../src/bundles/verify.js'
import { loadBundle } from '../../src/bundles/load.js'
import { DEFAULT_ARCHIVE_LIMITS, readBundleDir, readTarGz, type BundleFiles } from '../../src/bundles/archive.js'
import { MAX_DATA_DEPTH } from '../../src/policy/data-layout.js'
import { goCanonicalJsonFromTextOracle } from '../helpers/canonical-json-oracle.js'
import { buildBundleDir, copyFixture } from '../helpers/bundles.js'
import { needsOpa, runOpa } from '../helpers/opa.js'
import { tarGz } from '../helpers/tar.js'

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

/**
 * The oracle's outcome for bytes: its canonical text, or 'throws'. It hashed the UTF-8 decoding
 * of the bytes, as verify.ts did; in strict mode (what a signed file must be now) it also
 * refuses invalid UTF-8 (the bytes do not survive decoding and encoding again), lone surrogate
 * escapes and repeated keys.
 */
function oracle (bytes: Buffer, strict = true): string {
  const text = bytes.toString('utf8')
  if (strict && !Buffer.from(text, 'utf8').equals(bytes)) return 'throws'
  try {
    return goCanonicalJsonFromTextOracle(text, { strict })
  } catch {
    return 'throws'
  }
}

function streamed (bytes: Buffer): string {
  try {
    return opaCanonicalJson(bytes).toString('utf8')
  } catch (err) {
    assert.ok(err instanceof SyntaxError, `invalid input must throw a SyntaxError, got ${String(err)}`)
    return 'throws'
  }
}

/** Asserts the new canonicalizer agrees with the oracle on `text`, as text and as the hash verify.ts computes. */
function agree (text: string): void {
  const bytes = Buffer.from(text, 'utf8')
  const want = oracle(bytes)
  const got = streamed(bytes)
  assert.equal(got, want, `input ${JSON.stringify(text)}`)
  if (want !== 'throws') assert.equal(hashBundleFile('data.json', bytes, 'SHA-256'), sha256(want))
}

// --- generators of JSON text: whitespace, escapes of every kind, surrogates, duplicate keys, odd numbers

/** A private-use character that the opa differential replaces with invalid UTF-8 bytes (elsewhere an ordinary character). */
const INVALID_UTF8_MARK = '\ue000'
const hex4 = (n: number, upper: boolean): string => {
  const h = n.toString(16).padStart(4, '0')
  return upper ? h.toUpperCase() : h
}
const ws = fc.constantFrom('', '', '', '', ' ', '\n', '\t', '\r\n  ')
const rawChar = fc.constantFrom('a', 'b', 'z', 'A', ' ', '!', '#', '/', '<', '>', '&', '\u007f', '\u00e9', '\u4e2d', '\uff61', '\u{1F600}', '\ufffd', '\u2028', '\u2029', '\ud800', '\udc00', INVALID_UTF8_MARK)
const escape = fc.oneof(
  fc.constantFrom('\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\ud83d\\ude00', '\\uD83D\\uDE00', '\\ud800', '\\udc00', '\\ud800\\ud800\\udc00', '\\udbff\\udfff', '\\u2028', '\\u0000', '\\u001f'),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.boolean()).map(([n, up]) => `\\u${hex4(n, up)}`),
)
// any code point written raw where JSON allows it, escaped where it must be
const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }).map((c) => {
  const cp = c.codePointAt(0) as number
  return cp < 0x20 || c === '"' || c === '\\' ? `\\u${hex4(cp, false)}` : c
})
const stringLit = fc.array(fc.oneof(rawChar, escape, anyChar), { maxLength: 8 }).map((p) => `"${p.join('')}"`)
const keyLit = fc.oneof(
  fc.constantFrom('"a"', '"b"', '"A"', '"a "', '""', '"\\u0061"', '"\u00e9"', '"\\u00e9"', '"\uff61"', '"\u{1F600}"', '"\\ud83d\\ude00"', '"\\ud800"', '"\\udc00"', '"\ud800"', '"\ufffd"', '"<"', '"__proto__"', '"0"', '"10"', '"9"'),
  stringLit,
)
const numberLit = fc.oneof(
  fc.constantFrom('0', '-0', '1E+2', '1e-2', '1.50', '-0.0e0', '1E400', '-1e-400', '12345678901234567890123', '0.1e+0001', '2.0'),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
)
const scalarLit = fc.oneof(numberLit, stringLit, fc.constantFrom('true', 'false', 'null'))

const { value: valueLit } = fc.letrec<{ value: string, array: string, object: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarLit, tie('array'), tie('object')),
  array: fc.array(fc.tuple(ws, tie('value'), ws), { maxLength: 5 }).chain((items) =>
    ws.map((w) => `[${items.length === 0 ? w : items.map(([a, v, b]) => a + v + b).join(',')}]`)),
  object: fc.array(fc.tuple(ws, keyLit, ws, ws, tie('value'), ws), { maxLength: 6 }).chain((members) =>
    ws.map((w) => `{${members.length === 0 ? w : members.map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`).join(',')}}`)),
}))

/** Compact text with keys sorted in UTF-16 order: often already canonical (the fast path), sometimes not (astral keys). */
function sortedText (v: unknown): string {
  const sort = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sort)
    if (x === null || typeof x !== 'object') return x
    return Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort((x as Record<string, unknown>)[k])]))
  }
  return JSON.stringify(sort(v))
}

const deepLit = fc.tuple(fc.integer({ min: 1, max: MAX_DATA_DEPTH }), scalarLit, fc.boolean()).map(([d, s, obj]) =>
  obj ? '{"a":'.repeat(d - 1) + `[${s}]` + '}'.repeat(d - 1) : '['.repeat(d) + s + ']'.repeat(d))

// objects with more members than the insertion-sort cut-off, duplicates included
const wideObjectLit = fc.array(fc.tuple(keyLit, fc.oneof(scalarLit, valueLit)), { minLength: 17, maxLength: 40 }).map((ms) => `{${ms.map(([k, v]) => `${k}:${v}`).join(',')}}`)

const documentLit = fc.oneof(
  { arbitrary: fc.tuple(ws, valueLit, ws).map(([a, v, b]) => a + v + b), weight: 6 },
  { arbitrary: fc.jsonValue().map(sortedText), weight: 2 },
  { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v, null, 1)), weight: 1 },
  { arbitrary: deepLit, weight: 1 },
  { arbitrary: wideObjectLit, weight: 1 },
)

// a mutation: delete, insert or replace one character (mostly JSON's own punctuation)
const mutation = fc.tuple(fc.nat(), fc.constantFrom('delete', 'insert', 'replace'), fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0', '-', 'e', '.', 'u', 'n', 'x', '\u0001', '\ud800'))
function mutate (text: string, ops: Array<[number, string, string]>): string {
  let t = text
  for (const [at, op, ch] of ops) {
    const i = t.length === 0 ? 0 : at % (t.length + 1)
    if (op === 'delete') t = t.slice(0, i) + t.slice(i + 1)
    else if (op === 'insert') t = t.slice(0, i) + ch + t.slice(i)
    else t = t.slice(0, i) + ch + t.slice(i + 1)
  }
  return t
}

const seed = Number(process.env.FC_SEED ?? 20261201)

test('the same canonical text (and hash) as the value-path oracle on generated JSON documents', () => {
  fc.assert(fc.property(documentLit, (text) => { agree(text) }), { numRuns: 4000, seed })
})

test('the same outcome as the oracle on mutated documents: both refuse, or both give the same text', () => {
  fc.assert(fc.property(documentLit, fc.array(mutation, { minLength: 1, maxLength: 3 }), (text, ops) => { agree(mutate(text, ops)) }), { numRuns: 4000, seed: seed + 1 })
})

test('Go\'s rules, case by case: numbers as written, byte-order keys, Go string escapes', () => {
  const c = (s: string): string => opaCanonicalJson(Buffer.from(s)).toString()
  assert.equal(c(' { "b" : 1.50, "a": [1E+2, -0, "<&>"] } '), '{"a":[1E+2,-0,"<&>"],"b":1.50}')
  // U+FF61 sorts before U+1F600 in UTF-8 bytes, after it in UTF-16 code units
  assert.equal(c('{"\u{1F600}":1,"\uff61":2}'), '{"\uff61":2,"\u{1F600}":1}')
  assert.equal(c('{"a ":1,"\u0061":3}'), '{"a":3,"a ":1}')
  assert.equal(c('"\\u0041\\/\\b\\f\\n\\r\\t\\u0001\\u001F\\u007f\\u00e9\\u2028\u2029\\ud83d\\ude00"'), '"A/\\b\\f\\n\\r\\t\\u0001\\u001f\u007f\u00e9\\u2028\\u2029\u{1F600}"')
  assert.equal(c('{"\\uD83D\\uDE00":[],"\\u00e9\\u0000":{"x":"\\ud83d\\ude00"}}'), '{"\u00e9\\u0000":{"x":"\u{1F600}"},"\u{1F600}":[]}')
})

test('stricter than Go, refused: a repeated key, a lone surrogate escape, invalid UTF-8 in a string (docs/policies.md §5)', () => {
  // Go reads each of these one way (last key wins, U+FFFD) and JavaScript (JSON.parse, the data
  // loaders) another, or could merge where Go replaces: a signed file the hash and the loader
  // could read differently is refused.
  const refused = [
    '{"a":1,"a":2}', '{"a":1,"b":2,"a":3}', '{"a":1,"\\u0061":2}', '{"b":{"x":1},"a":0,"b":{"y":2}}',
    `{${Array.from({ length: 40 }, (_, k) => `"k${k % 39}":${k}`).join(',')}}`,
    '"\\ud800"', '"\\udc00"', '"\\ud800\\ud800\\udc00"', '"\\ud83dx"', '"\\ud83d\\u0041"', '{"\\ud800":1}', '{"guest\\ud800":1,"guest\ufffd":2}',
    '{"perm":{"k":"a","k":"b"}}', '[{"a":1,"a":1}]',
  ]
  for (const s of refused) {
    assert.throws(() => opaCanonicalJson(Buffer.from(s)), SyntaxError, s)
    assert.throws(() => hashBundleFile('.manifest', Buffer.from(s), 'SHA-256'), SyntaxError, s)
  }
  for (const bad of [[0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x9f, 0x98], [0x80], [0xff], [0xf5]]) {
    for (const [a, b] of [['["', '"]'], ['{"k', '":1}'], ['{"v":"x', 'y"}']]) {
      const bytes = Buffer.concat([Buffer.from(a as string), Buffer.from(bad), Buffer.from(b as string)])
      assert.throws(() => opaCanonicalJson(bytes), SyntaxError, JSON.stringify(bytes.toString('latin1')))
    }
  }
  // what is valid stays valid: U+FFFD written as itself or escaped, a surrogate pair, a key that only looks repeated
  assert.equal(opaCanonicalJson(Buffer.from('{"a\ufffd":1,"a\\ufffd ":2,"\\udbff\\udfff":3,"A":4}')).toString(), '{"A":4,"a\ufffd":1,"a\ufffd ":2,"\u{10FFFF}":3}')
})

test('invalid UTF-8 outside a string is invalid JSON', () => {
  assert.throws(() => opaCanonicalJson(Buffer.from([0x5b, 0xe2, 0x5d])), SyntaxError)
})

test('invalid JSON is refused with a SyntaxError', () => {
  for (const s of ['', ' ', '{', '[1,]', '{"a":1,}', '01', '1.', '.5', '+1', '1e', '"\\x"', '"\\u12"', '{"a" 1}', '[1 2]', 'nul', 'True', '"\u0001"', '1 2', '{1:2}', '-', '[1}', '{"a":1]', '"abc', '\ufeff{}']) {
    assert.throws(() => opaCanonicalJson(Buffer.from(s)), SyntaxError, JSON.stringify(s))
  }
})

test('nesting is bounded by the data depth limit, iteratively: a hostile depth is a SyntaxError, not a stack overflow', () => {
  const nest = (d: number): Buffer => Buffer.from('['.repeat(d) + ']'.repeat(d))
  assert.equal(opaCanonicalJson(nest(MAX_DATA_DEPTH)).toString(), nest(MAX_DATA_DEPTH).toString())
  assert.throws(() => opaCanonicalJson(nest(MAX_DATA_DEPTH + 1)), SyntaxError)
  assert.throws(() => opaCanonicalJson(Buffer.from('{"a":'.repeat(1_000_000))), SyntaxError)
  assert.throws(() => hashBundleFile('data.json', nest(200_000), 'SHA-256'), SyntaxError)
})

/** Data of the large-data benchmark's shape: users with unsorted member keys, compact. */
function entitlements (users: number): string {
  const parts: string[] = []
  for (let i = 0; i < users; i++) {
    const id = `user${String(i).padStart(7, '0')}`
    parts.push(`${JSON.stringify(id)}:${JSON.stringify({ email: `${id}@example.com`, roles: ['admin', i % 2 === 0 ? 'viewer' : 'editor'], attributes: { department: 'eng', level: i % 10, active: i % 3 === 0, region: `r${i % 20}` } })}`)
  }
  return `{"users":{${parts.join(',')}}}`
}

test('documents larger than the output chunk: compact, pretty, and canonical ranges larger than a chunk', () => {
  const compact = entitlements(5000)
  agree(compact)
  agree(JSON.stringify(JSON.parse(compact), null, 2))
  // already canonical as a whole: handed to the sink as one source range
  const canonical = sortedText(JSON.parse(compact))
  const chunks: number[] = []
  writeOpaCanonicalJson(Buffer.from(canonical), (c) => { chunks.push(c.length) })
  assert.equal(chunks.length, 1)
  agree(canonical)
})

/** Hostile and pathological inputs of about `size` bytes (the security review's DoS shapes, smaller). */
function hostile (size: number): Record<string, Buffer> {
  const repeat = (unit: string, wrap: (s: string) => string): Buffer => Buffer.from(wrap(unit.repeat(Math.floor(size / unit.length))))
  const invalid = Buffer.alloc(size + 9, 0xff)
  invalid.write('{"s":"', 0, 'latin1')
  invalid.write('"}', size + 7, 'latin1')
  const shuffled: string[] = []
  for (let n = 0, len = 0; len < size; n++) {
    const k = `"${((n * 2654435761) % 4294967291).toString(36)}${n}":${n % 7},`
    shuffled.push(k)
    len += k.length
  }
  const escKeys: string[] = []
  for (let n = 0, len = 0; len < size; n++) {
    const k = `"\\u00${(0x41 + n % 26).toString(16)}${n}":0,`
    escKeys.push(k)
    len += k.length
  }
  return {
    invalidUtf8: invalid,
    repeatedKey: repeat('"a":0,', (s) => `{${s}"b":1}`),
    repeatedKeysApart: repeat('"a":0,"b":1,', (s) => `{${s}"c":2}`),
    loneSurrogates: repeat('\\ud800', (s) => `{"s":"${s}"}`),
    shuffledKeys: Buffer.from(`{${shuffled.join('').slice(0, -1)}}`),
    escapedKeys: Buffer.from(`{${escKeys.join('').slice(0, -1)}}`),
    escapes: repeat('\\u0041\\ud83d\\ude00', (s) => `{"s":"${s}"}`),
    emptyArrays: repeat('[],', (s) => `[${s}[]]`),
  }
}

test('hostile 4 MiB inputs finish with stable outcomes, on this thread and on the hashing worker', async () => {
  const inputs = hostile(4 << 20)
  const refused = new Set(['invalidUtf8', 'repeatedKey', 'repeatedKeysApart', 'loneSurrogates'])
  const names = Object.keys(inputs)
  const offThread = await hashFilesOffThread(names.map((name) => ({ name: 'data.json', bytes: inputs[name] as Buffer, algorithm: 'SHA-256' })))
  for (const [k, name] of names.entries()) {
    const bytes = inputs[name] as Buffer
    assert.ok(bytes.length >= OFF_THREAD_HASH_BYTES, name)
    if (refused.has(name)) {
      assert.throws(() => hashBundleFile('data.json', bytes, 'SHA-256'), SyntaxError, name)
      assert.ok(offThread[k] instanceof SyntaxError, `${name}: ${String(offThread[k])}`)
    } else {
      const want = sha256(oracle(bytes))
      assert.equal(hashBundleFile('data.json', bytes, 'SHA-256'), want, name)
      assert.equal(offThread[k], want, name)
    }
  }
})

// Keys are generated here (node:crypto); the signatures are made by the real opa: `opa build
// --signing-key` (which writes the data files merged into one data.json, in its own canonical
// form) and `opa sign` over a bundle directory (which signs data files exactly as written).
describe('signed bundles with large and unusual JSON, signed by the real opa', needsOpa(), () => {
  let dir: string
  /** opa build -t wasm --signing-key, with ~2.7 MB of data (above the 1 MiB line where data.json goes to the engine as bytes). */
  let built: BundleFiles
  /** opa sign over a directory: the same data written by us (members out of order) plus JSON that Go decodes differently from JavaScript. */
  let raw: BundleFiles
  let policy: SigningPolicy

  /** A .tar.gz of `files` after `edit`. */
  async function pack (files: BundleFiles, edit: (f: BundleFiles) => void = () => {}): Promise<string> {
    const copy = new Map(files)
    edit(copy)
    const out = join(dir, `bundle-${Math.random().toString(36).slice(2)}.tar.gz`)
    writeFileSync(out, await tarGz([...copy].map(([name, content]) => ({ name: `/${name}`, content }))))
    return out
  }
  /** Replaces `from` in file `name`; the edit must take place (or the test would prove nothing). */
  const edit = (f: BundleFiles, name: string, from: string | RegExp, to: string): void => {
    const before = (f.get(name) as Buffer).toString('latin1')
    const after = typeof from === 'string' ? before.replaceAll(from, to) : before.replace(from, to)
    assert.ok(after !== before, `the edit of ${name} did not apply`)
    f.set(name, Buffer.from(after, 'latin1'))
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-canon-'))
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const keyFile = join(dir, 'ec.key')
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
    policy = { verification: { keyId: 'default', keys: { default: { key: publicKey.export({ type: 'spki', format: 'pem' }) as string, algorithm: 'ES256' } } } }
    const large = entitlements(18_000)

    const srcA = copyFixture('basic', dir)
    mkdirSync(join(srcA, 'basic', 'large'))
    writeFileSync(join(srcA, 'basic', 'large', 'data.json'), large)
    const signed = buildBundleDir(srcA, join(dir, 'built.tar.gz'), { signingKey: keyFile, signingAlg: 'ES256' })
    built = await readTarGz(readFileSync(signed), signed)

    const unsigned = buildBundleDir(copyFixture('basic', dir), join(dir, 'unsigned.tar.gz'))
    const dirB = join(dir, 'raw')
    for (const [name, content] of await readTarGz(readFileSync(unsigned), unsigned)) {
      mkdirSync(dirname(join(dirB, name)), { recursive: true })
      writeFileSync(join(dirB, name), content)
    }
    mkdirSync(join(dirB, 'basic', 'large'))
    writeFileSync(join(dirB, 'basic', 'large', 'data.json'), large)
    mkdirSync(join(dirB, 'basic', 'tricky'))
    writeFileSync(join(dirB, 'basic', 'tricky', 'data.json'), Buffer.from(
      '{\n  "z": [1E+2, -0, 1.50, 123456789012345678901234567890],\n  "s": "ok \ufffd \\ufffd \\u2028\u2029 <&> \\ud83d\\ude00 \u{1F600}",\n  "\\u0062": 1, "a": 1, "\\u00e9": {"y": null, "x": true}, "\u00e8": []\n}\n'))
    // opa sign writes no key id into the JWS: the verifier names the key (OPA's verification.keyid)
    runOpa(['sign', '--signing-key', keyFile, '--signing-alg', 'ES256', '--bundle', '.', '-o', '.'], { cwd: dirB })
    raw = await readBundleDir(dirB, DEFAULT_ARCHIVE_LIMITS)
    keyFileOf = keyFile
  })
  let keyFileOf: string

  /**
   * `raw`'s files (without its signature and the tricky file) with `files` added or replaced,
   * signed by the real `opa sign` over the files as written; the directory's path.
   */
  let signedCount = 0
  function signAsWritten (files: Record<string, Buffer>): string {
    const d = join(dir, `as-written-${signedCount++}`)
    for (const [name, content] of raw) {
      if (name === '.signatures.json' || name === 'basic/tricky/data.json') continue
      mkdirSync(dirname(join(d, name)), { recursive: true })
      writeFileSync(join(d, name), content)
    }
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(d, name)), { recursive: true })
      writeFileSync(join(d, name), content)
    }
    runOpa(['sign', '--signing-key', keyFileOf, '--signing-alg', 'ES256', '--bundle', '.', '-o', '.'], { cwd: d })
    return d
  }
  /** The file hashes in the payload of a directory's .signatures.json (what opa signed). */
  function signedHashes (d: string): Map<string, string> {
    const token = (JSON.parse(readFileSync(join(d, '.signatures.json'), 'utf8')) as { signatures: string[] }).signatures[0] as string
    const files = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { files: Array<{ name: string, hash: string }> }).files
    return new Map(files.map((f) => [f.name, f.hash]))
  }
  const B = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p as string)))
  /** A copy of signed directory `d`, its .signatures.json kept, with `files` replaced. */
  function tamper (d: string, files: Record<string, Buffer>): string {
    const t = `${d}-tampered-${signedCount++}`
    cpSync(d, t, { recursive: true })
    for (const [name, content] of Object.entries(files)) writeFileSync(join(t, name), content)
    return t
  }
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('opa build --signing-key: the bundle with a large data.json verifies', async () => {
    assert.ok((built.get('data.json') as Buffer).length > 2_000_000)
    const b = await loadBundle(await pack(built), policy)
    assert.deepEqual(b.signature, { state: 'verified', keyId: 'default', algorithm: 'ES256' })
  })

  test('opa sign: data files as written (members out of order, escapes, surrogate pairs, odd numbers) verify', async () => {
    assert.equal((await loadBundle(await pack(raw), policy)).signature.state, 'verified')
  })

  test('opa sign over a repeated key, a lone surrogate escape or invalid UTF-8 (data files and .manifest): refused as invalid data', async () => {
    const manifest = JSON.parse((raw.get('.manifest') as Buffer).toString()) as Record<string, unknown>
    const rest = JSON.stringify(manifest).slice(1)
    const cases: Array<Record<string, Buffer>> = [
      { 'basic/x/data.json': B('{"cfg": {"admin_override": true}, "cfg": {"mode": "strict"}}') },
      { 'basic/x/data.json': B('{"perm": {"guest\\ud800": "admin"}}') },
      { 'basic/x/data.json': B('{"v": "a\\udfffb"}') },
      { 'basic/x/data.json': B('{"perm": {"k', [0xf0, 0x90, 0x80], '": "admin"}}') },
      { 'basic/x/data.json': B('{"deny": ["', [0xe2, 0x82], '"]}') },
      { '.manifest': B('{"metadata": {"k": 1}, "metadata": {"k": 2}, ', rest) },
      { '.manifest': B('{"metadata": {"k": "\\ud800"}, ', rest) },
      { '.manifest': B('{"metadata": {"k": "', [0xff], '"}, ', rest) },
    ]
    for (const files of cases) {
      const d = signAsWritten(files)
      // opa signed it: the signature covers the file; Portcullis refuses to read it
      assert.ok(signedHashes(d).has(Object.keys(files)[0] as string), `opa signed ${Object.keys(files)[0]}`)
      await assert.rejects(loadBundle(d, policy), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_INVALID', JSON.stringify(files))
        assert.equal(err.details.file, Object.keys(files)[0])
        return true
      })
    }
  })

  // The security review's reproducers: a signed file tampered into bytes that Go canonicalizes
  // to the same text (so the signature still matched) but the loaders read otherwise.
  test('tampered into a same-hash-for-Go variant (repeated key, surrogate, invalid UTF-8): refused, small and large data and .manifest', async () => {
    const pad = JSON.stringify(Array.from({ length: 60_000 }, (_, i) => `padding-entry-${i}`)) // > 1 MiB: the large-data path
    const reproducers: Array<[string, Buffer, Buffer, Record<string, Buffer>?]> = [
      // large data.json: a repeated key whose place a small document already filled was merged, not replaced
      ['basic/t/data.json', B(`{"pad": ${pad}, "cfg": {"mode": "strict"}}`), B(`{"pad": ${pad}, "cfg": {"admin_override": true}, "cfg": {"mode": "strict"}}`), { 'basic/t/cfg/meta/data.json': B('{"owner": "team-a"}') }],
      ['basic/t/data.json', B(`{"pad": ${pad}, "perm": {"guest\ufffd": "read"}}`), B(`{"pad": ${pad}, "perm": {"guest\ufffd": "read", "guest\\ud800": "admin", "guest\ufffd": "read"}}`)],
      ['basic/t/data.json', B(`{"pad": ${pad}, "perm": {"guest\ufffd": "read"}}`), B(`{"pad": ${pad}, "perm": {"guest`, [0xff], '": "read"}}')],
      // small data.json
      ['basic/t/data.json', B('{"perm": {"guest\ufffd": "read"}}'), B('{"perm": {"guest\ufffd": "read", "guest\\ud800": "admin", "guest\ufffd": "read"}}')],
      ['basic/t/data.json', B('{"perm": {"k\ufffd\ufffd\ufffd": "read"}, "deny": ["\ufffd\ufffd"]}'), B('{"perm": {"k', [0xf0, 0x90, 0x80], '": "admin", "k\ufffd\ufffd\ufffd": "read"}, "deny": ["', [0xe2, 0x82], '"]}')],
      ['basic/t/data.json', B('{"v": "a\ufffdb"}'), B('{"v": "a\\udfffb"}')],
      ['basic/t/data.json', B('{"cfg": {"mode": "strict"}}'), B('{"cfg": {"admin_override": true}, "cfg": {"mode": "strict"}}')],
      // .manifest
      ['.manifest', B(`{"metadata": {"k": "\ufffd"}, "revision": "r\ufffd\ufffd", ${rest0()}`), B(`{"metadata": {"k": "\\ud800"}, "metadata": {"k": "\ufffd"}, "revision": "r`, [0xe2, 0x82], `", ${rest0()}`)],
    ]
    function rest0 (): string {
      const m = JSON.parse((raw.get('.manifest') as Buffer).toString()) as Record<string, unknown>
      delete m.revision
      delete m.metadata
      return JSON.stringify(m).slice(1)
    }
    for (const [name, original, tampered, extra] of reproducers) {
      const d = signAsWritten({ [name]: original, ...extra })
      // opa hashes both the same: without the stricter rules the old signature would match
      assert.equal(signedHashes(signAsWritten({ [name]: tampered, ...extra })).get(name), signedHashes(d).get(name), name)
      assert.equal((await loadBundle(d, policy)).signature.state, 'verified', name)
      await assert.rejects(loadBundle(tamper(d, { [name]: tampered }), policy), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_DATA_INVALID', JSON.stringify(tampered.subarray(0, 200).toString('latin1')))
        assert.equal(err.details.file, name)
        return true
      })
    }
  })

  test('which files are hashed parsed is OPA\'s IsStructuredDoc: data.json, data.yaml, data.yml, .manifest by base name; any other .json / .yaml over its bytes', async () => {
    const other = { 'basic/extra.json': Buffer.from('{"b": 1, "a": 2}\n'), 'basic/fixtures/data.JSON': Buffer.from('{"b": 1,  "a": 2}\n'), 'basic/x.yaml': Buffer.from('k:   v\n') }
    const yml = { 'basic/yml/data.yml': Buffer.from('cfg:\n  mode:   strict\n') }
    const d = signAsWritten({ ...other, ...yml })
    const hashes = signedHashes(d)
    for (const [name, bytes] of Object.entries(other)) {
      assert.equal(hashes.get(name), sha256(bytes), `opa hashes ${name} raw`)
      assert.equal(hashBundleFile(name, bytes, 'SHA-256'), sha256(bytes), `we hash ${name} raw`)
    }
    assert.notEqual(hashes.get('basic/yml/data.yml'), sha256(yml['basic/yml/data.yml']), 'opa hashes data.yml parsed')
    assert.equal(hashBundleFile('basic/yml/data.yml', yml['basic/yml/data.yml'], 'SHA-256'), hashes.get('basic/yml/data.yml'))
    assert.equal((await loadBundle(d, policy)).signature.state, 'verified')
    // raw files: a whitespace edit is tampering; in data.yml it is not part of the signed form
    await assert.rejects(loadBundle(tamper(d, { 'basic/extra.json': Buffer.from('{"b":1,"a":2}\n') }), policy), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH' })
    assert.equal((await loadBundle(tamper(d, { 'basic/yml/data.yml': Buffer.from('cfg:\n  mode: strict\n') }), policy)).signature.state, 'verified')
  })

  test('a data.yaml tampered into what its canonical form would hide (an unpaired surrogate for U+FFFD, .inf / .nan for null) is refused', async () => {
    // opa sign itself refuses to sign these (go-yaml: invalid escape; encoding/json: +Inf), so
    // they can only arrive by tampering with a signed file whose canonical form they share.
    const cases: Array<[string, string]> = [
      ['cfg: "guest\ufffd"\n', 'cfg: "guest\\ud800"\n'],
      ['cfg: {"\ufffd": 1}\n', 'cfg: {"\\udc00": 1}\n'],
      ['cfg: [1, null]\n', 'cfg: [1, .inf]\n'],
      ['cfg: {n: null}\n', 'cfg: {n: .nan}\n'],
    ]
    for (const [signedText, tamperedText] of cases) {
      const name = 'basic/y/data.yaml'
      const d = signAsWritten({ [name]: Buffer.from(signedText) })
      assert.equal((await loadBundle(d, policy)).signature.state, 'verified', signedText)
      await assert.rejects(loadBundle(tamper(d, { [name]: Buffer.from(tamperedText) }), policy), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' }, tamperedText)
    }
  })

  test('whitespace and member order are not part of the signed form', async () => {
    const edited = await pack(built, (f) => {
      edit(f, 'data.json', '"user0000007":{"attributes":{"active":false,"department":"eng","level":7,"region":"r7"},"email":"user0000007@example.com","roles":["admin","editor"]}',
        '"user0000007":{"roles":["admin","editor"],"email":"user0000007@example.com","attributes":{"region":"r7","level":7,"department":"eng","active":false}}')
      edit(f, 'data.json', ',"roles":', ' ,\n "roles" : ')
    })
    assert.equal((await loadBundle(edited, policy)).signature.state, 'verified')
  })

  test('tampered: one value changed deep in a large data.json is a hash mismatch', async () => {
    for (const [files, name] of [[built, 'data.json'], [raw, 'basic/large/data.json']] as const) {
      const bad = await pack(files, (f) => edit(f, name, '"user0012345@example.com","roles":["admin"', '"user0012345@example.com","roles":["admim"'))
      await assert.rejects(loadBundle(bad, policy), (err: { code: string, details: { file: string } }) => {
        assert.equal(err.code, 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH')
        assert.equal(err.details.file, name)
        return true
      })
    }
  })

  test('tampered: a number written with other digits is a hash mismatch (1.50 is not 1.5)', async () => {
    const bad = await pack(raw, (f) => edit(f, 'basic/tricky/data.json', '1.50', '1.5'))
    await assert.rejects(loadBundle(bad, policy), { code: 'PORTCULLIS_BUNDLE_SIGNATURE_HASH_MISMATCH' })
  })

  test('the same file hashes as opa sign on generated documents; those with invalid UTF-8, lone surrogates or repeated keys refused', () => {
    const fragments = [[0x80], [0xbf], [0xc0, 0xaf], [0xc2], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xef, 0xbf], [0xf0, 0x9f, 0x98], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0xff]]
    const mark = Buffer.from(INVALID_UTF8_MARK)
    const docs = fc.sample(fc.oneof(valueLit, wideObjectLit, fc.jsonValue().map(sortedText)), { numRuns: 400, seed: seed + 2 })
    const signDir = join(dir, 'opa-sign')
    const files = new Map<string, Buffer>()
    docs.forEach((doc, n) => {
      // wrapped in an object: a bundle's data file holds an object
      let bytes = Buffer.from(`{"v": ${doc}}`)
      for (let at = bytes.indexOf(mark), k = n; at >= 0; at = bytes.indexOf(mark), k++) {
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(fragments[k % fragments.length] as number[]), bytes.subarray(at + mark.length)])
      }
      const name = `d${n}/data.json`
      files.set(name, bytes)
      mkdirSync(join(signDir, `d${n}`), { recursive: true })
      writeFileSync(join(signDir, name), bytes)
    })
    assert.ok([...files.values()].some((b) => !b.equals(Buffer.from(b.toString('utf8')))), 'some documents hold invalid UTF-8')
    runOpa(['sign', '--signing-key', 'secret', '--signing-alg', 'HS256', '--bundle', '.', '-o', '.'], { cwd: signDir })
    const token = (JSON.parse(readFileSync(join(signDir, '.signatures.json'), 'utf8')) as { signatures: string[] }).signatures[0] as string
    const signed = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')) as { files: Array<{ name: string, hash: string }> }).files
    assert.equal(signed.length, files.size)
    let accepted = 0
    let refused = 0
    for (const f of signed) {
      const bytes = files.get(f.name) as Buffer
      if (oracle(bytes) === 'throws') {
        // invalid UTF-8, a lone surrogate or a repeated key: opa signs it, Portcullis refuses it
        assert.throws(() => hashBundleFile(f.name, bytes, 'SHA-256'), SyntaxError, `${f.name}: ${JSON.stringify(bytes.toString('latin1'))}`)
        refused++
      } else {
        assert.equal(hashBundleFile(f.name, bytes, 'SHA-256'), f.hash, `${f.name}: ${JSON.stringify(bytes.toString('latin1'))}`)
        accepted++
      }
    }
    assert.ok(accepted >= 150 && refused >= 20, `accepted ${accepted}, refused ${refused}`)
  })

  test('tampered into invalid JSON, or nested past the data limit: refused as unparseable data', async () => {
    const truncated = await pack(built, (f) => edit(f, 'data.json', /\}\s*$/, ''))
    await assert.rejects(loadBundle(truncated, policy), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
    const deep = await pack(raw, (f) => f.set('basic/tricky/data.json', Buffer.from(`{"d":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)))
    await assert.rejects(loadBundle(deep, policy), { code: 'PORTCULLIS_BUNDLE_DATA_INVALID' })
  })
})
