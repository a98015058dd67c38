/**
 * Instantiates an OPA wasm module with Portcullis's own host imports, then hands the instance
 * to opa-wasm's LoadedPolicy for data loading and evaluation.
 *
 * opa-wasm's built-in import glue loads every host result with opa_json_parse, so a builtin
 * could only ever return JSON: the sets some builtins return (net.cidr_merge, graph.*, ...)
 * reached policies as arrays, and `net.cidr_merge(x) == {"10.0.0.0/8"}` was false where OPA
 * says true. Owning the imports lets a result that contains a Rego set be loaded with
 * opa_value_parse (Rego value syntax) instead; plain results still go through opa_json_parse,
 * and arguments are read as JSON (opa_json_dump) keeping big numbers exact, without touching
 * the global JSON.parse. `print()` output goes to the decision's trace instead of stdout.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { LoadedPolicy as LoadedPolicyType } from '@open-policy-agent/opa-wasm'
import { RawJson, RegoSet } from './builtins/types.js'
import { currentContext } from './builtins/index.js'
import { ExactNumber, argumentNumber, parseExact, stringifyExact } from './builtins/exact-json.js'
import { regoCompare } from './builtins/args.js'
import { compareUtf8 } from '../canonical-json.js'

const require = createRequire(import.meta.url)
const { LoadedPolicy } = require('@open-policy-agent/opa-wasm') as { LoadedPolicy: new (instance: WebAssembly.Instance, memory: WebAssembly.Memory, minorVersion: number) => LoadedPolicyType }

/** opa-wasm's own JavaScript builtins (regex.split, json.is_valid, yaml.*, and its sprintf). */
export const opaWasmBuiltins = require(join(dirname(require.resolve('@open-policy-agent/opa-wasm')), 'builtins', 'index.js')) as Record<string, (...args: unknown[]) => unknown>

interface Exports {
  memory: WebAssembly.Memory
  opa_malloc: (n: number) => number
  opa_json_parse: (addr: number, len: number) => number
  opa_value_parse: (addr: number, len: number) => number
  opa_json_dump: (addr: number) => number
  opa_value_dump: (addr: number) => number
  builtins: () => number
  opa_wasm_abi_version?: WebAssembly.Global | number
  opa_wasm_abi_minor_version?: WebAssembly.Global | number
}

type HostFn = (...args: unknown[]) => unknown

const encoder = new TextEncoder()
// ignoreBOM: a leading U+FEFF is text (a key "\ufeffblocked" is not "blocked"), as in Go
const decoder = new TextDecoder('utf-8', { ignoreBOM: true })

function readCString (memory: WebAssembly.Memory, addr: number): string {
  const bytes = new Uint8Array(memory.buffer)
  const end = bytes.indexOf(0, addr)
  return decoder.decode(bytes.subarray(addr, end < 0 ? bytes.length : end))
}

/** What a host result holds that JSON.stringify cannot write: 1 = a set, 2 = a number a double cannot hold. */
function specialsOf (v: unknown): number {
  if (v === null || typeof v !== 'object' || v instanceof RawJson) return 0
  if (v instanceof ExactNumber) return 2
  let found = v instanceof RegoSet ? 1 : 0
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    found |= specialsOf(x)
    if (found === 3) break
  }
  return found
}

/** Rego value text of a JSON value that may contain RegoSets (`set()`, `{a, b}`). */
export function regoValueText (v: unknown): string {
  if (v instanceof RegoSet) return v.length === 0 ? 'set()' : `{${v.map(regoValueText).join(', ')}}`
  if (Array.isArray(v)) return `[${v.map(regoValueText).join(', ')}]`
  if (v instanceof RawJson) return v.text
  if (v instanceof ExactNumber) return v.text
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${regoValueText(x)}`).join(', ')}}`
  }
  return JSON.stringify(v) ?? 'null'
}

function abiNumber (g: WebAssembly.Global | number | undefined): number | undefined {
  if (g === undefined) return undefined
  return typeof g === 'number' ? g : (g.value as number)
}

/**
 * Instantiates `module` with `host` builtins (name -> implementation over JSON values) and
 * returns the LoadedPolicy and the names of the builtins the module imports from the host.
 * Throws if the module's ABI is not OPA wasm ABI 1.x.
 */
export function instantiatePolicy (module: WebAssembly.Module, memoryOrDescriptor: WebAssembly.MemoryDescriptor | WebAssembly.Memory, host: Record<string, HostFn>): { policy: LoadedPolicyType, builtins: string[] } {
  // A Memory is passed in when it already holds the data segment (src/policy/data-loader.ts).
  const memory = memoryOrDescriptor instanceof WebAssembly.Memory ? memoryOrDescriptor : new WebAssembly.Memory(memoryOrDescriptor)
  let exports: Exports | undefined
  let names: Record<number, string> = {}

  const load = (value: unknown): number => {
    const e = exports as Exports
    if (value === undefined) return 0
    let text: string
    let parse: (addr: number, len: number) => number
    if (value instanceof ArrayBuffer) {
      text = decoder.decode(value)
      parse = e.opa_json_parse
    } else if (value instanceof RawJson) {
      text = value.text
      parse = e.opa_json_parse
    } else {
      const specials = specialsOf(value)
      if ((specials & 1) !== 0) {
        text = regoValueText(value)
        parse = e.opa_value_parse
      } else {
        text = specials === 0 ? JSON.stringify(value) : stringifyExact(value)
        parse = e.opa_json_parse
      }
    }
    const bytes = encoder.encode(text)
    const addr = e.opa_malloc(bytes.length)
    new Uint8Array(memory.buffer).set(bytes, addr)
    const parsed = parse(addr, bytes.length)
    if (parsed === 0) throw new Error(`host builtin result could not be loaded: ${text.slice(0, 200)}`)
    return parsed
  }

  const call = (id: number, argAddrs: number[]): number => {
    const e = exports as Exports
    const name = names[id] as string
    const impl = host[name] ?? opaWasmBuiltins[name]
    if (impl === undefined) throw new Error(`builtin ${name} is not provided by the host`)
    // Arguments are read in Rego value form, so a set stays a set (a RegoSet, which is an
    // array to builtins that take either) and numbers a double cannot hold (nanosecond
    // timestamps) stay ExactNumber. The text of a value without sets or non-string keys is
    // JSON: the native parser reads it, the Rego value parser only what JSON cannot.
    const args = argAddrs.map((a) => readArgument(readCString(memory, e.opa_value_dump(a))))
    return load(impl(...args))
  }

  const imports = {
    env: {
      memory,
      opa_abort: (addr: number) => { throw readCString(memory, addr) },
      opa_println: (addr: number) => { currentContext()?.trace.push(readCString(memory, addr)) },
      opa_builtin0: (id: number, _ctx: number) => call(id, []),
      opa_builtin1: (id: number, _ctx: number, a: number) => call(id, [a]),
      opa_builtin2: (id: number, _ctx: number, a: number, b: number) => call(id, [a, b]),
      opa_builtin3: (id: number, _ctx: number, a: number, b: number, c: number) => call(id, [a, b, c]),
      opa_builtin4: (id: number, _ctx: number, a: number, b: number, c: number, d: number) => call(id, [a, b, c, d]),
    },
  }
  const instance = new WebAssembly.Instance(module, imports)
  exports = instance.exports as unknown as Exports
  const major = abiNumber(exports.opa_wasm_abi_version)
  if (major !== 1) throw new Error(`unsupported OPA wasm ABI version ${String(major)}`)
  const minor = abiNumber(exports.opa_wasm_abi_minor_version) ?? 0
  const declared = JSON.parse(readCString(memory, exports.opa_json_dump(exports.builtins()))) as Record<string, number>
  names = Object.fromEntries(Object.entries(declared).map(([n, i]) => [i, n]))
  return { policy: new LoadedPolicy(instance, memory, minor), builtins: Object.keys(declared).sort() }
}

interface EvalExports {
  opa_eval: (reserved: number, entrypoint: number, data: number, input: number, inputLen: number, heapPtr: number, format: number) => number
}

interface PolicyInternals {
  wasmInstance: WebAssembly.Instance
  mem: WebAssembly.Memory
  dataAddr: number
  dataHeapPtr: number
  minorVersion: number
}

/**
 * Evaluates an entrypoint and returns its result set with sets ordered as OPA orders them.
 * opa_eval is asked for Rego value syntax (format 1), where sets are distinguishable from
 * arrays, instead of JSON (whose set order is the wasm hash order); sets become sorted arrays
 * and object keys are sorted, so results serialize as `opa eval` prints them.
 */
export function evaluateOrdered (policy: LoadedPolicyType, entrypoint: number, inputJson: string | undefined, onExact?: () => void, keepSets = false): unknown {
  const p = policy as unknown as PolicyInternals
  if (p.minorVersion < 2) return policy.evaluate(inputJson === undefined ? undefined : encoder.encode(inputJson).buffer, entrypoint)
  const exports = p.wasmInstance.exports as unknown as EvalExports
  let inputAddr = 0
  let inputLen = 0
  if (inputJson !== undefined) {
    // The input is encoded straight into the module's heap (no intermediate buffer per decision).
    inputAddr = p.dataHeapPtr
    const room = inputAddr + inputJson.length * 3 - p.mem.buffer.byteLength
    if (room > 0) p.mem.grow(Math.ceil(room / 65536))
    inputLen = encoder.encodeInto(inputJson, new Uint8Array(p.mem.buffer, inputAddr)).written
  }
  const ret = exports.opa_eval(0, entrypoint, p.dataAddr, inputAddr, inputLen, p.dataHeapPtr + inputLen, 1)
  const text = readCString(p.mem, ret)
  // The result sets of boolean decisions, by far the commonest answers, skip the general parser.
  if (text === '{{"result": true}}') return [{ result: true }]
  if (text === '{{"result": false}}') return [{ result: false }]
  if (text === 'set()') return []
  // Numbers a double cannot hold stay ExactNumber (the caller is told), so the decision can be
  // answered with OPA's digits.
  return parseRegoValue(text, onExact === undefined ? { exactNumbers: true, keepSets } : { exactNumbers: true, onExact, keepSets })
}

/**
 * A builtin argument from its Rego value text: JSON when it is JSON, otherwise (sets,
 * non-string keys, numbers written `.5`) the Rego value parser with sets kept as RegoSets.
 */
export function readArgument (text: string): unknown {
  try {
    return parseExact(text)
  } catch {
    return parseRegoValue(text, { exactNumbers: true, sets: 'RegoSet' })
  }
}

export interface ParseOptions {
  /** Keep numbers a double cannot hold exactly as ExactNumber. */
  exactNumbers?: boolean
  /** Sets as plain arrays (results: JSON-shaped) or as RegoSets (builtin arguments). */
  sets?: 'array' | 'RegoSet'
  /** Told whether any number became an ExactNumber. */
  onExact?: () => void
  /** Sets as RegoSets with numbers read as results are (a Data API path that descends into a set). */
  keepSets?: boolean
}

/**
 * Parses Rego value text as opa_value_dump writes it: JSON plus sets (`{a, b}`, `set()`),
 * non-string object keys and numbers written without a leading zero (`.5`). Sets become
 * arrays sorted in Rego order; objects get sorted keys. With `exactNumbers`, numbers a double
 * cannot hold exactly stay ExactNumber.
 */
export function parseRegoValue (text: string, options: boolean | ParseOptions = false): unknown {
  const opts: ParseOptions = typeof options === 'boolean' ? { exactNumbers: options } : options
  const exactNumbers = opts.exactNumbers === true
  const asRegoSet = opts.sets === 'RegoSet' || opts.keepSets === true
  const argumentNumbers = opts.sets === 'RegoSet'
  let i = 0
  const fail = (what: string): never => { throw new Error(`invalid Rego value at offset ${i}: ${what} near ${JSON.stringify(text.slice(Math.max(0, i - 60), i + 40))}`) }
  const ws = (): void => { while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\t' || text[i] === '\r')) i++ }
  const value = (): unknown => {
    ws()
    const c = text[i]
    if (c === '"') return str()
    if (c === '[') {
      i++
      const out: unknown[] = []
      ws()
      if (text[i] === ']') { i++; return out }
      for (;;) {
        out.push(value())
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === ']') { i++; return out }
        fail('expected , or ]')
      }
    }
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') { i++; return {} }
      const first = value()
      ws()
      if (text[i] === ':') {
        const obj: Array<[string, unknown]> = []
        i++
        obj.push([keyText(first), value()])
        for (;;) {
          ws()
          if (text[i] === '}') { i++; break }
          if (text[i] !== ',') fail('expected , or }')
          i++
          const k = value()
          ws()
          if (text[i] !== ':') fail('expected :')
          i++
          obj.push([keyText(k), value()])
        }
        obj.sort((a, b) => compareUtf8(a[0], b[0]))
        return Object.fromEntries(obj)
      }
      const set: unknown[] = [first]
      for (;;) {
        ws()
        if (text[i] === '}') { i++; break }
        if (text[i] !== ',') fail('expected , or }')
        i++
        set.push(value())
      }
      set.sort(regoOrder)
      return asRegoSet ? RegoSet.from(set) : set
    }
    if (text.startsWith('set()', i)) { i += 5; return asRegoSet ? new RegoSet() : [] }
    if (text.startsWith('true', i)) { i += 4; return true }
    if (text.startsWith('false', i)) { i += 5; return false }
    if (text.startsWith('null', i)) { i += 4; return null }
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (m === null) return fail('expected a value')
    i += m[0].length
    return number(m[0])
  }
  const str = (): string => {
    const start = i
    i++
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const number = (raw: string): unknown => {
    // the wasm module writes some fractions without a leading zero (`.5`, `-.0`)
    const t = raw.includes('.') ? raw.replace(/^(-?)\./, '$10.') : raw
    // builtin arguments: a number's text is kept where OPA's builtins decide by it (sprintf of `100.0`)
    if (argumentNumbers) return argumentNumber(t)
    const n = Number(t)
    if (!exactNumbers) return n
    // beyond a double (1e400 from exact data or input text) as well: Infinity would be written null
    // An integral value written as a float (`100.0`, `1e3`, `-0.0`: a data or policy literal the
    // module passes through as written) keeps its text too, as OPA answers it. Other forms are
    // the module's own formatting of computed values and are read as doubles, as before.
    if (!Number.isFinite(n) || (/^-?\d+$/.test(t) ? !Number.isSafeInteger(n) : (Number.isInteger(n) && Number.isSafeInteger(Math.abs(n))) || t.replace(/[eE].*$/, '').replace(/[-.]/g, '').replace(/^0+/, '').length > 15)) {
      opts.onExact?.()
      return new ExactNumber(t)
    }
    return n
  }
  const out = value()
  ws()
  if (i !== text.length) fail('trailing characters')
  return out
}

const NUMBER = /-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/y

function keyText (k: unknown): string {
  if (typeof k === 'string') return k
  return JSON.stringify(k)
}

/** OPA's ordering of values (ast.Compare): null < booleans < numbers < strings < arrays < objects. */
function regoOrder (a: unknown, b: unknown): number {
  return regoCompare(a, b)
}
