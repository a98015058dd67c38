/**
 * http.send (OPA v1/topdown/http.go), synchronous: wasm evaluation cannot await, so the request
 * runs on a helper worker thread while the evaluating thread blocks in Atomics.wait on a
 * SharedArrayBuffer; the response comes back over a MessagePort read with
 * receiveMessageOnPort. Deny-by-default (switch `http_send`), non-deterministic (never cached
 * across decisions), identical requests within one decision are answered once (OPA's
 * intra-query cache).
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads'
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isNum, isObj } from './args.js'
import { builtinConfig } from './config.js'
import { goJson } from './json.js'
import { parseDuration } from './gotime.js'
import { ExactNumber } from './exact-json.js'

const DEFAULT_TIMEOUT_MS = 5000

// Runs in the helper thread: plain JavaScript, so it needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', async ({ req, signal, port }) => {
  const flag = new Int32Array(signal)
  let out
  try {
    const ctl = new AbortController()
    const timer = setTimeout(() => ctl.abort(), req.timeoutMs)
    try {
      // Redirects are followed here, one hop at a time (at most 10, as Go's client), each target
      // checked against the allowed hosts as the first URL was (OPA's CheckRedirect): fetch's own
      // 'follow' would take the request to any host the first one names.
      let url = req.url
      let method = req.method
      let body = req.body === undefined ? undefined : Buffer.from(req.body)
      let res
      for (let hop = 0; ; hop++) {
        res = await fetch(url, { method, headers: req.headers, body, redirect: 'manual', signal: ctl.signal })
        const location = res.headers.get('location')
        if (!req.redirect || ![301, 302, 303, 307, 308].includes(res.status) || location === null) break
        if (hop >= 10) throw new Error('stopped after 10 redirects')
        const next = new URL(location, url)
        if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new Error('redirect to ' + next.protocol + ' is not followed')
        if (req.allowedHosts !== null && !req.allowedHosts.includes(next.hostname)) throw new Error('redirect to host ' + next.hostname + ', which is not in the allowed hosts')
        await res.arrayBuffer().catch(() => {})
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method !== 'GET' && method !== 'HEAD')) { method = 'GET'; body = undefined }
        url = next.toString()
      }
      const buf = Buffer.from(await res.arrayBuffer())
      const headers = {}
      res.headers.forEach((v, k) => { (headers[k] ??= []).push(v) })
      const cookies = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : []
      if (cookies.length > 0) headers['set-cookie'] = cookies
      out = { ok: true, status: res.status, statusText: res.statusText, headers, body: buf.toString('utf8') }
    } finally {
      clearTimeout(timer)
    }
  } catch (err) {
    out = { ok: false, timeout: err && err.name === 'AbortError', message: String(err && err.cause ? err.cause.message || err.cause : err && err.message || err) }
  }
  port.postMessage(out)
  port.close()
  Atomics.store(flag, 0, 1)
  Atomics.notify(flag, 0)
})
`

let worker: Worker | undefined

function helper (): Worker {
  if (worker === undefined) {
    worker = new Worker(WORKER_SOURCE, { eval: true })
    worker.unref()
    worker.on('error', () => { worker = undefined })
    worker.on('exit', () => { worker = undefined })
  }
  return worker
}

/** Stops the helper thread (tests, shutdown). */
export async function stopHttpHelper (): Promise<void> {
  const w = worker
  worker = undefined
  if (w !== undefined) await w.terminate()
}

interface WorkerResult { ok: boolean, timeout?: boolean, message?: string, status?: number, statusText?: string, headers?: Record<string, string[]>, body?: string }

function sendSync (req: { url: string, method: string, headers: Record<string, string>, body?: string, redirect: boolean, timeoutMs: number, allowedHosts: string[] | null }): WorkerResult {
  const signal = new SharedArrayBuffer(4)
  const flag = new Int32Array(signal)
  const { port1, port2 } = new MessageChannel()
  helper().postMessage({ req, signal, port: port2 }, [port2 as unknown as MessagePort])
  const r = Atomics.wait(flag, 0, 0, req.timeoutMs + 1000)
  const msg = receiveMessageOnPort(port1)
  port1.close()
  if (r === 'timed-out' || msg === undefined) return { ok: false, timeout: true, message: 'request timed out' }
  return msg.message as WorkerResult
}

const KNOWN_KEYS = new Set(['method', 'url', 'body', 'enable_redirect', 'force_json_decode', 'force_yaml_decode', 'headers', 'raw_body', 'tls_use_system_certs',
  'tls_ca_cert', 'tls_ca_cert_file', 'tls_ca_cert_env_variable', 'tls_client_cert', 'tls_client_cert_file', 'tls_client_cert_env_variable', 'tls_client_key',
  'tls_client_key_file', 'tls_client_key_env_variable', 'tls_insecure_skip_verify', 'tls_server_name', 'timeout', 'cache', 'force_cache', 'force_cache_duration_seconds',
  'raise_error', 'caching_mode', 'max_retry_attempts', 'cache_ignored_headers'])

function timeoutMs (b: string, v: unknown): number {
  if (v === undefined) return DEFAULT_TIMEOUT_MS
  if (typeof v === 'string') {
    try { return Number(parseDuration(v) / 1_000_000n) } catch { throw new BuiltinError(b, `invalid timeout ${v}`) }
  }
  if (isNum(v)) return (typeof v === 'number' ? v : Number((v as ExactNumber).text)) / 1e6
  throw new BuiltinError(b, 'timeout must be a duration string or a number of nanoseconds')
}

export const httpBuiltins: BuiltinSpec[] = [
  {
    name: 'http.send',
    nondeterministic: true,
    requiresSwitch: 'http_send',
    impl: (ctx, [r]) => {
      const b = 'http.send'
      if (!isObj(r)) throw new BuiltinError(b, 'operand 1 must be object')
      for (const k of Object.keys(r)) if (!KNOWN_KEYS.has(k)) throw new BuiltinError(b, `invalid request parameter "${k}"`)
      if (typeof r.method !== 'string' || r.method === '') throw new BuiltinError(b, '"method" must be a non-empty string')
      if (typeof r.url !== 'string' || r.url === '') throw new BuiltinError(b, '"url" must be a non-empty string')
      const key = 'http.send:' + goJson(r)
      const hit = ctx.ndCache?.get(key)
      if (hit !== undefined) return hit
      const raiseError = r.raise_error !== false
      const cfg = builtinConfig().http ?? {}
      let url: URL
      try {
        url = new URL(r.url)
      } catch {
        throw new BuiltinError(b, `invalid url ${r.url}`)
      }
      if (cfg.allowedHosts !== undefined && cfg.allowedHosts.length > 0 && !cfg.allowedHosts.includes(url.hostname)) {
        throw new BuiltinError(b, `host ${url.hostname} is not in the allowed hosts`)
      }
      const headers: Record<string, string> = {}
      if (r.headers !== undefined) {
        if (!isObj(r.headers)) throw new BuiltinError(b, '"headers" must be an object')
        for (const [k, v] of Object.entries(r.headers)) headers[k] = typeof v === 'string' ? v : goJson(v)
      }
      let body: string | undefined
      if (typeof r.raw_body === 'string') body = r.raw_body
      else if (r.body !== undefined && r.body !== null) {
        body = goJson(r.body)
      }
      const limit = Math.min(timeoutMs(b, r.timeout), cfg.timeoutMs ?? Number.MAX_SAFE_INTEGER)
      const allowedHosts = cfg.allowedHosts !== undefined && cfg.allowedHosts.length > 0 ? [...cfg.allowedHosts] : null
      const res = sendSync({ url: url.toString(), method: r.method.toUpperCase(), headers, body, redirect: r.enable_redirect === true, timeoutMs: limit, allowedHosts })
      let out: unknown
      if (!res.ok) {
        if (raiseError) throw new BuiltinError(b, `${r.method.toUpperCase()} ${r.url}: ${res.message ?? 'request failed'}`)
        out = { status_code: 0, error: { code: 'eval_http_send_network_error', message: `${r.method.toUpperCase()} ${r.url}: ${res.message ?? 'request failed'}` } }
      } else {
        const rawBody = res.body ?? ''
        let parsed: unknown = null
        const ctype = res.headers?.['content-type']?.[0] ?? ''
        if (r.force_json_decode === true || /^application\/json/.test(ctype)) {
          try { parsed = JSON.parse(rawBody) } catch { parsed = null }
        }
        out = { status: `${res.status ?? 0} ${res.statusText ?? ''}`.trim(), status_code: res.status, body: parsed, raw_body: rawBody, headers: res.headers ?? {} }
      }
      ctx.ndCache?.set(key, out)
      return out
    },
  },
]
