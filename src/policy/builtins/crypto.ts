/** crypto.* digests and HMACs (OPA v1/topdown/crypto.go); x509 and keys are in x509.ts. */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { BuiltinSpec } from './types.js'
import { str } from './args.js'

const digest = (name: string, alg: string): BuiltinSpec => ({
  name,
  impl: (_ctx, [x]) => createHash(alg).update(str(name, x, 1), 'utf8').digest('hex'),
})

const hmac = (name: string, alg: string): BuiltinSpec => ({
  name,
  impl: (_ctx, [x, k]) => createHmac(alg, Buffer.from(str(name, k, 2), 'utf8')).update(str(name, x, 1), 'utf8').digest('hex'),
})

export const cryptoBuiltins: BuiltinSpec[] = [
  digest('crypto.md5', 'md5'),
  digest('crypto.sha1', 'sha1'),
  digest('crypto.sha256', 'sha256'),
  hmac('crypto.hmac.md5', 'md5'),
  hmac('crypto.hmac.sha1', 'sha1'),
  hmac('crypto.hmac.sha256', 'sha256'),
  hmac('crypto.hmac.sha512', 'sha512'),
  {
    name: 'crypto.hmac.equal',
    impl: (_ctx, [a, b]) => {
      const x = Buffer.from(str('crypto.hmac.equal', a, 1), 'utf8')
      const y = Buffer.from(str('crypto.hmac.equal', b, 2), 'utf8')
      // Go's hmac.Equal: constant time for equal lengths.
      return x.length === y.length && timingSafeEqual(x, y)
    },
  },
]
