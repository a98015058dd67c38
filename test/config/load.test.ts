import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { DEFAULTS } from '../../src/config/defaults.js'
import { tempDir } from '../helpers/opa.js'

const write = (dir: string, name: string, text: string): string => {
  const f = join(dir, name)
  writeFileSync(f, text)
  return f
}

test('defaults apply without a file, and the result is frozen', () => {
  const c = loadConfig({ env: {} })
  assert.equal(c.server.addr, DEFAULTS.server.addr)
  assert.equal(c.cache.enabled, true)
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server))
  assert.throws(() => { (c.server as { addr: string }).addr = 'x' })
})

test('a YAML file overrides defaults; relative paths are relative to the file', (t) => {
  const dir = tempDir(t)
  const f = write(dir, 'p.yaml', 'server:\n  addr: 127.0.0.1:9999\n  workers: 3\nbundles:\n  dir: ./b\n')
  const c = loadConfig({ file: f, env: {} })
  assert.equal(c.server.addr, '127.0.0.1:9999')
  assert.equal(c.server.workers, 3)
  assert.equal(c.bundles.dir, join(dir, 'b'))
  assert.equal(c.server.body_limit_bytes, DEFAULTS.server.body_limit_bytes)
})

test('JSON files are accepted too', (t) => {
  const f = write(tempDir(t), 'p.json', '{"cache": {"enabled": false}}')
  assert.equal(loadConfig({ file: f, env: {} }).cache.enabled, false)
})

test('unknown keys are rejected, naming the key', (t) => {
  const f = write(tempDir(t), 'p.yaml', 'server:\n  adress: 127.0.0.1:1\n')
  assert.throws(() => loadConfig({ file: f, env: {} }), (err: { code: string, details: { key: string } }) => {
    assert.equal(err.code, 'PORTCULLIS_CONFIG_INVALID')
    assert.equal(err.details.key, 'server.adress')
    return true
  })
  const top = write(tempDir(t), 'q.yaml', 'nonsense: 1\n')
  assert.throws(() => loadConfig({ file: top, env: {} }), (err: { details: { key: string } }) => err.details.key === 'nonsense')
})

test('wrong types are rejected, naming the key', (t) => {
  for (const [yaml, key] of [
    ['server:\n  workers: many\n', 'server.workers'],
    ['cache:\n  max_entries: -1\n', 'cache.max_entries'],
    ['logging:\n  level: loud\n', 'logging.level'],
    ['server:\n  tls:\n    cert_file: a\n    key_file: b\n    client_auth: sometimes\n', 'server.tls.client_auth'],
  ] as const) {
    const f = write(tempDir(t), 'p.yaml', yaml)
    assert.throws(() => loadConfig({ file: f, env: {} }), (err: { code: string, details: { key: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_CONFIG_INVALID')
      assert.equal(err.details.key, key, yaml)
      return true
    })
  }
})

test('invalid YAML and unreadable files are PORTCULLIS_CONFIG_INVALID', (t) => {
  const dir = tempDir(t)
  assert.throws(() => loadConfig({ file: write(dir, 'bad.yaml', 'server: [\n'), env: {} }), { code: 'PORTCULLIS_CONFIG_INVALID' })
  assert.throws(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} }), { code: 'PORTCULLIS_CONFIG_INVALID' })
  assert.throws(() => loadConfig({ file: write(dir, 'list.yaml', '- 1\n'), env: {} }), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test('environment overrides the file; flags override both', (t) => {
  const f = write(tempDir(t), 'p.yaml', 'server:\n  addr: 127.0.0.1:1000\n  workers: 2\n')
  const env = { PORTCULLIS_ADDR: '127.0.0.1:2000', PORTCULLIS_WORKERS: '4', PORTCULLIS_BUNDLE_KEY_PROD: '-----BEGIN PUBLIC KEY-----x' }
  let c = loadConfig({ file: f, env })
  assert.equal(c.server.addr, '127.0.0.1:2000')
  assert.equal(c.server.workers, 4)
  assert.equal(c.bundles.signing.keys.prod?.key, '-----BEGIN PUBLIC KEY-----x')
  c = loadConfig({ file: f, env, overrides: { server: { addr: '127.0.0.1:3000' } } })
  assert.equal(c.server.addr, '127.0.0.1:3000')
  assert.throws(() => loadConfig({ env: { PORTCULLIS_WORKERS: 'lots' } }), (err: { details: { key: string } }) => err.details.key === 'PORTCULLIS_WORKERS')
})

test('a signing key needs key or key_file', (t) => {
  const f = write(tempDir(t), 'p.yaml', 'bundles:\n  signing:\n    required: true\n    keys:\n      k1:\n        algorithm: ES256\n')
  assert.throws(() => loadConfig({ file: f, env: {} }), (err: { details: { key: string } }) => err.details.key === 'bundles.signing.keys.k1')
})

test('the identity section is validated by the identity module', (t) => {
  const f = write(tempDir(t), 'p.yaml', 'identity:\n  on_missing: maybe\n')
  assert.throws(() => loadConfig({ file: f, env: {} }), { code: 'PORTCULLIS_CONFIG_INVALID' })
})

test('the example configuration npm start runs is valid', () => {
  const c = loadConfig({ file: 'examples/portcullis.yaml', env: {} })
  assert.equal(c.server.addr, '127.0.0.1:8181')
  assert.match(c.bundles.dir, /bundles$/)
})

test('envoy_ext_authz: defaults as opa-envoy-plugin, flags-style overrides, bad values named by key', (t) => {
  const c = loadConfig({ env: {} })
  assert.equal(c.envoy_ext_authz.path, 'envoy/authz/allow')
  assert.deepEqual([c.envoy_ext_authz.grpc.enabled, c.envoy_ext_authz.http.enabled, c.envoy_ext_authz.cache.enabled], [false, false, false])
  assert.equal(c.envoy_ext_authz.grpc.max_recv_msg_size, 4 * 1024 * 1024)
  const o = loadConfig({ env: {}, overrides: { envoy_ext_authz: { grpc: { enabled: true, addr: 'unix:/run/authz.sock' } } } })
  assert.deepEqual([o.envoy_ext_authz.grpc.enabled, o.envoy_ext_authz.grpc.addr, o.envoy_ext_authz.grpc.max_recv_msg_size], [true, 'unix:/run/authz.sock', 4 * 1024 * 1024])
  for (const [yaml, key] of [
    ['envoy_ext_authz:\n  grpc:\n    addr: nowhere\n', 'envoy_ext_authz.grpc.addr'],
    ['envoy_ext_authz:\n  http:\n    addr: "unix:/x"\n', 'envoy_ext_authz.http.addr'],
    ['envoy_ext_authz:\n  cache:\n    ignore_input_paths: ["a..b"]\n', 'envoy_ext_authz.cache.ignore_input_paths[0]'],
    ['envoy_ext_authz:\n  dry_run: maybe\n', 'envoy_ext_authz.dry_run'],
    ['envoy_ext_authz:\n  grpc:\n    max_recv_msg_size: 0\n', 'envoy_ext_authz.grpc.max_recv_msg_size'],
    ['cache:\n  enabled: false\nenvoy_ext_authz:\n  cache:\n    enabled: true\n', 'envoy_ext_authz.cache.enabled'],
  ] as const) {
    const f = write(tempDir(t), 'p.yaml', yaml)
    assert.throws(() => loadConfig({ file: f, env: {} }), (err: { code: string, details: { key: string } }) => {
      assert.equal(err.code, 'PORTCULLIS_CONFIG_INVALID')
      assert.equal(err.details.key, key, yaml)
      return true
    })
  }
})
