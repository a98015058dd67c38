import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseManifest } from '../../src/bundles/manifest.js'

const m = (obj: unknown): Buffer => Buffer.from(JSON.stringify(obj))

test('defaults: no manifest means roots [""] and no wasm', () => {
  assert.deepEqual(parseManifest(undefined, 'b'), { revision: '', roots: [''], wasm: [] })
})

test('cleans slashes around roots and entrypoints, and module paths', () => {
  const got = parseManifest(m({ revision: 'r', roots: ['/a/', 'b'], wasm: [{ entrypoint: '/a/allow', module: '/policy.wasm' }] }), 'b')
  assert.deepEqual(got.roots, ['a', 'b'])
  assert.deepEqual(got.wasm, [{ entrypoint: 'a/allow', module: 'policy.wasm' }])
})

test('overlapping roots are rejected, naming both', () => {
  assert.throws(() => parseManifest(m({ roots: ['a', 'a/b'] }), 'b'), (err: { code: string, details: { roots: string[] } }) => {
    assert.equal(err.code, 'PORTCULLIS_BUNDLE_ROOTS_OVERLAP')
    assert.deepEqual(err.details.roots, ['a', 'a/b'])
    return true
  })
  assert.throws(() => parseManifest(m({ roots: ['', 'x'] }), 'b'), { code: 'PORTCULLIS_BUNDLE_ROOTS_OVERLAP' })
})

test('roots that only share a string prefix do not overlap', () => {
  assert.doesNotThrow(() => parseManifest(m({ roots: ['ab', 'a'] }), 'b'))
})

test('an entrypoint outside the roots is rejected', () => {
  assert.throws(() => parseManifest(m({ roots: ['a'], wasm: [{ entrypoint: 'b/allow', module: '/policy.wasm' }] }), 'b'), { code: 'PORTCULLIS_BUNDLE_ENTRYPOINT_OUTSIDE_ROOTS' })
})

test('one module per entrypoint', () => {
  assert.throws(() => parseManifest(m({ roots: ['a'], wasm: [{ entrypoint: 'a/x', module: '/1.wasm' }, { entrypoint: 'a/x', module: '/2.wasm' }] }), 'b'), { code: 'PORTCULLIS_BUNDLE_MANIFEST_INVALID' })
})

test('malformed manifests are rejected with PORTCULLIS_BUNDLE_MANIFEST_INVALID', () => {
  for (const bad of ['not json', '[]', '{"revision": 5}', '{"roots": "a"}', '{"roots": [1]}', '{"wasm": {}}', '{"wasm": [{"entrypoint": 1}]}', '{"rego_version": 7}', '{"metadata": []}']) {
    assert.throws(() => parseManifest(Buffer.from(bad), 'b'), { code: 'PORTCULLIS_BUNDLE_MANIFEST_INVALID' }, bad)
  }
})
