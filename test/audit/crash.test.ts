/**
 * kill -9 under load (issue 11, "Tests"): a real `portcullis serve` process with the durable
 * audit log in `sync` mode, driven by 32 concurrent keep-alive HTTP clients (Data API decisions
 * with unique inputs and batch requests), is killed with SIGKILL in the middle of the load —
 * the whole process group, so with `--workers 2` the primary and both workers die at once.
 * It is restarted on the same audit directory (recovery: the dead writers' locks are taken
 * over, a torn tail truncated, hashes after the last checkpoint recomputed), makes more
 * decisions and is stopped cleanly. Then:
 *
 * - every decision_id that was answered (200, over the wire) is in the log, read back with the
 *   reader — `sync` answers only after the event is fdatasync'd, so a crash loses nothing
 *   acknowledged;
 * - no decision_id appears twice (recovery neither duplicates nor replays events);
 * - `portcullis audit verify <dir> --key <pinned key>` (the CLI, as a child process) exits 0
 *   and prints OK, for every stream.
 *
 * Nothing is mocked: the bundle is compiled by the real opa, the server is the real CLI, the
 * clients speak HTTP over loopback, the log is real files. Bounded: each load phase stops after
 * a fixed number of answers or seconds, whichever comes first.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { Agent, request } from 'node:http'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateCheckpointKey } from '../../src/audit/log/checkpoint.js'
import { AuditDirReader } from '../../src/audit/log/reader.js'
import { buildFixture } from '../helpers/bundles.js'
import { tempDir } from '../helpers/opa.js'
import { serveChild, type ServeChild } from '../helpers/serve.js'

const CLIENTS = 32
/** Answers to collect before the kill (the load keeps running while it lands). */
const ANSWERS_BEFORE_KILL = 600
const LOAD_SECONDS = 20

interface Setup { dir: string, config: string, auditDir: string, publicKeyFile: string }

function setup (t: { after: (fn: () => void) => void }): Setup {
  const dir = tempDir(t, 'portcullis-crash-')
  const bundles = join(dir, 'bundles')
  mkdirSync(bundles)
  buildFixture('audit', bundles, { out: 'audit.tar.gz' })
  const { privateKeyPem, publicKeyPem } = generateCheckpointKey()
  writeFileSync(join(dir, 'checkpoint.pem'), privateKeyPem, { mode: 0o600 })
  const publicKeyFile = join(dir, 'checkpoint.pub.pem')
  writeFileSync(publicKeyFile, publicKeyPem)
  const config = join(dir, 'portcullis.yaml')
  // checkpoints often, so the crash lands between checkpoints with records after the last one
  writeFileSync(config, [
    'server:', '  addr: 127.0.0.1:0', '  shutdown_grace_ms: 5000',
    'bundles:', `  dir: ${bundles}`, '  watch: false',
    'logging:', '  level: info',
    'audit:', '  checkpoint:', '    every_events: 97', '    every_seconds: 1', `    key_file: ${join(dir, 'checkpoint.pem')}`,
  ].join('\n') + '\n')
  return { dir, config, auditDir: join(dir, 'audit'), publicKeyFile }
}

/** `portcullis serve` in a process group of its own (so SIGKILL can reach every worker). */
async function serve (t: { after: (fn: () => void) => void }, s: Setup, workers: number): Promise<ServeChild> {
  return await serveChild(t, ['--config', s.config, '--audit-dir', s.auditDir, '--audit-durability', 'sync'], { workers, detached: true, timeoutMs: 60_000 })
}

/** Waits (bounded) until no process of the group is left, so the restarted writers find dead locks. */
async function groupGone (pgid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try { process.kill(-pgid, 0) } catch { return }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`process group ${pgid} still alive 10 s after SIGKILL`)
}

function post (agent: Agent, url: string, path: string, body: string): Promise<{ status: number, body: string }> {
  const u = new URL(path, url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')))
    req.end(body)
  })
}

interface Load {
  /** decision_ids of every decision answered 200 (batch items included). */
  answered: string[]
  /** Requests that failed (the kill cuts them off; no answer, no claim). */
  failed: number
}

/**
 * CLIENTS concurrent keep-alive clients: every 5th request a batch of 3 unique inputs, the rest
 * single Data API decisions with unique inputs. Stops after `maxAnswers` answers, `seconds`, or
 * once `stop()` says so; `onAnswers` sees the running count.
 */
async function drive (url: string, tag: string, opts: { maxAnswers: number, seconds: number, onAnswer?: (n: number) => void, stopped?: () => boolean }): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
  const load: Load = { answered: [], failed: 0 }
  const deadline = Date.now() + opts.seconds * 1000
  let n = 0
  const done = (): boolean => load.answered.length >= opts.maxAnswers || Date.now() > deadline || (opts.stopped?.() ?? false)
  const client = async (c: number): Promise<void> => {
    // bounded: each client sends at most maxAnswers requests
    for (let k = 0; k < opts.maxAnswers && !done(); k++) {
      const i = n++
      const batch = i % 5 === 4
      try {
        const r = batch
          ? await post(agent, url, '/v1/batch/data/audit/authz/allow', JSON.stringify({ inputs: { a: { user: `${tag}-${i}-a` }, b: { user: 'alice', n: `${tag}-${i}` }, c: { user: `${tag}-${i}-c` } } }))
          : await post(agent, url, '/v1/data/audit/authz/allow', JSON.stringify({ input: { user: i % 7 === 0 ? 'alice' : `${tag}-${i}`, client: c } }))
        if (r.status !== 200) { load.failed++; continue }
        const body = JSON.parse(r.body) as { decision_id?: string, responses?: Record<string, { decision_id?: string }> }
        const ids = batch ? Object.values(body.responses ?? {}).map((x) => x.decision_id) : [body.decision_id]
        for (const id of ids) {
          assert.equal(typeof id, 'string', `every answer carries its decision_id: ${r.body}`)
          load.answered.push(id as string)
        }
        opts.onAnswer?.(load.answered.length)
      } catch {
        load.failed++
        // a dead server refuses at once: do not spin
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => await client(c)))
  } finally {
    agent.destroy()
  }
  return load
}

function verifyCli (auditDir: string, publicKeyFile: string): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', 'verify', auditDir, '--key', publicKeyFile], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

/** Every decision_id in the log (all streams), with how often each appears. */
async function loggedIds (auditDir: string): Promise<{ ids: Map<string, number>, streams: string[] }> {
  const reader = await AuditDirReader.open(auditDir)
  const ids = new Map<string, number>()
  try {
    for (const stream of reader.streams()) {
      for await (const { bytes } of reader.stream(stream).records(0)) {
        const ev = JSON.parse(bytes.toString('utf8')) as { decision_id?: string, type?: string }
        if (ev.decision_id === undefined) continue // a gap record (none expected: on_full is deny)
        ids.set(ev.decision_id, (ids.get(ev.decision_id) ?? 0) + 1)
      }
    }
    return { ids, streams: reader.streams() }
  } finally {
    reader.close()
  }
}

async function crashAndRecover (t: { after: (fn: () => void) => void, diagnostic: (m: string) => void }, workers: number): Promise<void> {
  const s = setup(t)
  // 1. load, then SIGKILL the whole group while the load runs
  const first = await serve(t, s, workers)
  const pgid = first.child.pid as number
  let killed = false
  const before = await drive(first.url, 'pre', {
    maxAnswers: 1_000_000,
    seconds: LOAD_SECONDS,
    stopped: () => killed,
    onAnswer: (count) => {
      if (!killed && count >= ANSWERS_BEFORE_KILL) {
        killed = true
        process.kill(-pgid, 'SIGKILL')
      }
    },
  })
  assert.ok(killed, `the kill landed under load (answers: ${before.answered.length}, failures: ${before.failed})`)
  await first.exited
  await groupGone(pgid)
  assert.ok(before.answered.length >= ANSWERS_BEFORE_KILL)

  // 2. restart on the same directory: recovery takes over the dead writers' streams
  const second = await serve(t, s, workers)
  const recovered = second.lines.filter((l) => l.stream !== undefined && l.unclean === true)
  assert.equal(recovered.length, workers, `every stream was recovered from an unclean shutdown: ${JSON.stringify(second.lines.filter((l) => l.stream !== undefined))}`)
  const after = await drive(second.url, 'post', { maxAnswers: 300, seconds: LOAD_SECONDS })
  assert.ok(after.answered.length >= 300, `decisions after the restart: ${after.answered.length}, failures ${after.failed}`)
  process.kill(second.child.pid as number, 'SIGTERM')
  assert.equal(await second.exited, 0)

  // 3. the log holds every answered decision exactly once, and verifies
  const { ids, streams } = await loggedIds(s.auditDir)
  assert.deepEqual(streams, workers === 1 ? ['main'] : Array.from({ length: workers }, (_, i) => `w${i + 1}`))
  const missing = [...before.answered, ...after.answered].filter((id) => !ids.has(id))
  assert.deepEqual(missing, [], 'every decision that got an answer is in the log')
  const twice = [...ids].filter(([, n]) => n > 1)
  assert.deepEqual(twice, [], 'no decision_id appears twice')
  assert.equal(new Set([...before.answered, ...after.answered]).size, before.answered.length + after.answered.length, 'answered ids are unique')

  const truncations = second.lines.filter((l) => typeof l.msg === 'string' && l.segment !== undefined && l.bytes !== undefined && l.seq !== undefined).length
  t.diagnostic(`before the kill: ${before.answered.length} answered, ${before.failed} cut off; after the restart: ${after.answered.length} answered; torn records truncated on recovery: ${truncations}; events in the log: ${ids.size}`)
  const v = await verifyCli(s.auditDir, s.publicKeyFile)
  assert.equal(v.code, 0, `audit verify: ${v.stdout}${v.stderr}`)
  const out = v.stdout.split('\n')
  assert.equal(out[0], 'OK')
  for (const stream of streams) assert.ok(out.some((l) => l.startsWith(`stream ${stream}: `)), `verify covered stream ${stream}: ${v.stdout}`)
}

test('kill -9 under concurrent load (sync, 1 worker): every answered decision is in the log once, and the log verifies', async (t) => {
  await crashAndRecover(t, 1)
})

test('kill -9 of a worker group under concurrent load (sync, 2 workers): both streams hold every answered decision once and verify', async (t) => {
  await crashAndRecover(t, 2)
})
