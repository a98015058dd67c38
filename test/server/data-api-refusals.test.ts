/**
 * Data API requests that fail before a decision exists — a body that is not JSON, a body over
 * the limit (413), a batch over its limit, a path that does not decode — are audited as
 * refusals, as the Envoy adapter's are (security review, issue 11): every decision request
 * leaves an event. A real runtime on loopback with the real durable log (sync), real HTTP
 * clients, on both the framework-free route and the fastify routes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRuntime } from '../helpers/runtime.js'

type Event = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

function readLog (dir: string): Event[] {
  const out: Event[] = []
  for (const stream of readdirSync(dir)) {
    const segs = join(dir, stream, 'segments')
    if (!existsSync(segs)) continue
    for (const f of readdirSync(segs).sort()) {
      for (const line of readFileSync(join(segs, f), 'utf8').split('\n')) if (line !== '') out.push(JSON.parse(line) as Event)
    }
  }
  return out
}

function post (url: string, path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number, code: string | undefined }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        let code: string | undefined
        try { code = (JSON.parse(text) as { portcullis_code?: string }).portcullis_code } catch { code = undefined }
        resolve({ status: res.statusCode ?? 0, code })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('failures before a decision are refusals in the audit log, with their code, transport and request id', async (t) => {
  const auditDir = mkdtempSync(join(tmpdir(), 'portcullis-afix-refusals-'))
  const { url, close } = await startRuntime({ server: { body_limit_bytes: 200_000 }, audit: { enabled: true, dir: auditDir, durability: 'sync' } } as never)
  t.after(async () => { await close(); rmSync(auditDir, { recursive: true, force: true }) })
  const cases: Array<[string, string, string, number, string, string]> = [
    // name, path, body, status, code, transport
    ['bad body, fast route', '/v1/data/authz/allow', '{"input":', 400, 'PORTCULLIS_INPUT_INVALID', 'http'],
    ['bad body, fastify route', '/v1/data/authz/allow?pretty=true', '{"input":', 400, 'PORTCULLIS_INPUT_INVALID', 'http'],
    ['413, fast route', '/v1/data/authz/allow', JSON.stringify({ input: { pad: 'x'.repeat(250_000) } }), 413, 'PORTCULLIS_INPUT_TOO_LARGE', 'http'],
    ['413, fastify route', '/v1/data/authz/allow?pretty=true', JSON.stringify({ input: { pad: 'x'.repeat(250_000) } }), 413, 'PORTCULLIS_INPUT_TOO_LARGE', 'http'],
    ['bad path', '/v1/data/authz/%zz', '{"input":{}}', 400, 'PORTCULLIS_PATH_INVALID', 'http'],
    ['bad batch body', '/v1/batch/data/authz/allow', '{"inputs":', 400, 'PORTCULLIS_INPUT_INVALID', 'batch'],
    ['batch over its limit', '/v1/batch/data/authz/allow', JSON.stringify({ inputs: Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [String(i), i])) }), 413, 'PORTCULLIS_INPUT_TOO_LARGE', 'batch'],
  ]
  for (const [name, path, body, status, code] of cases) {
    const r = await post(url, path, body, { 'x-request-id': name })
    assert.deepEqual([r.status, r.code], [status, code], name)
  }
  // the answered refusals are on disk (sync: recorded before the answer)
  const events = readLog(auditDir).filter((e) => e.outcome === 'error')
  assert.equal(events.length, cases.length)
  for (const [i, [name, , , , code, transport]] of cases.entries()) {
    const e = events[i] as Event
    assert.deepEqual([e.error?.portcullis_code, e.transport], [code, transport], name)
    assert.match(String(e.decision_id), /^[0-9a-f-]{36}$/)
  }
  // a decision that fails in the pipeline is recorded once, not twice
  const before = readLog(auditDir).length
  const r = await post(url, '/v1/data/authz/not_a_rule', '{"input":{}}')
  assert.equal(r.status, 404)
  assert.equal(readLog(auditDir).length, before + 1)
})
