/**
 * The bundle `.manifest` (OPA v1/bundle/bundle.go Manifest): parsed, validated and given
 * OPA's defaults. Validation follows OPA's rules and names the rule that failed.
 */
import { BundleError } from '../errors.js'
import { cleanPath, rootContains, rootsOverlap, type PolicyManifest, type WasmResolver } from '../policy/bundle.js'

/** The whole `.manifest`: what the engine reads (PolicyManifest) and what it carries besides. */
export interface Manifest extends PolicyManifest {
  rego_version?: number
  metadata?: Record<string, unknown>
}

export function parseManifest (bytes: Buffer | undefined, source: string): Manifest {
  if (bytes === undefined) return { revision: '', roots: [''], wasm: [] }
  let raw: unknown
  try {
    raw = JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw invalid(source, `.manifest is not valid JSON (${(err as Error).message})`, 'json')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(source, '.manifest must be a JSON object', 'object')
  const m = raw as Record<string, unknown>

  if (m.revision !== undefined && typeof m.revision !== 'string') throw invalid(source, '.manifest: "revision" must be a string', 'revision')
  let roots: string[] = ['']
  if (m.roots !== undefined) {
    if (!Array.isArray(m.roots) || !m.roots.every((r) => typeof r === 'string')) throw invalid(source, '.manifest: "roots" must be an array of strings', 'roots')
    roots = (m.roots as string[]).map(cleanPath)
  }
  for (let i = 0; i < roots.length; i++) {
    for (let j = i + 1; j < roots.length; j++) {
      if (rootsOverlap(roots[i] as string, roots[j] as string)) {
        throw new BundleError('PORTCULLIS_BUNDLE_ROOTS_OVERLAP',
          `${source}: .manifest has overlapping roots ${JSON.stringify(roots[i])} and ${JSON.stringify(roots[j])}`,
          { source, file: '.manifest', roots: [roots[i], roots[j]] })
      }
    }
  }

  const wasm: WasmResolver[] = []
  if (m.wasm !== undefined) {
    if (!Array.isArray(m.wasm)) throw invalid(source, '.manifest: "wasm" must be an array', 'wasm')
    const seen = new Set<string>()
    for (const [i, w] of (m.wasm as unknown[]).entries()) {
      const entry = w as Record<string, unknown> | null
      if (entry === null || typeof entry !== 'object' || typeof entry.entrypoint !== 'string' || typeof entry.module !== 'string') {
        throw invalid(source, `.manifest: wasm[${i}] must be {"entrypoint": string, "module": string}`, 'wasm')
      }
      const entrypoint = cleanPath(entry.entrypoint)
      // OPA: one module per entrypoint.
      if (seen.has(entrypoint)) throw invalid(source, `.manifest: entrypoint ${JSON.stringify(entrypoint)} is resolved by more than one wasm module`, 'wasm')
      seen.add(entrypoint)
      if (!roots.some((r) => rootContains(r, entrypoint))) {
        throw new BundleError('PORTCULLIS_BUNDLE_ENTRYPOINT_OUTSIDE_ROOTS',
          `${source}: .manifest wasm entrypoint ${JSON.stringify(entrypoint)} is outside the bundle roots ${JSON.stringify(roots)}`,
          { source, file: '.manifest', entrypoint, roots })
      }
      wasm.push({ entrypoint, module: cleanPath(entry.module) })
    }
  }
  if (m.rego_version !== undefined && m.rego_version !== 0 && m.rego_version !== 1) throw invalid(source, '.manifest: "rego_version" must be 0 or 1', 'rego_version')
  if (m.metadata !== undefined && (m.metadata === null || typeof m.metadata !== 'object' || Array.isArray(m.metadata))) throw invalid(source, '.manifest: "metadata" must be an object', 'metadata')

  const manifest: Manifest = { revision: (m.revision as string | undefined) ?? '', roots, wasm }
  if (m.rego_version !== undefined) manifest.rego_version = m.rego_version as number
  if (m.metadata !== undefined) manifest.metadata = m.metadata as Record<string, unknown>
  return manifest
}

function invalid (source: string, message: string, rule: string): BundleError {
  return new BundleError('PORTCULLIS_BUNDLE_MANIFEST_INVALID', `${source}: ${message}`, { source, file: '.manifest', rule })
}
