import { PassThrough, Readable } from 'node:stream'
import type { Io } from '../../src/cli/args.js'

/** In-memory stdio for running CLI commands in-process. */
export function captureIo (stdin = ''): Io & { out: () => string, err: () => string } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c: Buffer) => { out += c.toString() })
  stderr.on('data', (c: Buffer) => { err += c.toString() })
  return { stdout, stderr, stdin: Readable.from([stdin]), out: () => out, err: () => err }
}
