#!/usr/bin/env node
// Builds the compliance console (ui/) into ui/dist/ with esbuild: one ES module bundle with
// Preact, htm and uPlot inside, one stylesheet, and index.html. Run by `npm install` (the
// `prepare` script) so a clean clone serves a working console offline — no CDN.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'ui')
const out = join(root, 'dist')
rmSync(out, { recursive: true, force: true })
mkdirSync(join(out, 'assets'), { recursive: true })
await build({
  entryPoints: { app: join(root, 'src', 'main.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  outdir: join(out, 'assets'),
  legalComments: 'linked',
  logLevel: 'warning',
})
await build({
  entryPoints: { app: join(root, 'src', 'style.css') },
  bundle: true,
  minify: true,
  outdir: join(out, 'assets'),
  logLevel: 'warning',
})
copyFileSync(join(root, 'index.html'), join(out, 'index.html'))
console.log(`console UI built into ${out}`)
