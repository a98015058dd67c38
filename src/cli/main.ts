#!/usr/bin/env node
/**
 * portcullis <command> — each command is one file in src/cli/.
 */
import { EXIT_ERROR, processIo, type Command, type Io } from './args.js'
import { evalCommand } from './eval.js'
import { bundleInspectCommand } from './bundle-inspect.js'
import { bundleVerifyCommand } from './bundle-verify.js'
import { serveCommand } from './serve.js'
import { identityVerifyCommand } from './identity-verify.js'
import { identityIssueCommand } from './identity-issue.js'
import { auditVerifyCommand } from './audit-verify.js'
import { auditExportCommand } from './audit-export.js'
import { replayCommand } from './replay.js'

/** Command table: "group sub" names for two-word commands. */
export const commands: Record<string, Command> = {
  'serve': serveCommand,
  'eval': evalCommand,
  'bundle inspect': bundleInspectCommand,
  'bundle verify': bundleVerifyCommand,
  'identity verify': identityVerifyCommand,
  'identity issue': identityIssueCommand,
  'audit verify': auditVerifyCommand,
  'audit export': auditExportCommand,
  'replay': replayCommand,
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
  return cmd.run(argv.slice(two !== undefined ? 2 : 1), io)
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
    // serve resolves only after a graceful shutdown; make sure nothing keeps the process up.
    if (process.argv[2] === 'serve') process.exit(code)
  }, (err: unknown) => {
    process.stderr.write(`PORTCULLIS_INTERNAL: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = EXIT_ERROR
  })
}
