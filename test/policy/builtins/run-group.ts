/**
 * Runs one differential group in a process of its own and prints its results as JSON:
 *   node --import tsx test/policy/builtins/run-group.ts <group name>
 * Tests use it where a regression would not fail but hang (wasm evaluation is synchronous, so
 * node:test's timeout cannot interrupt it; a child process can be killed).
 */
import { groups } from './cases/index.js'
import { runGroup } from './differential.js'

const name = process.argv[2]
let found = false
for (const load of groups) {
  const g = await load()
  if (g.name !== name) continue
  found = true
  process.stdout.write(JSON.stringify(await runGroup(g)))
}
if (!found) {
  process.stderr.write(`no differential group named ${String(name)}\n`)
  process.exit(2)
}
