/**
 * `portcullis serve --envoy-grpc-addr … --envoy-http-addr …` as a process: the flags enable the
 * Envoy listeners, every worker of a group serves them (node:cluster shares the socket, TCP
 * or unix), and SIGTERM closes them gracefully (exit 0).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { serveChild } from '../helpers/serve.js'
import { checkRequest, envoyBundles, authorizationClient, OK, PERMISSION_DENIED } from '../envoy/support.js'

test('serve --envoy-grpc-addr unix:… --envoy-http-addr …: a worker group answers Checks over both, then stops on SIGTERM', async (t) => {
  const bundles = envoyBundles()
  t.after(() => bundles.cleanup())
  const sock = join(bundles.dir, '..', 'authz.sock')
  const { child, lines, exited } = await serveChild(t, ['--bundles', bundles.dir, '--addr', '127.0.0.1:0', '--envoy-grpc-addr', `unix:${sock}`, '--envoy-http-addr', '127.0.0.1:0'], { workers: 2 })
  const envoyAddresses = (): string[][] => lines.filter((l) => l.listener === 'envoy ext_authz' && Array.isArray(l.addresses)).map((l) => l.addresses as string[])
  for (let i = 0; i < 600 && envoyAddresses().length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const addresses = envoyAddresses()
  assert.equal(addresses.length, 2, 'both workers report their Envoy listeners')
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
