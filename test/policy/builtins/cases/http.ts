import { httpServer } from './http-server.js'
import type { Group } from './types.js'

export async function httpGroup (): Promise<Group> {
  const port = await httpServer()
  const base = `http://127.0.0.1:${port}`
  const reqs: unknown[][] = [
    [{ method: 'GET', url: `${base}/json` }], [{ method: 'get', url: `${base}/text` }], [{ method: 'GET', url: `${base}/missing` }],
    [{ method: 'POST', url: `${base}/echo`, body: { a: [1, 2] } }], [{ method: 'PUT', url: `${base}/echo`, raw_body: 'raw', headers: { 'x-test': 'yes', 'content-type': 'text/plain' } }],
    [{ method: 'GET', url: `${base}/redirect` }], [{ method: 'GET', url: `${base}/redirect`, enable_redirect: true }], [{ method: 'GET', url: `${base}/text`, force_json_decode: true }],
    [{ method: 'GET', url: 'http://127.0.0.1:1/closed', raise_error: false }], [{ method: 'GET', url: 'http://127.0.0.1:1/closed' }],
    [{ method: 'GET', url: `${base}/slow`, timeout: '200ms', raise_error: false }], [{ method: 'GET' }], [{ method: 'GET', url: `${base}/json`, bogus: 1 }], ['x'],
  ]
  return {
    name: 'http',
    switches: ['http_send'],
    tables: [
      { builtin: 'http.send', call: 'http.send($0).status_code', cases: reqs.map((args) => ({ args })) },
      { builtin: 'http.send', call: 'http.send($0).body', cases: reqs.map((args) => ({ args })) },
      { builtin: 'http.send', call: 'object.remove(http.send($0), {"headers"})', cases: reqs.slice(0, 8).map((args) => ({ args })) },
      { builtin: 'http.send', call: 'http.send($0).headers["content-type"]', cases: reqs.slice(0, 4).map((args) => ({ args })) },
      { builtin: 'http.send', call: 'object.keys(http.send($0).error)', cases: [{ args: reqs[8] as unknown[] }] },
      { builtin: 'http.send', call: 'http.send($0).error.code', cases: [{ args: reqs[8] as unknown[] }] },
    ],
  }
}
