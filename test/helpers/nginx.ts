/**
 * A real nginx (Debian's package, scripts/install-nginx.sh) serving files from a temp directory
 * on 127.0.0.1, as a bundle server: static files with ETags (`etag on` is nginx's default), so
 * If-None-Match gets real 304s. Runs as a foreground process (daemon off, one process), with its
 * pid, logs and temp paths in the temp directory, and is stopped in cleanup.
 *
 * Locations:
 * - `/bundles/…`  plain static files (Content-Type application/gzip for .tar.gz);
 * - `/opa/…`      the same files with `Content-Type: application/vnd.openpolicyagent.bundles`;
 * - `/private/…`  requires `Authorization: Bearer <token>` (else 401);
 * - with `tls`: the same locations over HTTPS on `httpsPort`, client certificates verified
 *   against `tls.clientCa` when given (`/mtls/…` requires one).
 *
 * The access log records method, URI, status, If-None-Match, Authorization and Prefer, one
 * request a line, so tests can see exactly what Portcullis sent and what nginx answered.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'

export interface NginxOptions {
  /** Token the `/private/` location requires. */
  bearerToken?: string
  tls?: { cert: string, key: string, clientCa?: string }
}

export interface AccessLogLine { method: string, uri: string, status: number, ifNoneMatch: string, authorization: string, prefer: string }

export interface Nginx {
  url: string
  httpsUrl?: string
  /** Directory served at `/bundles/`, `/opa/` and `/private/` (the same files). */
  root: string
  accessLog: () => AccessLogLine[]
  stop: () => Promise<void>
  /** Starts it again on the same port (after stop). */
  restart: () => Promise<void>
}

export const inCI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

export function findNginx (): string | undefined {
  for (const c of [process.env.NGINX, '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (c !== undefined && c !== '' && existsSync(c)) return c
  }
  return undefined
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => { resolve(port) })
    })
  })
}

async function waitListening (port: number, proc: ChildProcess, errorLog: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`nginx exited with ${proc.exitCode}: ${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`)
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1')
      c.once('connect', () => { c.destroy(); resolve(true) })
      c.once('error', () => { resolve(false) })
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`nginx did not listen on 127.0.0.1:${port} within 10 s`)
}

/** Starts nginx in `dir` (a per-test temp directory). Fails when nginx is missing. */
export async function startNginx (dir: string, opts: NginxOptions = {}): Promise<Nginx> {
  const bin = findNginx()
  if (bin === undefined) throw new Error('nginx not found: run scripts/install-nginx.sh (as root: apt-get install nginx-light)')
  const root = join(dir, 'www')
  const prefix = join(dir, 'nginx')
  for (const d of [root, prefix, join(prefix, 'logs'), join(prefix, 'tmp')]) mkdirSync(d, { recursive: true })
  const port = await freePort()
  const httpsPort = opts.tls !== undefined ? await freePort() : undefined
  const accessLog = join(prefix, 'logs', 'access.log')
  const errorLog = join(prefix, 'logs', 'error.log')
  const locations = `
    location /bundles/ { alias ${root}/; }
    location /opa/ { alias ${root}/; types { } default_type application/vnd.openpolicyagent.bundles; }
    location /private/ {
      alias ${root}/;
      if ($http_authorization != "Bearer ${opts.bearerToken ?? 'no-token-configured'}") { return 401; }
    }
    location ~ ^/redirect/(.*)$ { return 302 /bundles/$1; }
  `
  const tlsServer = opts.tls === undefined
    ? ''
    : `
  server {
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${opts.tls.cert};
    ssl_certificate_key ${opts.tls.key};
    ${opts.tls.clientCa !== undefined ? `ssl_client_certificate ${opts.tls.clientCa}; ssl_verify_client optional;` : ''}
    ${locations}
    location /mtls/ {
      alias ${root}/;
      if ($ssl_client_verify != SUCCESS) { return 403; }
    }
  }`
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${errorLog} info;
events { worker_connections 64; }
http {
  log_format portcullis_test '$request_method\\t$uri\\t$status\\t$http_if_none_match\\t$http_authorization\\t$http_prefer';
  access_log ${accessLog} portcullis_test;
  client_body_temp_path ${join(prefix, 'tmp', 'client')};
  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'tmp', 'scgi')};
  types { application/gzip gz; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    ${locations}
  }
  ${tlsServer}
}
`
  const confFile = join(prefix, 'nginx.conf')
  writeFileSync(confFile, conf)

  let proc: ChildProcess | undefined
  const launch = async (): Promise<void> => {
    const p = spawn(bin, ['-p', prefix, '-e', errorLog, '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    proc = p
    let stderr = ''
    p.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
    try {
      await waitListening(port, p, errorLog)
      if (httpsPort !== undefined) await waitListening(httpsPort, p, errorLog)
    } catch (err) {
      p.kill('SIGKILL')
      throw new Error(`${(err as Error).message}\n${stderr}`)
    }
  }
  const stop = async (): Promise<void> => {
    const p = proc
    proc = undefined
    if (p === undefined || p.exitCode !== null) return
    const exited = new Promise<void>((resolve) => p.once('exit', () => { resolve() }))
    p.kill('SIGTERM')
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  await launch()
  return {
    url: `http://127.0.0.1:${port}`,
    ...(httpsPort !== undefined ? { httpsUrl: `https://127.0.0.1:${httpsPort}` } : {}),
    root,
    accessLog: () => {
      if (!existsSync(accessLog)) return []
      return readFileSync(accessLog, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
        const [method, uri, status, ifNoneMatch, authorization, prefer] = l.split('\t')
        // nginx writes `"` and other specials as \xHH in its access log.
        const v = (s: string | undefined): string => (s === undefined || s === '-' ? '' : s.replace(/\\x([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))))
        return { method: v(method), uri: v(uri), status: Number(status), ifNoneMatch: v(ifNoneMatch), authorization: v(authorization), prefer: v(prefer) }
      })
    },
    stop,
    restart: launch,
  }
}
