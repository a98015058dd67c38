/** A small HTTP server on 127.0.0.1 in a child process (the evaluating thread blocks during http.send). */
import { spawn } from 'node:child_process'

const SERVER = `
const http = require('node:http')
const s = http.createServer((req, res) => {
  let body = ''
  req.on('data', (c) => { body += c })
  req.on('end', () => {
    const u = new URL(req.url, 'http://x')
    if (u.pathname === '/json') { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ ok: true, n: 1, method: req.method })) }
    else if (u.pathname === '/echo') { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ method: req.method, body, ctype: req.headers['content-type'] || null, x: req.headers['x-test'] || null })) }
    else if (u.pathname === '/text') { res.setHeader('content-type', 'text/plain'); res.end('hello') }
    else if (u.pathname === '/redirect') { res.statusCode = 302; res.setHeader('location', '/json'); res.end() }
    else if (u.pathname === '/to') { res.statusCode = 302; res.setHeader('location', u.searchParams.get('u')); res.end() }
    else if (u.pathname === '/slow') { setTimeout(() => res.end('late'), 3000) }
    else { res.statusCode = 404; res.setHeader('content-type', 'application/json'); res.end('{"error":"not found"}') }
  })
})
s.listen(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })
`

let started: Promise<number> | undefined

export async function httpServer (): Promise<number> {
  started ??= new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] })
    process.on('exit', () => child.kill())
    child.stdout?.once('data', (d: Buffer) => {
      // Keep the server for the rest of the process, without keeping the process alive.
      child.unref()
      ;(child.stdout as unknown as { unref?: () => void }).unref?.()
      resolve(Number(d.toString().trim()))
    })
    child.once('error', reject)
  })
  return await started
}
