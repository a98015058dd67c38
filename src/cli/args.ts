/** Small helpers shared by the CLI commands (argument parsing is node:util parseArgs). */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { isPortcullisError } from '../errors.js'

export interface Io {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  stdin: NodeJS.ReadableStream
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }

export interface Command {
  /** One line for `portcullis --help`. */
  summary: string
  usage: string
  run: (argv: string[], io: Io) => Promise<number>
}

/** Exit codes: 0 success, 1 "no" (undefined result, rejected credential), 2 error/usage. */
export const EXIT_OK = 0
export const EXIT_NO = 1
export const EXIT_ERROR = 2

export class UsageError extends Error {}

export function parse<T extends NonNullable<ParseArgsConfig['options']>> (argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export async function readAll (stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c)
  return Buffer.concat(chunks).toString('utf8')
}

/** Prints an error as `CODE: message` on stderr and returns the error exit code. */
export function reportError (err: unknown, io: Io): number {
  if (err instanceof UsageError) {
    io.stderr.write(`usage error: ${err.message}\n`)
    return EXIT_ERROR
  }
  if (isPortcullisError(err)) io.stderr.write(`${err.code}: ${err.message}\n`)
  else io.stderr.write(`PORTCULLIS_INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`)
  return EXIT_ERROR
}
