#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner through tsx (Node 20's `node --test`
// does not expand globs). Extra arguments are passed to node (e.g. --test-name-pattern).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

function find (dir) {
  const out = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name)
    if (e.isDirectory() && e.name !== 'fixtures') out.push(...find(full))
    else if (e.isFile() && e.name.endsWith('.test.ts')) out.push(full)
  }
  return out
}

const args = process.argv.slice(2)
const only = args.filter((a) => !a.startsWith('-'))
const flags = args.filter((a) => a.startsWith('-'))
const files = only.length > 0 ? only : find('test').sort()
const concurrency = process.env.TEST_CONCURRENCY ?? '2'
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...flags, ...files], { stdio: 'inherit' })
process.exit(r.status ?? 1)
