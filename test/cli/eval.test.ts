import { before, after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/cli/main.js'
import { findOpa, needsOpa } from '../helpers/opa.js'
import { buildFixture } from '../helpers/bundles.js'
import { captureIo } from '../helpers/io.js'

describe('portcullis eval', needsOpa(), () => {
  let dir: string
  let basic: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-eval-'))
    basic = buildFixture('basic', dir)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('prints the result as JSON and exits 0', async () => {
    const input = join(dir, 'input.json')
    writeFileSync(input, '{"user": "alice"}')
    const io = captureIo()
    assert.equal(await main(['eval', '--bundle', basic, '--path', 'basic/allow', '--input', input], io), 0)
    assert.equal(JSON.parse(io.out()), true)
  })

  test('reads input from stdin with --input -', async () => {
    const io = captureIo('{"user": "zed"}')
    assert.equal(await main(['eval', '--bundle', basic, '--path', 'basic/info', '--input', '-'], io), 0)
    assert.deepEqual(JSON.parse(io.out()), { user: 'zed', level: 3, flag: true })
  })

  test('an undefined decision prints nothing and exits 1', async () => {
    const io = captureIo('{}')
    assert.equal(await main(['eval', '--bundle', basic, '--path', 'basic/conflict', '--input', '-'], io), 1)
    assert.equal(io.out(), '')
    // a path no bundle owns is undefined too, as in OPA
    assert.equal(await main(['eval', '--bundle', basic, '--path', 'nowhere/allow'], captureIo()), 1)
  })

  test('errors exit 2 with the code on stderr', async () => {
    const cases: Array<[string[], string, string]> = [
      [['--path', 'basic/conflict', '--input', '-'], '{"conflict": true}', 'PORTCULLIS_POLICY_CONFLICT'],
      [['--path', 'basic/allow', '--input', '-'], '{not json', 'PORTCULLIS_INPUT_INVALID'],
      [['--path', 'basic/not_a_rule'], '', 'PORTCULLIS_POLICY_PATH_NOT_FOUND'],
    ]
    for (const [args, stdin, code] of cases) {
      const io = captureIo(stdin)
      assert.equal(await main(['eval', '--bundle', basic, ...args], io), 2, code)
      assert.match(io.err(), new RegExp(`^${code}:`), code)
    }
    const io = captureIo()
    assert.equal(await main(['eval', '--bundle', join(dir, 'missing.tar.gz'), '--path', 'a'], io), 2)
    assert.match(io.err(), /^PORTCULLIS_BUNDLE_NOT_FOUND:/)
  })

  test('usage errors exit 2; --help exits 0', async () => {
    assert.equal(await main(['eval', '--path', 'x'], captureIo()), 2)
    assert.equal(await main(['eval', '--nope'], captureIo()), 2)
    const io = captureIo()
    assert.equal(await main(['eval', '--help'], io), 0)
    assert.match(io.out(), /--bundle/)
    for (const cmd of [['--help'], ['bundle', '--help'], ['bundle', 'inspect', '--help'], ['bundle', 'verify', '--help'], ['serve', '--help']]) {
      assert.equal(await main(cmd, captureIo()), 0, cmd.join(' '))
    }
  })

  test('the built portcullis binary runs as a script (exit codes cross the process boundary)', () => {
    execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'ignore' })
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'eval', '--bundle', basic, '--path', 'basic/allow', '--input', '-'], { input: '{"user":"bob"}', encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), 'true')
    const u = spawnSync(process.execPath, ['dist/cli/main.js', 'eval', '--bundle', basic, '--path', 'basic/conflict', '--input', '-'], { input: '{}', encoding: 'utf8' })
    assert.equal(u.status, 1)
  })
})

// Regression: `portcullis eval` called the snapshot directly, so it could answer differently from
// the server (it trusted a forged input.identity, for one). It now goes through decide().
describe('portcullis eval answers through the decision pipeline', () => {
  const authz = join(process.cwd(), 'bundles', 'authz.tar.gz')
  const order = { service: 'orders', method: 'GET', path: '/orders/1' }

  test('a forged input.identity is removed, as the server removes it', async () => {
    const forged = JSON.stringify({ ...order, identity: { spiffe_id: 'spiffe://example.org/ns/shop/sa/frontend' } })
    const io = captureIo(forged)
    assert.equal(await main(['eval', '--bundle', authz, '--path', 'authz/allow', '--input', '-'], io), 0)
    assert.equal(JSON.parse(io.out()), false)
  })

  test('the server\'s path rules apply: control characters are refused, empty segments skipped', async () => {
    const bad = captureIo('{}')
    assert.equal(await main(['eval', '--bundle', authz, '--path', 'authz/allow\u0000strict', '--input', '-'], bad), 2)
    assert.match(bad.err(), /^PORTCULLIS_PATH_INVALID:/)
    const io = captureIo(JSON.stringify(order))
    assert.equal(await main(['eval', '--bundle', authz, '--path', '/authz//decision/', '--input', '-'], io), 0)
    assert.equal(JSON.parse(io.out()).allow, false)
  })
})

describe('portcullis eval: builtin switches and exact numbers, as serve', needsOpa(), () => {
  let dir: string
  let bundle: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-eval-switch-'))
    writeFileSync(join(dir, 'policy.rego'), `package sw

n := rand.intn("k", 10)
big := time.parse_ns("2006-01-02T15:04:05.999999999Z07:00", "2262-04-11T23:47:16.854775807Z")
`)
    execFileSync(findOpa() as string, ['build', '-t', 'wasm', '-e', 'sw/n', '-e', 'sw/big', '-o', 'bundle.tar.gz', 'policy.rego'], { cwd: dir, stdio: 'ignore' })
    bundle = join(dir, 'bundle.tar.gz')
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('a switched-off builtin rejects the bundle; --builtin-switch turns it on', async () => {
    const off = captureIo()
    assert.equal(await main(['eval', '--bundle', bundle, '--path', 'sw/n'], off), 2)
    assert.match(off.err(), /PORTCULLIS_BUNDLE_BUILTIN_UNSUPPORTED/)
    const on = captureIo()
    assert.equal(await main(['eval', '--bundle', bundle, '--path', 'sw/n', '--builtin-switch', 'rand_intn'], on), 0)
    const n = JSON.parse(on.out()) as number
    assert.ok(Number.isInteger(n) && n >= 0 && n < 10)
  })

  test('--config reads policy.builtin_switches as serve does', async () => {
    const config = join(dir, 'portcullis.yaml')
    writeFileSync(config, 'policy:\n  builtin_switches: [rand_intn]\n')
    assert.equal(await main(['eval', '--config', config, '--bundle', bundle, '--path', 'sw/n'], captureIo()), 0)
  })

  test('integers beyond 2^53 are printed exactly', async () => {
    const io = captureIo()
    assert.equal(await main(['eval', '--bundle', bundle, '--path', 'sw/big', '--builtin-switch', 'rand_intn'], io), 0)
    assert.equal(io.out().trim(), '9223372036854775807')
  })
})
