/**
 * An open-loop, paced HTTP/1.1 load generator for latency at a fixed rate ("p99 at half the
 * maximum load"). Requests fall due at evenly spaced times (rate/s) and are released each
 * millisecond over keep-alive connections. A request that finds every connection busy waits
 * in a backlog, and its latency counts from the moment it was released into that backlog, not
 * from when a connection freed up, so a server that stalls cannot hide the requests it delayed
 * (no coordinated omission); the generator's own timer granularity is not counted. With
 * `spin` (for a generator that has a CPU of its own) requests are released as they fall due,
 * checked on every event-loop turn; without it, each millisecond releases that millisecond's
 * requests at once, a burstier load than evenly spaced callers.
 *
 * autocannon's `overallRate` is not used for this: it sends each connection's quota for a
 * second as fast as it can and then pauses until the next second, so "half load" there is full
 * load for half of every second, and its latencies are whole milliseconds.
 */
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { bodyOf, type Inputs } from './inputs.js'

export interface PacedResult { rps: number, sent: number, p50: number, p90: number, p99: number, max: number, errors: number, /** longest gap between two turns of the generator's own loop (its own stalls), ms */ generatorStall: number }

interface Conn { socket: Socket, busy: boolean, due: number, buf: string | undefined }

/** Sends `rate` requests per second for `seconds` to `url` (POST `path`, bodies from `body(i)`). */
export async function paced (url: string, path: string, body: (i: number) => string, opts: { rate: number, seconds: number, connections: number, warmupSeconds?: number, headers?: Record<string, string>, spin?: boolean }): Promise<PacedResult> {
  const u = new URL(url)
  const host = u.hostname
  const port = Number(u.port)
  const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  const head = `POST ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\ncontent-type: application/json\r\n${extra}content-length: `
  const request = (i: number): string => {
    const b = body(i)
    return `${head}${Buffer.byteLength(b)}\r\n\r\n${b}`
  }
  const latencies: number[] = []
  let errors = 0
  let sent = 0
  let eligible = 0 // requests released after the warm-up
  let generatorStall = 0
  const backlog: number[] = [] // release times (ms) of requests waiting for a connection
  const conns: Conn[] = []
  const now = (): number => performance.now()

  const dispatch = (c: Conn, due: number): void => {
    c.busy = true
    c.due = due
    if (due >= recordFrom) eligible++
    c.socket.write(request(sent++))
  }
  let recordFrom = Infinity // requests released before this (the warm-up) are not recorded
  const onResponse = (c: Conn, status: number): void => {
    if (c.due >= recordFrom) {
      latencies.push(now() - c.due)
      if (status < 200 || status >= 300) errors++
    }
    c.busy = false
    const next = backlog.shift()
    if (next !== undefined) dispatch(c, next)
  }

  await Promise.all(Array.from({ length: opts.connections }, async () => {
    const socket = connect({ host, port, noDelay: true })
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const c: Conn = { socket, busy: false, due: 0, buf: undefined }
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      c.buf = c.buf === undefined ? chunk : c.buf + chunk
      for (;;) {
        const end: number = c.buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head: string = c.buf.slice(0, end)
        const length: number = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
        if (c.buf.length < end + 4 + length) return // (latin1: one character per byte)
        const status = Number(head.slice(9, 12))
        c.buf = c.buf.length === end + 4 + length ? undefined : c.buf.slice(end + 4 + length)
        onResponse(c, status)
        if (c.buf === undefined) return
      }
    })
    socket.on('error', () => { errors++ })
    conns.push(c)
  }))

  const warmup = opts.warmupSeconds ?? 1
  const start = now()
  recordFrom = start + warmup * 1000
  const total = Math.round(opts.rate * (opts.seconds + warmup))
  let scheduled = 0
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined
    let last = now()
    const tick = (): void => {
      const t = now()
      if (t >= recordFrom && t - last > generatorStall) generatorStall = t - last
      last = t
      const dueNow = Math.min(total, Math.floor(((t - start) / 1000) * opts.rate))
      for (; scheduled < dueNow; scheduled++) {
        const idle = conns.find((c) => !c.busy)
        if (idle !== undefined) dispatch(idle, now())
        else backlog.push(t)
      }
      const drained = scheduled >= total && backlog.length === 0 && conns.every((c) => !c.busy)
      // bounded: stop at most two seconds after the last request was due
      if (drained || t - start > (warmup + opts.seconds + 2) * 1000) {
        if (timer !== undefined) clearInterval(timer)
        resolve()
      } else if (opts.spin === true) {
        setImmediate(tick)
      }
    }
    if (opts.spin === true) setImmediate(tick)
    else timer = setInterval(tick, 1)
  })
  const elapsed = (now() - recordFrom) / 1000
  for (const c of conns) c.socket.destroy()
  errors += eligible - latencies.length // sent but never answered within the bound
  errors += backlog.filter((t) => t >= recordFrom).length // never sent within the bound
  latencies.sort((a, b) => a - b)
  const q = (p: number): number => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN) * 1000) / 1000
  return { rps: latencies.length / Math.max(elapsed, opts.seconds), sent, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1), errors, generatorStall: Math.round(generatorStall * 1000) / 1000 }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [url, inputs, rate, seconds, connections, mode] = process.argv.slice(2)
  const r = await paced(url as string, '/v1/data/authz/allow', (i) => bodyOf(inputs as Inputs, i), {
    rate: Number(rate), seconds: Number(seconds), connections: Number(connections), warmupSeconds: 1, spin: mode === 'spin',
  })
  process.stdout.write(JSON.stringify(r) + '\n')
}
