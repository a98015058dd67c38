import { table, type Group } from './types.js'

const texts = [[''], ['abc'], ['héllo'], ['🦀\u0000'], ['a'.repeat(1000)], [1]]
const pairs = [['', ''], ['message', 'key'], ['héllo', 'ключ'], ['x', 'k'.repeat(200)], [1, 'k'], ['m', null]]

export const cryptoGroup = (): Group => ({
  name: 'crypto',
  tables: [
    table('crypto.md5', texts), table('crypto.sha1', texts), table('crypto.sha256', texts),
    table('crypto.hmac.md5', pairs), table('crypto.hmac.sha1', pairs), table('crypto.hmac.sha256', pairs), table('crypto.hmac.sha512', pairs),
    table('crypto.hmac.equal', [['a', 'a'], ['a', 'b'], ['', ''], ['abc', 'ab'], ['é', 'é'], [1, 'a']]),
  ],
})
