#!/usr/bin/env node
/**
 * portcullis <command> — each command is one file in src/cli/.
 *
 * The table names each command and its summary, and imports the command's file only when that
 * command runs: `serve` never loads the audit, replay or identity-issuing code, and a
 * `--workers N` primary (which only supervises) not even the server (src/cli/serve.ts). What a
 * process does not import it does not compile, and module loading is most of a server's start.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { EXIT_ERROR, processIo, type Command, type Io } from './args.js'

/** A command as the table knows it before it is loaded. */
export interface CommandEntry {
  /** One line for `portcullis --help`; the same text as the loaded command's `summary` (test/cli/main.test.ts). */
  summary: string
  load: () => Promise<Command>
}

/** Command table: "group sub" names for two-word commands. */
export const commands: Record<string, CommandEntry> = {
  'serve': { summary: 'serve decisions over HTTP from a bundles directory', load: async () => (await import('./serve.js')).serveCommand },
  'eval': { summary: 'evaluate a decision against bundles and print the result', load: async () => (await import('./eval.js')).evalCommand },
  'bundle inspect': { summary: 'show a bundle\'s revision, roots, entrypoints, builtins and signature', load: async () => (await import('./bundle-inspect.js')).bundleInspectCommand },
  'bundle verify': { summary: 'verify a signed bundle against a public key', load: async () => (await import('./bundle-verify.js')).bundleVerifyCommand },
  'identity verify': { summary: 'verify an X.509-SVID, JWT-SVID, OIDC token or XFCC header and print the identity', load: async () => (await import('./identity-verify.js')).identityVerifyCommand },
  'identity issue': { summary: 'issue a short-lived JWT-SVID or X.509-SVID from trust-domain keys (tests, demos)', load: async () => (await import('./identity-issue.js')).identityIssueCommand },
  'audit verify': { summary: 'verify an audit directory (records, Merkle tree, signed checkpoints)', load: async () => (await import('./audit-verify.js')).auditVerifyCommand },
  'audit accept-tail': { summary: 'seal a refused stream\'s too-long unsealed tail behind a recorded acceptance', load: async () => (await import('./audit-accept-tail.js')).auditAcceptTailCommand },
  'audit export': { summary: 'export a verifiable slice of the audit log (NDJSON or CSV)', load: async () => (await import('./audit-export.js')).auditExportCommand },
  'replay': { summary: 'replay recorded decisions against a candidate bundle and report what would change', load: async () => (await import('./replay.js')).replayCommand },
}

function help (): string {
  const lines = ['Portcullis — authorization decisions for workloads', '', 'Usage: portcullis <command> [options]', '', 'Commands:']
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(18)} ${c.summary}`)
  lines.push('', 'Run "portcullis <command> --help" for a command\'s options.')
  return lines.join('\n') + '\n'
}

export async function main (argv: string[], io: Io = processIo): Promise<number> {
  const [first, second] = argv
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(help())
    return first === undefined ? EXIT_ERROR : 0
  }
  const two = second !== undefined ? commands[`${first} ${second}`] : undefined
  const cmd = two ?? commands[first]
  if (cmd === undefined) {
    const group = Object.keys(commands).filter((n) => n.startsWith(`${first} `))
    if (group.length > 0) {
      io.stdout.write(`Usage: portcullis ${first} <${group.map((g) => g.split(' ')[1]).join('|')}> [options]\n`)
      for (const g of group) io.stdout.write(`  ${g.padEnd(18)} ${commands[g]?.summary ?? ''}\n`)
      return second === '--help' || second === '-h' ? 0 : EXIT_ERROR
    }
    io.stderr.write(`unknown command ${JSON.stringify(first)}\n\n${help()}`)
    return EXIT_ERROR
  }
  return (await cmd.load()).run(argv.slice(two !== undefined ? 2 : 1), io)
}

/**
 * Runs the CLI on this process's arguments and sets its exit code. Called below when this file
 * is the process's entry, and by the launcher (bin/portcullis.cjs) when it runs the bundled build.
 */
export function runCli (): void {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
    // serve resolves only after a graceful shutdown; make sure nothing keeps the process up.
    if (process.argv[2] === 'serve') process.exit(code)
  }, (err: unknown) => {
    process.stderr.write(`PORTCULLIS_INTERNAL: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = EXIT_ERROR
  })
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href
if (invokedDirectly) runCli()
