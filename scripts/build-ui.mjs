#!/usr/bin/env node
// Builds the compliance console (ui/) into ui/dist/ with esbuild: one ES module bundle with
// Preact, htm and uPlot inside, one stylesheet, both content-hashed under assets/ (the server
// serves them `immutable`), and index.html pointing at them. Run by `npm install` (the
// `prepare` script) so a clean clone serves a working console offline — no CDN.
import { build } from 'esbuild'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'ui')
const out = join(root, 'dist')
rmSync(out, { recursive: true, force: true })
mkdirSync(join(out, 'assets'), { recursive: true })

/** Builds one entry and returns the file name esbuild gave its output. */
async function bundle (entry, extra) {
  const r = await build({
    entryPoints: { app: join(root, 'src', entry) },
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    outdir: join(out, 'assets'),
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
    ...extra,
  })
  const outputs = Object.keys(r.metafile.outputs)
  if (outputs.length !== 1) throw new Error(`build-ui: ${entry} gave ${outputs.length} outputs, expected 1`)
  return basename(outputs[0])
}

const js = await bundle('main.ts', { format: 'esm', platform: 'browser', target: ['chrome110', 'firefox115', 'safari16'] })
const css = await bundle('style.css', {})
const html = readFileSync(join(root, 'index.html'), 'utf8')
  .replace('/ui/assets/app.js', `/ui/assets/${js}`)
  .replace('/ui/assets/app.css', `/ui/assets/${css}`)
if (!html.includes(js) || !html.includes(css)) throw new Error('build-ui: ui/index.html must reference /ui/assets/app.js and /ui/assets/app.css')
writeFileSync(join(out, 'index.html'), html)
console.log(`console UI built into ${out} (${js}, ${css})`)
