/**
 * Fail closed at shutdown (security review, issue 11): a request still in flight after the
 * grace period reaches the closed audit trail, which rejects (the hook stays installed): the
 * decision is denied (503 PORTCULLIS_AUDIT_UNAVAILABLE), never answered without its event.
 * A real runtime on loopback with the real durable log; a real client that sends half its body
 * before stop() and the rest after it.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRuntime } from '../helpers/runtime.js'

/** Every record of every stream in an audit directory, parsed. */
function readLog (dir: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const stream of readdirSync(dir)) {
    const segs = join(dir, stream, 'segments')
    if (!existsSync(segs)) continue
    for (const f of readdirSync(segs).sort()) {
      for (const line of readFileSync(join(segs, f), 'utf8').split('\n')) if (line !== '') out.push(JSON.parse(line) as Record<string, unknown>)
    }
  }
  return out
}

describe('shutdown: a request in flight after the grace period is denied, not answered unrecorded', () => {
  test('the body arrives after stop() closed the audit trail: 503 PORTCULLIS_AUDIT_UNAVAILABLE, no allow', async () => {
    const auditDir = mkdtempSync(join(tmpdir(), 'portcullis-afix-audit-'))
    const { runtime, url } = await startRuntime({ server: { shutdown_grace_ms: 50 }, audit: { enabled: true, dir: auditDir, durability: 'sync' } } as never)
    try {
      const u = new URL(url)
      const body = JSON.stringify({ input: { user: 'alice' } })
      const half = Math.floor(body.length / 2)
      let sentRest: () => void = () => {}
      const answer = new Promise<{ status: number, text: string }>((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/data/authz/allow', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => { text += c })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        })
        req.on('error', reject)
        req.write(body.slice(0, half))
        sentRest = () => { req.end(body.slice(half)) }
      })
      // the request is in flight (headers and half its body); stop() waits the grace period, then closes the trail
      await new Promise((resolve) => setTimeout(resolve, 100))
      await runtime.stop()
      sentRest()
      const r = await answer
      assert.equal(r.status, 503)
      assert.equal((JSON.parse(r.text) as { portcullis_code: string }).portcullis_code, 'PORTCULLIS_AUDIT_UNAVAILABLE')
      // and nothing past the log's end: every event on disk belongs to an answered decision (none here)
      const events = readLog(auditDir)
      assert.equal(events.filter((e) => e.path === 'authz/allow').length, 0)
    } finally {
      await runtime.stop().catch(() => {})
      rmSync(auditDir, { recursive: true, force: true })
    }
  })
})
