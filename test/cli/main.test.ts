/**
 * The command table of src/cli/main.ts: each command's file is imported only when it runs
 * (startup time, issue 12), so the table carries the summaries itself; they must stay the
 * commands' own.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { commands, main } from '../../src/cli/main.js'
import { captureIo } from '../helpers/io.js'

test('each command in the table loads, and its summary is the command\'s own', async () => {
  assert.ok(Object.keys(commands).length >= 9)
  for (const [name, entry] of Object.entries(commands)) {
    const cmd = await entry.load()
    assert.equal(entry.summary, cmd.summary, name)
    assert.equal(typeof cmd.run, 'function', name)
  }
})

test('--help lists every command without running one; a command\'s --help comes from its file', async () => {
  const io = captureIo()
  assert.equal(await main(['--help'], io), 0)
  for (const [name, entry] of Object.entries(commands)) assert.ok(io.out().includes(`${name.padEnd(18)} ${entry.summary}`), name)
  const serve = captureIo()
  assert.equal(await main(['serve', '--help'], serve), 0)
  assert.equal(serve.out(), (await commands.serve!.load()).usage)
})

test('importing the CLI loads no command: neither the server (fastify) nor gRPC', () => {
  // a fresh process: this one has loaded every command above
  const probe = "const { createRequire } = await import('node:module'); await import('./src/cli/main.ts'); " +
    "const loaded = Object.keys(createRequire(import.meta.url).cache); " +
    "process.stdout.write(JSON.stringify(['/fastify/', '/@grpc/', '/@open-policy-agent/'].filter((p) => loaded.some((k) => k.includes(p)))))"
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), [])
})
