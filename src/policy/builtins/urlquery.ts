/** urlquery.* (OPA v1/topdown/encoding.go over Go's net/url query escaping). */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { isObj, str } from './args.js'
import { queryUnescape } from './uri.js'

/** Go url.QueryEscape. */
export function queryEscape (s: string): string {
  let out = ''
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c
    else if (c === ' ') out += '+'
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

export const urlqueryBuiltins: BuiltinSpec[] = [
  {
    name: 'urlquery.encode',
    impl: (_ctx, [x]) => queryEscape(str('urlquery.encode', x, 1)),
  },
  {
    name: 'urlquery.decode',
    impl: (_ctx, [x]) => {
      const v = queryUnescape(str('urlquery.decode', x, 1))
      if (v === undefined) throw new BuiltinError('urlquery.decode', 'invalid URL escape')
      return v
    },
  },
  {
    name: 'urlquery.encode_object',
    impl: (_ctx, [x]) => {
      const b = 'urlquery.encode_object'
      if (!isObj(x)) throw new BuiltinError(b, 'operand 1 must be object')
      const parts: string[] = []
      for (const k of Object.keys(x).sort(byteOrder)) {
        const v = x[k]
        let values: string[]
        if (typeof v === 'string') values = [v]
        else if (Array.isArray(v)) {
          values = v.map((e) => {
            if (typeof e !== 'string') throw new BuiltinError(b, 'expected array value to be string')
            return e
          })
        } else throw new BuiltinError(b, 'expected value to be string, array or set')
        for (const val of values) parts.push(queryEscape(k) + '=' + queryEscape(val))
      }
      return parts.join('&')
    },
  },
  {
    name: 'urlquery.decode_object',
    impl: (_ctx, [x]) => {
      const b = 'urlquery.decode_object'
      let query = str(b, x, 1)
      const out: Record<string, string[]> = {}
      while (query !== '') {
        let key: string
        const amp = query.indexOf('&')
        if (amp >= 0) { key = query.slice(0, amp); query = query.slice(amp + 1) } else { key = query; query = '' }
        if (key.includes(';')) throw new BuiltinError(b, 'invalid semicolon separator in query')
        if (key === '') continue
        const eq = key.indexOf('=')
        const value = eq >= 0 ? key.slice(eq + 1) : ''
        if (eq >= 0) key = key.slice(0, eq)
        const k = queryUnescape(key)
        const v = queryUnescape(value)
        if (k === undefined || v === undefined) throw new BuiltinError(b, 'invalid URL escape')
        ;(out[k] ??= []).push(v)
      }
      return out
    },
  },
]
