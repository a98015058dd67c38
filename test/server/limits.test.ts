/** Limits over a real socket: a request that stalls past request_timeout_ms is cut off. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { startRuntime } from '../helpers/runtime.js'

test('a request whose body stalls past the request timeout gets 408 and the connection closes', async (t) => {
  const { url, close, runtime } = await startRuntime({ server: { request_timeout_ms: 400 } })
  t.after(close)
  const { port } = new URL(url)
  const reply = await new Promise<string>((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1')
    let text = ''
    sock.on('data', (c) => { text += c.toString() })
    sock.on('close', () => resolve(text))
    sock.on('error', reject)
    // headers promise 100 bytes; only 10 ever come
    sock.write('POST /v1/data/authz/allow HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"input":1')
    setTimeout(() => sock.destroy(), 10_000).unref()
  })
  assert.match(reply, /^HTTP\/1\.1 408/)
  // the server is still serving
  const r = await runtime.app.inject({ method: 'POST', url: '/v1/data/authz/allow', payload: '{"input":{}}' })
  assert.equal(r.statusCode, 200)
})
