/** glob.quote_meta (gobwas/glob QuoteMeta); glob.match is native wasm. */
import type { BuiltinSpec } from './types.js'
import { str } from './args.js'

export const globBuiltins: BuiltinSpec[] = [
  {
    name: 'glob.quote_meta',
    impl: (_ctx, [x]) => str('glob.quote_meta', x, 1).replace(/[*?\\[\]{}]/g, (c) => '\\' + c),
  },
]
