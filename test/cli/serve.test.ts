/**
 * `portcullis serve --envoy-grpc-addr … --envoy-http-addr …` as a process: the flags enable the
 * Envoy listeners, every worker of a group serves them (node:cluster shares the socket, TCP
 * or unix), and SIGTERM closes them gracefully (exit 0).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { checkRequest, envoyBundles, authorizationClient, OK, PERMISSION_DENIED } from '../envoy/support.js'

test('serve --envoy-grpc-addr unix:… --envoy-http-addr …: a worker group answers Checks over both, then stops on SIGTERM', async (t) => {
  const bundles = envoyBundles()
  t.after(() => bundles.cleanup())
  const sock = join(bundles.dir, '..', 'authz.sock')
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--bundles', bundles.dir, '--addr', '127.0.0.1:0', '--workers', '2',
    '--envoy-grpc-addr', `unix:${sock}`, '--envoy-http-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const addresses: string[][] = []
  await new Promise<void>((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error('serve did not start in 30 s')), 30_000)
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let rec: { msg?: string, listener?: string, addresses?: string[] }
        try { rec = JSON.parse(line) as typeof rec } catch { continue }
        if (rec.listener === 'envoy ext_authz' && rec.addresses !== undefined) addresses.push(rec.addresses)
        if (addresses.length === 2) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
    void exited.then((code) => reject(new Error(`serve exited early with ${String(code)}`)))
  })
  // both workers listen on the same gRPC socket and the same HTTP port
  assert.deepEqual(addresses[0], addresses[1])
  assert.equal(addresses[0]?.[0], `grpc://unix:${sock}`)
  const httpUrl = addresses[0]?.[1] as string

  const { client, check } = authorizationClient(`unix:${sock}`)
  try {
    for (let i = 0; i < 6; i++) {
      assert.equal((await check(checkRequest('/bool'))).status?.code ?? OK, OK)
      assert.equal((await check(checkRequest('/deny'))).status?.code, PERMISSION_DENIED)
    }
  } finally {
    client.close()
  }
  const r = await fetch(`${httpUrl}/deny`, { headers: { connection: 'close' } })
  assert.equal(r.status, 401)
  assert.equal(await r.text(), 'go away')

  child.kill('SIGTERM')
  assert.equal(await exited, 0)
})
