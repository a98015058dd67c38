/**
 * A decision-log collector for tests: a real node:http server on loopback that speaks the
 * receiving side of OPA's decision-log upload protocol (POST of a gzip-compressed JSON array)
 * and records what it received. No OPA-compatible collector exists on this machine (OPA's own
 * test servers are Go test code; Styra DAS and other commercial collectors are not here), so
 * this small server stands in for one; it does nothing but gunzip, parse and record.
 *
 * `answer` decides the status of the next uploads (200 by default; or a function of the upload's number and events); `down()` closes the
 * listening socket (connections are refused), `up()` listens again on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface Upload {
  method: string
  path: string
  headers: IncomingHttpHeaders
  /** Compressed body size. */
  bytes: number
  /** The JSON array, parsed (undefined when the body was not gzip JSON). */
  events: Array<Record<string, unknown>> | undefined
  /** Status the collector answered. */
  status: number
}

export class Collector {
  readonly uploads: Upload[] = []
  /** Status for the next uploads: a number, or a function of the upload number (0-based). */
  answer: number | ((n: number, events: Array<Record<string, unknown>>) => number) = 200
  private server: Server | undefined
  private portNo = 0
  private waiters: Array<() => void> = []

  get port (): number { return this.portNo }
  get url (): string { return `http://127.0.0.1:${this.portNo}` }

  /** Events of every acknowledged (2xx) upload, in arrival order. */
  get accepted (): Array<Record<string, unknown>> {
    return this.uploads.filter((u) => u.status >= 200 && u.status < 300).flatMap((u) => u.events ?? [])
  }

  async up (): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        let events: Upload['events']
        try { events = JSON.parse(gunzipSync(body).toString('utf8')) as Upload['events'] } catch { events = undefined }
        const n = this.uploads.length
        const status = events === undefined ? 400 : typeof this.answer === 'function' ? this.answer(n, events) : this.answer
        this.uploads.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, bytes: body.length, events, status })
        res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{}' : '{"error":"test collector says no"}')
        for (const w of this.waiters.splice(0)) w()
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.portNo, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    this.portNo = (server.address() as AddressInfo).port
    this.server = server
  }

  async down (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s === undefined) return
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => { resolve() }))
  }

  /** Resolves once `pred` holds after an upload (bounded by `timeoutMs`; rejects then). */
  async until (pred: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`collector: condition not met within ${timeoutMs} ms (${this.uploads.length} uploads)`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200))
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }
}
