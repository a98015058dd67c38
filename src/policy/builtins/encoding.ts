/** hex.* and base64url.encode_no_pad (OPA v1/topdown/encoding.go); the rest of base64* is native wasm. */
import type { BuiltinSpec } from './types.js'
import { BuiltinError } from './types.js'
import { str } from './args.js'

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

export const encodingBuiltins: BuiltinSpec[] = [
  {
    name: 'hex.encode',
    impl: (_ctx, [x]) => Buffer.from(str('hex.encode', x, 1), 'utf8').toString('hex'),
  },
  {
    name: 'hex.decode',
    impl: (_ctx, [x]) => {
      const s = str('hex.decode', x, 1)
      // Go's hex.DecodeString: every byte must be a hex digit, and the length even.
      const bad = /[^0-9a-fA-F]/.exec(s)
      if (bad !== null) throw new BuiltinError('hex.decode', `encoding/hex: invalid byte: ${JSON.stringify(bad[0])}`)
      if (s.length % 2 !== 0) throw new BuiltinError('hex.decode', 'encoding/hex: odd length hex string')
      return utf8.decode(Buffer.from(s, 'hex'))
    },
  },
  {
    name: 'base64url.encode_no_pad',
    impl: (_ctx, [x]) => Buffer.from(str('base64url.encode_no_pad', x, 1), 'utf8').toString('base64url'),
  },
]
